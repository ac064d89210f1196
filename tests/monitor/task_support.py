"""Regression and multiclass projects for the monitor tests: the diabetes and wine fixtures
(scikit-learn's bundled data) with a small model fitted by the train stage and exported by the
export stage (parity checked), and its reference profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from project_fixtures import fit_and_export, fixture_params, task_fixture

from gitops_ml import io as gio
from gitops_ml.config import DriftParams, ModelParams
from gitops_ml.contract import Contract
from gitops_ml.evaluate_metrics import parse_evaluate_metrics
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.monitor.profile import build_model_profile
from gitops_ml.scoring import point_metrics
from gitops_ml.tasks import predictions

TASKS = ("regression", "multiclass")
MODEL = ModelParams(type="hist_gradient_boosting", seed=0, hyperparams={"max_iter": 30})
# The bundled sets are small (442 and 178 rows): the checks' row minimums fit them.
DRIFT = {"min_rows": 40, "min_feature_rows": 30}


@dataclass(frozen=True)
class TaskProject:
    """A task's contract, data (raw CSV and canonical frame), ONNX model, profile and params."""

    task: str
    directory: Path
    contract_path: Path
    contract: Contract
    data_path: Path  # the fixture's raw CSV (the contract's csv layout)
    frame: pd.DataFrame  # every row, canonical, in file order
    train: pd.DataFrame
    test: pd.DataFrame
    onnx_path: Path
    profile_path: Path
    params_path: Path
    settings: DriftParams

    def window_csv(self, name: str, rows: np.ndarray) -> Path:
        """The raw CSV lines of `rows` (positions in the file), as a window file."""
        lines = self.data_path.read_text().splitlines(keepends=True)
        path = self.directory / name
        path.write_text(lines[0] + "".join(lines[1 + int(i)] for i in np.sort(rows)))
        return path


def build_task_project(task: str, directory: Path) -> TaskProject:
    fixture = task_fixture(task)
    contract = fixture.contract
    train, test = fixture.split()
    onnx_path = directory / "model.onnx"
    model, _ = fit_and_export(train, test, contract, MODEL, onnx_path)
    predicted = predictions(model, model_frame(test, contract), task)
    evaluate = parse_evaluate_metrics(
        {
            "task": task,
            "test": point_metrics(
                target_vector(test, contract), predicted, task=task, classes=contract.classes
            ),
        }
    )
    params = fixture_params()
    params["drift"].update(DRIFT)
    params_path = directory / "params.yaml"
    params_path.write_text(yaml.safe_dump(dict(params), sort_keys=False))
    settings = DriftParams.from_params(params)
    profile = build_model_profile(train, contract, settings, onnx_path, evaluate)
    profile_path = directory / "profile.json"
    gio.write_json(profile_path, profile)
    return TaskProject(
        task,
        directory,
        fixture.contract_path,
        contract,
        fixture.data_path,
        fixture.frame,
        train,
        test,
        onnx_path,
        profile_path,
        params_path,
        settings,
    )


@pytest.fixture(scope="session", params=TASKS)
def task_project(request: pytest.FixtureRequest, tmp_path_factory: Any) -> TaskProject:
    return build_task_project(request.param, tmp_path_factory.mktemp(request.param))
