"""The template's own test fixtures: a contract and params of its own under tests/fixtures.

Template tests read these, never the live `data/schema.yaml` or `params.yaml`, so a fork that
switches the project to its own data keeps `make test` green without touching `tests/`.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DriftParams, ExportParams, ModelParams, load_params
from gitops_ml.contract import Contract, load_contract

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
CONTRACT_PATH = FIXTURES / "churn" / "schema.yaml"
PARAMS_PATH = FIXTURES / "churn" / "params.yaml"
# The tests' export settings.
EXPORT = ExportParams(opset=17, parity_tolerance=1e-4, regression_parity_tolerance=1e-4)
# Fixture projects of real data (scikit-learn's bundled sets, tests/support/task_fixtures.py),
# one per task the churn fixture does not cover: a contract and a CSV each.
TASK_FIXTURES = {"regression": "diabetes", "multiclass": "wine"}


def use_fixture_project(repo: Path, fixture: Path) -> None:
    """Turn `repo`, a copy of a work tree, into the template's own project `fixture` (a
    directory under tests/fixtures): its contract and params, request examples drawn from that
    contract, and no data the live project tracks with DVC. A fork's `.dvc` files name its own
    data, which the copy's empty DVC cache cannot check out; the fixture project generates its
    data and needs none of them."""
    from gitops_ml.pipeline.examples import render
    from gitops_ml.v2_request import example_payloads

    shutil.copyfile(fixture / "schema.yaml", repo / paths.CONTRACT)
    shutil.copyfile(fixture / "params.yaml", repo / paths.PARAMS)
    for folder, dirs, files in os.walk(repo):  # never into symlinked dirs (.venv)
        dirs[:] = [d for d in dirs if d not in (".dvc", ".git")]
        for name in files:
            if name.endswith(".dvc"):
                os.remove(os.path.join(folder, name))
    contract = load_contract(repo / paths.CONTRACT)
    for name, payload in example_payloads(contract).items():
        (repo / paths.EXAMPLE_PREDICT).with_name(name).write_text(render(payload))


@dataclass(frozen=True)
class TaskFixture:
    """A fixture project of real data: its contract and its CSV, read and validated as the
    pipeline's ingest and validate stages read them."""

    name: str
    contract_path: Path
    data_path: Path
    contract: Contract
    frame: pd.DataFrame  # every row, in canonical dtypes, in file order (shuffled once)

    def split(self, test_fraction: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test): the first rows and the last `test_fraction` of them, fresh copies."""
        cut = len(self.frame) - round(len(self.frame) * test_fraction)
        train, test = self.frame.iloc[:cut], self.frame.iloc[cut:]
        return train.reset_index(drop=True), test.reset_index(drop=True)


def task_fixture(task: str) -> TaskFixture:
    """The fixture project for `task` ("regression" or "multiclass", see TASK_FIXTURES)."""
    from gitops_ml.pipeline.validate import validate_frame

    directory = FIXTURES / TASK_FIXTURES[task]
    contract_path = directory / "schema.yaml"
    data_path = directory / f"{directory.name}.csv"
    contract = load_contract(contract_path)
    raw = gio.read_table(data_path, raw_text=True, layout=contract.csv)
    result = validate_frame(raw, contract)
    if result.frame is None:
        raise AssertionError(f"{data_path}: " + "; ".join(f.line() for f in result.failures))
    return TaskFixture(directory.name, contract_path, data_path, contract, result.frame)


def fixture_params() -> dict[str, Any]:
    """The fixture params.yaml, parsed (a fresh dict each call: tests may change it)."""
    return load_params(PARAMS_PATH)


def drift_settings(**overrides: Any) -> DriftParams:
    """The fixture's drift section, with `overrides` applied."""
    raw = fixture_params()
    raw["drift"].update(overrides)
    return DriftParams.from_params(raw)


def fit_and_export(
    train: pd.DataFrame,
    test: pd.DataFrame,
    contract: Contract,
    model: ModelParams,
    onnx_path: Path,
) -> tuple[Any, dict[str, Any]]:
    """A model fitted by the train stage and written to `onnx_path` by the export stage (parity
    checked on `test`), as the pipeline would: the fitted pipeline and the export metrics."""
    from gitops_ml.pipeline.export import export_model
    from gitops_ml.pipeline.train import fit_model

    fitted = fit_model(train, contract, model)
    onnx_bytes, metrics = export_model(fitted, test, contract, EXPORT)
    gio.write_bytes(onnx_path, onnx_bytes)
    return fitted, metrics


INTERPOLATION = re.compile(r"\$\{\s*([\w.-]+)\s*\}")


def dvc_stages(root: Path) -> dict[str, Any]:
    """The stages of root's dvc.yaml with each `${key}` filled in from root's params.yaml, as
    DVC's templating resolves them (a stage names the data file as `${data.source}`)."""
    params = load_params(root / paths.PARAMS)

    def value(match: re.Match[str]) -> str:
        node: Any = params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    def resolve(node: Any) -> Any:
        if isinstance(node, str):
            return INTERPOLATION.sub(value, node)
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if isinstance(node, dict):
            return {resolve(key): resolve(item) for key, item in node.items()}
        return node

    stages: dict[str, Any] = resolve(yaml.safe_load((root / paths.DVC_YAML).read_text())["stages"])
    return stages
