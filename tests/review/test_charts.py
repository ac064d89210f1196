"""The report's charts render on GitHub itself: curves thinned onto one fixed grid so base and
PR line up, a Mermaid line chart per curve, the confusion counts side by side with the change."""

from __future__ import annotations

from gitops_ml.markdown import MISSING
from gitops_ml.review.charts import confusion_table, curve_on_grid, xychart


def test_a_curve_takes_the_nearest_point_at_or_below_each_grid_x() -> None:
    points = [{"x": 0.0, "y": 0.1}, {"x": 0.4, "y": 0.5}, {"x": 1.0, "y": 0.9}]

    assert curve_on_grid(points, "x", "y", step=0.25) == [0.1, 0.1, 0.5, 0.5, 0.9]


def test_points_missing_a_coordinate_are_skipped_and_no_points_is_no_curve() -> None:
    points = [{"x": 1.0, "y": None}, {"x": 0.0, "y": 0.25}]

    assert curve_on_grid(points, "x", "y", step=0.5) == [0.25, 0.25, 0.25]
    assert curve_on_grid([], "x", "y") is None
    assert curve_on_grid([{"x": 0.5, "y": None}], "x", "y") is None


def test_a_chart_draws_base_grey_and_pr_blue_on_the_grid_labels() -> None:
    chart = xychart("ROC", "FPR", "TPR", [0.0, 0.5, 1.0], [0.0, 0.75, 1.0], step=0.5)

    assert chart.startswith("```mermaid\n") and chart.endswith("\n```")
    assert '"plotColorPalette": "#9e9e9e, #1f77b4"' in chart
    assert 'x-axis "FPR" [0, 0.5, 1]' in chart
    assert "    line [0, 0.5, 1]\n    line [0, 0.75, 1]" in chart


def test_a_chart_without_a_base_draws_the_pr_alone_in_blue() -> None:
    chart = xychart("ROC", "FPR", "TPR", None, [0.0, 1.0], step=1.0)

    assert '"plotColorPalette": "#1f77b4"' in chart and chart.count("    line [") == 1


def test_the_confusion_table_shows_the_prs_change_per_cell() -> None:
    base = {"tn": 70, "fp": 5, "fn": 14, "tp": 11}
    pr = {"tn": 72, "fp": 3, "fn": 14, "tp": 1011}

    rows = confusion_table(base, pr).splitlines()

    assert rows[2] == "| **negative** | 70 | 5 | 72 (+2) | 3 (-2) |"
    assert rows[3] == "| **positive** | 14 | 11 | 14 | 1,011 (+1,000) |"


def test_a_side_without_counts_shows_missing() -> None:
    rows = confusion_table(None, {"tn": 1, "fp": 2, "fn": 3, "tp": 4}).splitlines()

    assert rows[2] == f"| **negative** | {MISSING} | {MISSING} | 1 | 2 |"
