"""The metric registry: one entry per metric (label, direction, format) and one metric set per
task, which evaluate, the review, its gates, the model card and the drift check all read."""

from __future__ import annotations

import pytest

from gitops_ml.metric_registry import (
    METRICS,
    label,
    lower_is_better,
    metric,
    metric_sets,
    per_class_name,
)
from gitops_ml.tasks import TASKS


def test_each_task_has_its_metric_set_with_its_headline_first_among_equals() -> None:
    assert {task: metric_sets(task).headline for task in TASKS} == {
        "binary": "roc_auc",
        "multiclass": "macro_f1",
        "regression": "r2",
    }
    assert metric_sets("regression").test == ("rmse", "mae", "r2", "median_absolute_error")
    assert metric_sets("multiclass").test == (
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "log_loss",
    )


@pytest.mark.parametrize("task", list(TASKS))
def test_every_name_of_a_set_is_registered_and_has_a_formula_for_its_task(task: str) -> None:
    sets = metric_sets(task, ("a", "b"))
    names = {*sets.test, *sets.slice, *sets.cv, *sets.monitor, sets.headline}

    assert sets.headline in sets.test
    for name in names:
        assert per_class_name(name)[0] in METRICS, name
        if name != "calibration_error":  # binary slices: computed from bins, not a tally
            sets.formula(name)


def test_the_binary_set_is_the_metrics_a_yes_no_model_always_had() -> None:
    binary = metric_sets("binary")

    assert binary.test == (
        "roc_auc",
        "pr_auc",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "log_loss",
        "brier",
    )
    assert binary.cv == ("roc_auc", "pr_auc", "log_loss")
    assert binary.cost is not None and metric_sets("regression").cost is None


def test_per_class_metrics_follow_the_classes_in_output_order_and_read_as_words() -> None:
    sets = metric_sets("multiclass", ("class_0", "1", "v1.2"))

    assert sets.test[4:] == (
        "recall[class_0]",
        "recall[1]",
        "recall[v1.2]",
        "precision[class_0]",
        "precision[1]",
        "precision[v1.2]",
    )
    assert label("recall[class_0]") == "recall of class_0"
    assert label("test.precision[v1.2]") == "precision of v1.2"  # a dotted class name survives
    assert not lower_is_better("recall[1]")
    assert metric_sets("multiclass", ()).test == metric_sets("multiclass").test


def test_directions_say_which_way_is_better() -> None:
    lower = {"rmse", "mae", "median_absolute_error", "log_loss", "brier", "cost_per_1000"}
    higher = {"r2", "macro_f1", "balanced_accuracy", "accuracy", "roc_auc"}

    assert all(lower_is_better(name) for name in lower)
    assert not any(lower_is_better(name) for name in higher)
    assert metric("a.b.rmse").arrow == "↓"
    assert metric("cost_of_churn").lower_is_better and not metric("my_score").lower_is_better


def test_an_unknown_metric_or_class_is_named_with_the_choices() -> None:
    with pytest.raises(KeyError, match=r"no regression formula for metric 'roc_auc'.*'r2'"):
        metric_sets("regression").formula("roc_auc")
    with pytest.raises(KeyError, match=r"recall\[<class>\]"):
        metric_sets("multiclass").formula("f1")
    with pytest.raises(KeyError, match="unknown task 'ranking'"):
        metric_sets("ranking")
