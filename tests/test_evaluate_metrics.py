"""metrics/evaluate.json is read one way, typed: any metric names, one documented shape."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.evaluate_metrics import (
    EvaluateMetricsError,
    parse_evaluate_metrics,
    read_evaluate_metrics,
)

MINIMAL: dict[str, Any] = {"test": {"roc_auc": 0.86, "recall": None}}
SLICED: dict[str, Any] = {
    **MINIMAL,
    "ci95": {"roc_auc": {"low": 0.85, "high": 0.87}, "recall": {"low": None, "high": None}},
    "rows": {"test": 1000},
    "slices": {
        "plan": {
            "groups": {
                "basic": {"rows": 900, "positives": 90, "roc_auc": 0.85, "recall": None},
                "gold": {"rows": 12, "positives": 3, "roc_auc": 0.9, "small": True},
            },
            "gap": {"roc_auc": None},
        }
    },
}


def test_only_the_test_metrics_are_required_the_other_sections_read_as_empty() -> None:
    metrics = parse_evaluate_metrics(MINIMAL)

    assert metrics.test == {"roc_auc": 0.86, "recall": None}
    assert metrics.ci95 == {} and metrics.cv == {} and metrics.confusion == {}
    assert metrics.rows is None and metrics.business is None and metrics.training_noise is None
    assert metrics.slices == {}


def test_the_sections_read_typed() -> None:
    metrics = parse_evaluate_metrics(SLICED)

    assert metrics.ci95["roc_auc"].high == 0.87 and metrics.ci95["recall"].low is None
    assert metrics.rows is not None and metrics.rows.test == 1000


def test_any_metric_name_is_read_so_a_task_adds_metrics_without_a_change_here() -> None:
    raw = copy.deepcopy(SLICED)
    raw["test"]["mean_absolute_error"] = 3.5
    raw["ci95"]["mean_absolute_error"] = {"low": 3, "high": 4}
    raw["cv"] = {"mean_absolute_error": {"mean": 3.4, "std": 0.1}}

    metrics = parse_evaluate_metrics(raw)

    assert metrics.test["mean_absolute_error"] == 3.5
    assert metrics.ci95["mean_absolute_error"].low == 3.0
    assert metrics.cv["mean_absolute_error"].std == 0.1


def test_the_task_is_read_with_a_multiclass_confusion_matrix_and_defaults_to_binary() -> None:
    multiclass = {
        **MINIMAL,
        "task": "multiclass",
        "confusion_matrix": {
            "classes": ["a", "b", "c"],
            "counts": [[5, 1, 0], [0, 4, 2], [1, 0, 7]],
        },
    }

    metrics = parse_evaluate_metrics(multiclass)

    assert metrics.task == "multiclass" and parse_evaluate_metrics(MINIMAL).task == "binary"
    assert metrics.confusion_matrix is not None
    assert metrics.confusion_matrix.classes == ["a", "b", "c"]
    assert metrics.confusion_matrix.counts[2] == [1, 0, 7]
    with pytest.raises(EvaluateMetricsError, match="field 'task': Input should be 'binary'"):
        parse_evaluate_metrics({**MINIMAL, "task": "ranking"})


def test_a_slice_group_holds_its_counts_and_any_metric() -> None:
    groups = parse_evaluate_metrics(SLICED).slices["plan"].groups

    assert groups["basic"].rows == 900 and not groups["basic"].small
    assert groups["basic"].metric("roc_auc") == 0.85 and groups["basic"].metric("recall") is None
    assert groups["gold"].small and groups["gold"].metric("brier") is None


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(tests=m.pop("test")), "test"),
        (lambda m: m.update(extra_section={}), "extra_section"),
        (lambda m: m["ci95"]["roc_auc"].pop("high"), "ci95.roc_auc.high"),
        (lambda m: m["test"].update(roc_auc="0.86"), "test.roc_auc"),
        (lambda m: m["rows"].update(test=10.5), "rows.test"),
        (lambda m: m["slices"]["plan"]["groups"]["basic"].update(small="no"), "slices"),
        (lambda m: m["slices"]["plan"]["groups"]["gold"].update(roc_auc=[1]), "slices"),
    ],
)
def test_a_file_not_of_the_documented_shape_is_an_error_naming_the_field(
    edit: Callable[[dict[str, Any]], Any], field: str
) -> None:
    raw = copy.deepcopy(SLICED)
    edit(raw)

    with pytest.raises(EvaluateMetricsError, match=rf"^metrics/evaluate\.json: field '{field}"):
        parse_evaluate_metrics(raw)


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EvaluateMetricsError, match=r"evaluate\.json: not found; run `make run`"):
        read_evaluate_metrics(tmp_path / "evaluate.json")
    (tmp_path / "evaluate.json").write_bytes(b"{\xff")
    with pytest.raises(EvaluateMetricsError, match=r"evaluate\.json: not valid JSON"):
        read_evaluate_metrics(tmp_path / "evaluate.json")


def test_a_reader_given_a_malformed_file_says_error_and_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gio.write_json(tmp_path / "evaluate.json", {**SLICED, "ci95": {"roc_auc": [0.85, 0.87]}})

    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'evaluate.json'}: field 'ci95.roc_auc'")
    assert "Traceback" not in err
