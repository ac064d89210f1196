"""The report speaks each task's language: its metrics in its order, its gates, its charts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from project_fixtures import fixture_params
from report_checks import assert_valid_markdown
from test_report import inputs, row

from gitops_ml.markdown import escape
from gitops_ml.review.gates import GateParams
from gitops_ml.review.report import render

CLASSES = ["class_0", "a|b <i>x</i>", "class_2"]  # a hostile class name: one table cell


def multiclass_doc(
    macro_f1: float, counts: list[list[int]], classes: Sequence[str] = CLASSES
) -> dict[str, Any]:
    test: dict[str, float] = {
        "accuracy": 0.90,
        "balanced_accuracy": 0.89,
        "macro_f1": macro_f1,
        "log_loss": 0.30,
    }
    for i, name in enumerate(classes):
        hits, actual = counts[i][i], sum(counts[i])
        test[f"recall[{name}]"] = hits / actual
        test[f"precision[{name}]"] = hits / sum(r[i] for r in counts)
    return {
        "task": "multiclass",
        "test": test,
        "ci95": {k: {"low": v - 0.02, "high": v + 0.02} for k, v in test.items()},
        "confusion_matrix": {"classes": list(classes), "counts": counts},
    }


BASE_COUNTS = [[18, 1, 1], [2, 16, 2], [0, 1, 19]]
PR_COUNTS = [[19, 1, 0], [2, 17, 1], [0, 1, 19]]


def multiclass_report(classes: Sequence[str] = CLASSES) -> str:
    base = multiclass_doc(0.85, BASE_COUNTS, classes)
    pr = multiclass_doc(0.91, PR_COUNTS, classes)
    data = inputs(base, pr)
    data.gates = GateParams.from_params(fixture_params(), "multiclass")
    data.base_confusion_matrix = base["confusion_matrix"]
    data.pr_confusion_matrix = pr["confusion_matrix"]
    return render(data).markdown


def test_a_multiclass_report_gates_and_orders_its_own_metrics() -> None:
    md = multiclass_report()

    assert md.startswith("## ✅ All 5 gates passed")
    table = md.split("### Metrics (test set)")[1].split("\n\n")[1]
    names = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]
    assert names[:4] == ["macro_f1 ↑", "log_loss ↓", "accuracy ↑", "balanced_accuracy ↑"]
    assert names[4:7] == [f"{escape(f'recall[{c}]')} ↑" for c in CLASSES]  # class order
    assert names[7:] == [f"{escape(f'precision[{c}]')} ↑" for c in CLASSES]
    assert row(md, "macro_f1 ↑")[1:3] == ["0.8500", "0.9100"]
    assert "roc_auc" not in md and "ROC" not in md
    assert_valid_markdown(md)


def test_a_multiclass_report_charts_recall_per_class_and_the_confusion_matrix() -> None:
    md = multiclass_report()

    charts = md.split("### Charts")[1]
    assert 'x-axis "Class" ["class_0", ' in charts and 'title "Recall per class"' in charts
    assert "    line [0.9, 0.8, 0.95]" in charts and "    line [0.95, 0.85, 0.95]" in charts
    header = f"| actual ↓ / predicted → | class_0 | {escape(CLASSES[1])} | class_2 |"
    assert header in charts
    assert "| **class_0** | 19 (+1) | 1 | 0 (-1) |" in charts
