"""Projects for the monitor tests: the fixture model's profile, and a foreign-shaped fork.

The fork's data and contract are `foreign_data`'s (the fork test's too): not the template's
churn columns. Its model is trained and exported by the real pipeline functions from the raw
values as validate reads them, so drift and simulate are tested on what a fork's pipeline would
produce.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ExportedModel
from foreign_data import FOREIGN_CONTRACT, foreign_frame
from project_fixtures import drift_settings, fit_and_export

from gitops_ml import io as gio
from gitops_ml.config import ModelParams
from gitops_ml.contract import Contract, load_contract
from gitops_ml.evaluate_metrics import parse_evaluate_metrics
from gitops_ml.monitor.profile import build_model_profile

FOREIGN_MODEL = ModelParams(
    type="hist_gradient_boosting",
    seed=3,
    hyperparams={"max_iter": 40, "learning_rate": 0.1, "min_samples_leaf": 20},
)


def write_fixture_profile(exported_model: ExportedModel, path: Path) -> None:
    """The profile of the fixture model's training split, with its test metrics (rounded)."""
    profile = build_model_profile(
        exported_model.train_frame,
        exported_model.contract,
        drift_settings(),
        exported_model.onnx_path,
        evaluate=parse_evaluate_metrics(
            {"test": {"roc_auc": 0.83, "accuracy": 0.82, "brier": 0.128}}
        ),
    )
    gio.write_json(path, profile)


@dataclass(frozen=True)
class ForeignProject:
    """A fork's contract, raw data, exported model and reference profile, in a directory."""

    directory: Path
    contract_path: Path
    contract: Contract
    onnx_path: Path
    profile_path: Path
    train_raw_path: Path
    train_frame: pd.DataFrame


@pytest.fixture(scope="session")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> ForeignProject:
    from gitops_ml.pipeline.evaluate import point_metrics
    from gitops_ml.pipeline.validate import validate_frame

    directory = tmp_path_factory.mktemp("foreign")
    contract_path = directory / "schema.yaml"
    contract_path.write_text(yaml.safe_dump(FOREIGN_CONTRACT, sort_keys=False))
    contract = load_contract(contract_path)
    raw = foreign_frame(4000, seed=1)
    raw.to_csv(directory / "train.csv", index=False)
    validated = validate_frame(raw, contract)
    assert validated.frame is not None, validated.failures
    frame = validated.frame
    train, test = frame.iloc[:3200].reset_index(drop=True), frame.iloc[3200:]
    onnx_path = directory / "model.onnx"
    fit_and_export(train, test, contract, FOREIGN_MODEL, onnx_path)
    from gitops_ml.monitor.readers import ModelScorer

    scores = ModelScorer(onnx_path, contract).score(test)
    y = test[contract.target].to_numpy(dtype=np.int64)
    evaluate = parse_evaluate_metrics(
        {"test": point_metrics(y, scores, 0.5), "rows": {"test": len(test)}}
    )
    profile = build_model_profile(train, contract, drift_settings(), onnx_path, evaluate)
    profile_path = directory / "profile.json"
    gio.write_json(profile_path, profile)
    return ForeignProject(
        directory, contract_path, contract, onnx_path, profile_path, directory / "train.csv", train
    )


def run_drift(
    profile: Path, contract: Path, current: Path | str, output_dir: Path, *extra: str
) -> int:
    """`gitops-ml drift` on a test project (its profile and contract, the fixture params)."""
    from project_fixtures import PARAMS_PATH

    from gitops_ml.cli import main

    return main(
        [
            "drift",
            "--profile",
            str(profile),
            "--current",
            str(current),
            "--contract",
            str(contract),
            "--params",
            str(PARAMS_PATH),
            "--output-dir",
            str(output_dir),
            *extra,
        ]
    )


def drift_on_fixture(
    exported_model: ExportedModel, directory: Path, current: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    """`gitops-ml drift` on the fixture model's profile: exit code, drift.json, drift.md."""
    write_fixture_profile(exported_model, directory / "profile.json")
    out = directory / "out"
    code = run_drift(directory / "profile.json", exported_model.contract_path, current, out, *extra)
    return code, json.loads((out / "drift.json").read_text()), (out / "drift.md").read_text()


def same_report(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two drift.json documents: the same text, numbers equal to 12 significant digits (sums
    added in another order differ in the last bits)."""

    def rounded(text: str) -> float:
        value = float(text)
        return float(f"{value:.12g}") if math.isfinite(value) else value

    assert json.loads(json.dumps(a), parse_float=rounded) == json.loads(
        json.dumps(b), parse_float=rounded
    )
