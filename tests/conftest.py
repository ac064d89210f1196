"""Shared fixtures: a small model trained and exported by the real pipeline functions."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from project_fixtures import CONTRACT_PATH, fit_and_export
from sklearn.pipeline import Pipeline

from gitops_ml import io as gio
from gitops_ml.config import ModelParams
from gitops_ml.contract import Contract, load_contract
from gitops_ml.synthetic import generate_churn

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_ROWS = 4000
FIXTURE_MODEL = ModelParams(
    type="hist_gradient_boosting",
    seed=7,
    hyperparams={"max_iter": 60, "learning_rate": 0.1, "min_samples_leaf": 20},
)

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture scope
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with end-to-end (slow) tests first, the rest in collection order after them.

    `make test` hands whole modules to its workers (`--dist loadscope --no-loadscope-reorder`)
    and a worker takes its next module while its last tests still run: with the long modules
    started first, the many short unit modules fill the end evenly instead of one worker
    finishing a demo while the other waits."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


@dataclass(frozen=True)
class ExportedModel:
    """What an exported pipeline run leaves behind, in a temporary directory."""

    directory: Path
    onnx_path: Path
    contract_path: Path
    export_metrics_path: Path
    contract: Contract
    model: Pipeline
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract(CONTRACT_PATH)


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory, contract: Contract) -> ExportedModel:
    """HistGradientBoosting on 4,000 generated rows (time split 80/20), exported with parity."""
    directory = tmp_path_factory.mktemp("exported_model")
    frame = generate_churn(FIXTURE_ROWS, seed=11)
    cut = int(len(frame) * 0.8)
    train, test = frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    onnx_path = directory / "model.onnx"
    model, metrics = fit_and_export(train, test, contract, FIXTURE_MODEL, onnx_path)
    export_metrics_path = directory / "export.json"
    gio.write_json(export_metrics_path, metrics)
    contract_path = directory / "schema.yaml"
    shutil.copyfile(CONTRACT_PATH, contract_path)
    return ExportedModel(
        directory=directory,
        onnx_path=onnx_path,
        contract_path=contract_path,
        export_metrics_path=export_metrics_path,
        contract=contract,
        model=model,
        train_frame=train,
        test_frame=test,
    )
