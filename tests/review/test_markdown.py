"""One markdown module for the report, the model card and the summary: missing reads one way,
a pipe never breaks a row, long tables are capped with a count."""

from __future__ import annotations

import math

from gitops_ml.markdown import MISSING, auto, cell, num, table
from gitops_ml.metric_registry import METRICS, label, metric


def test_missing_values_read_the_same_whatever_their_kind() -> None:
    assert num(None) == num(math.nan) == num("text") == num(True) == MISSING
    assert auto(None) == auto(math.nan) == cell(None) == MISSING


def test_numbers_format_by_size_and_cells_escape_pipes() -> None:
    assert auto(12345) == "12,345"
    assert auto(1234.5) == "1,234.5"
    assert auto(0.86123) == "0.8612"
    assert auto(1.1e-7) == "1.10e-07"
    assert cell("a|b\nc") == "a\\|b c"


def test_tables_cap_their_rows_and_say_how_many_were_left_out() -> None:
    text = table(["a"], [[i] for i in range(5)], max_rows=3)
    assert text.splitlines()[:2] == ["| a |", "|---|"]
    assert "| 2 |" in text and "| 3 |" not in text
    assert text.endswith("_… and 2 more rows not shown._")


def test_the_registry_knows_each_metric_once_and_defaults_unknown_ones() -> None:
    assert label("test.roc_auc") == "ROC AUC"
    assert metric("cost_per_1000").lower_is_better and metric("cost_custom").lower_is_better
    assert metric("mcc").label == "mcc" and not metric("mcc").lower_is_better
    assert {m.name for m in METRICS.values() if m.lower_is_better} == {
        "log_loss",
        "brier",
        "cost_per_1000",
        "cost_per_1000_at_best",
        "calibration_error",
    }
