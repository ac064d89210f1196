"""Performance on a labelled window, per task: the registry's monitor metrics of the task
(equal to scikit-learn's on the same rows), judged against training by "significant and large"."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm
from task_support import TaskProject, task_project

from gitops_ml.metric_registry import metric_sets
from gitops_ml.model_view import target_vector
from gitops_ml.monitor.drift import check_drift
from gitops_ml.monitor.readers import ModelScorer, frame_chunks

__all__ = ["task_project"]


def test_performance_is_the_task_s_monitor_metrics_and_wrong_outcomes_are_an_alert(
    task_project: TaskProject,
) -> None:
    project = task_project
    contract, frame = project.contract, project.frame
    scorer = ModelScorer(project.onnx_path, contract)
    profile = json.loads(project.profile_path.read_text())
    result = check_drift(profile, contract, frame_chunks(frame, contract), project.settings, scorer)
    y, predicted = target_vector(frame, contract), scorer.score(frame)
    if project.task == "regression":
        expected = {
            "rmse": np.sqrt(skm.mean_squared_error(y, predicted)),
            "mae": skm.mean_absolute_error(y, predicted),
            "r2": skm.r2_score(y, predicted),
        }
    else:
        labels = predicted.argmax(axis=1)
        expected = {
            "accuracy": skm.accuracy_score(y, labels),
            "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
            "macro_f1": skm.f1_score(y, labels, average="macro"),
        }
    current = {name: row.current for name, row in result.performance.metrics.items()}
    assert current == pytest.approx(expected)

    shuffled = frame.copy()
    order = np.random.default_rng(2).permutation(len(frame))
    shuffled[contract.target] = frame[contract.target].to_numpy()[order]
    wrong = check_drift(
        profile, contract, frame_chunks(shuffled, contract), project.settings, scorer
    )
    headline = metric_sets(project.task).headline
    assert wrong.performance.metrics[headline].degraded
    assert wrong.performance.level == "alert"
    assert wrong.verdict == "drift"
