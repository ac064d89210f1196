"""The report speaks each task's language: its metrics in its order, its gates, its charts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from project_fixtures import fixture_params, task_fixture
from report_checks import assert_valid_markdown
from test_report import diff, inputs, row

from gitops_ml.config import EvaluateParams, ModelParams
from gitops_ml.evaluate_metrics import ConfusionMatrix, parse_evaluate_metrics
from gitops_ml.markdown import escape
from gitops_ml.metric_registry import label, metric_sets
from gitops_ml.pipeline.evaluate import evaluate
from gitops_ml.pipeline.train import fit_model, model_rows
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
    shares = {"class_shares": {side: dict.fromkeys(classes, 0.3333) for side in ("train", "test")}}
    data.metrics["metrics/data.json"] = diff(shares, shares)
    data.base_confusion_matrix = ConfusionMatrix.model_validate(base["confusion_matrix"])
    data.pr_confusion_matrix = ConfusionMatrix.model_validate(pr["confusion_matrix"])
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


def test_a_multiclass_report_shows_each_class_share_on_each_side_of_the_split() -> None:
    data = multiclass_report().split("### Data")[1]

    assert "| share of class_0 (train) | 0.3333 | 0.3333 |" in data
    assert f"| share of {escape(CLASSES[1])} (test) | 0.3333 | 0.3333 |" in data


def regression_doc(r2: float, rmse: float) -> dict[str, Any]:
    test = {"rmse": rmse, "mae": rmse * 0.8, "r2": r2, "median_absolute_error": rmse * 0.6}
    return {
        "task": "regression",
        "test": test,
        "ci95": {k: {"low": v - 0.05, "high": v + 0.05} for k, v in test.items()},
    }


def decile_plots(shift: float) -> dict[str, Any]:
    """evaluate's regression plots: per decile of the prediction, predicted vs actual and the
    residuals' percentiles."""
    rows = [
        {"decile": d, "mean_predicted": 50.0 + 20 * d, "mean_actual": 48.0 + 20 * d + shift}
        for d in range(1, 11)
    ]
    residuals = [
        {"decile": d, "residual_p10": -30.0, "residual_median": shift, "residual_p90": 25.5}
        for d in range(1, 11)
    ]
    return {
        "plots/predicted_actual.json": {"predicted_actual": rows},
        "plots/residuals.json": {"residuals": residuals},
    }


def regression_report() -> str:
    data = inputs(regression_doc(0.40, 55.0), regression_doc(0.45, 52.5))
    data.gates = GateParams.from_params(fixture_params(), "regression")
    data.metrics["metrics/export.json"]["parity.measure"] = {
        "old": "max |Δŷ| / sd(y)",
        "new": "max |Δŷ| / sd(y)",
    }
    data.base_plots, data.pr_plots = decile_plots(-2.0), decile_plots(1.0)
    return render(data).markdown


def test_a_regression_report_gates_r2_and_parity_and_no_label_flips() -> None:
    md = regression_report()

    assert md.startswith("## ✅ All 3 gates passed")
    assert row(md, "r2 ↑")[1:4] == ["0.4000", "0.4500", "+0.0500 (+12.5%)"]
    assert row(md, "rmse ↓")[5].startswith("🟢 better")
    gates = md.split("<summary>Gates</summary>")[1].split("</details>")[0]
    assert "| ONNX parity | ✅ pass | max |Δŷ| / sd(y) 1.20e-07, allowed 1e-04 |" in gates.replace(
        "&#124;", "|"
    )
    assert "label flips" not in gates and "roc_auc" not in md
    assert f"| parity: {escape('max |Δŷ| / sd(y)')} | 1.20e-07 | 1.20e-07 |" in md
    assert_valid_markdown(md)


def test_a_regression_report_charts_actual_by_decile_and_the_residuals() -> None:
    md = regression_report()

    charts = md.split("### Charts")[1]
    assert 'x-axis "Decile of the prediction" ["1", "2", ' in charts
    assert "    line [66, 86, 106, " in charts and "    line [69, 89, 109, " in charts  # base, PR
    assert "| 1 | 70.0 | 66.0 | 70.0 | 69.0 |" in charts  # one format: the largest's 4 digits
    assert "| 10 | 250.0 | 246.0 | 250.0 | 249.0 |" in charts
    assert "| 10 | -2 (-30 … +25.5) | +1 (-30 … +25.5) |" in charts


# ------------------------------------------------------------------ what evaluate really writes


@pytest.mark.parametrize(
    ("task", "chart"),
    [("multiclass", 'title "Recall per class"'), ("regression", 'title "Actual by decile')],
)
def test_the_report_reads_what_the_evaluate_stage_writes_for_each_task(
    task: str, chart: str
) -> None:
    """The real fixtures (wine, diabetes) through train and evaluate: a weak base and a better
    PR model give the task's metric rows, its slice table and its charts."""
    fixture = task_fixture(task)
    frame, contract = fixture.frame, fixture.contract
    cut = int(len(frame) * 0.7)
    train, test = frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    raw = fixture_params()
    raw["evaluate"].update(refits=0, cv_folds=2, bootstrap_samples=50)
    raw["evaluate"].pop("costs")
    params = EvaluateParams.from_params(raw)
    sides = []
    for hyperparams in ({"n_estimators": 1, "max_depth": 1}, {"n_estimators": 20}):
        model_params = ModelParams(type="random_forest", seed=0, hyperparams=hyperparams)
        model = fit_model(train, contract, model_params)
        sides.append(
            evaluate(model, model_rows(train, contract), test, contract, model_params, params)
        )
    base, pr = sides
    data = inputs(base.metrics, pr.metrics)
    data.gates = GateParams.from_params(fixture_params(), task)
    data.base_plots, data.pr_plots = ({f"plots/{k}": v for k, v in s.plots.items()} for s in sides)
    old, new = (parse_evaluate_metrics(s.metrics) for s in sides)  # as the report reads them
    data.base_slices, data.pr_slices = old.slices, new.slices
    data.base_confusion_matrix, data.pr_confusion_matrix = (
        old.confusion_matrix,
        new.confusion_matrix,
    )

    md = render(data).markdown

    headline = metric_sets(task).headline
    assert row(md, f"{headline} ↑")[5].startswith("🟢 better")
    assert chart in md.split("### Charts")[1]
    if contract.slices:  # diabetes: sex; wine has none
        slices = md.split("### Slices")[1].split("### Charts")[0]
        assert all(f"{label(m)} (base → PR)" in slices for m in metric_sets(task).slice)
    assert_valid_markdown(md)
