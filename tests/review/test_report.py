"""The review report, rendered from hand-built DVC diffs: what a reviewer must be able to read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from report_checks import assert_valid_markdown

from gitops_ml.review.gates import GateParams
from gitops_ml.review.report import COMMENT_LIMIT, ReviewInputs, fit, render

GATES = GateParams(
    minimum={"roc_auc": 0.75},
    max_regression={"roc_auc": 0.01, "log_loss": 0.02},
    max_parity_diff=1e-4,
    max_label_flips=0,
)


def evaluate_doc(roc: float = 0.86, log_loss: float = 0.36, tp: int = 1100) -> dict[str, Any]:
    test = {"roc_auc": roc, "pr_auc": 0.70, "accuracy": 0.84, "f1": 0.62, "log_loss": log_loss}
    return {
        "test": test,
        "ci95": {k: {"low": v - 0.01, "high": v + 0.01} for k, v in test.items()},
        "business": {"threshold": 0.5, "cost_per_1000": 9000.0, "cost_per_1000_at_best": 7000.0},
        "confusion": {"tn": 7000, "fp": 500, "fn": 1400, "tp": tp},
    }


EXPORT = {
    "onnx": {"sha256": "ab" * 32, "size_bytes": 123456, "opset": 17},
    "parity": {"max_abs_diff": 1.2e-7, "label_flips": 0, "rows_checked": 10200},
}
DATA = {"rows": {"total": 50000, "train": 40000, "test": 10000}, "split": {"method": "time"}}
VALIDATION = {"status": "passed", "failed_checks": 0, "missing_rate": {"total_charges": 0.058}}
ROC = {"roc": [{"fpr": i / 100, "tpr": min(1.0, (i / 100) ** 0.3)} for i in range(101)]}
LOCK: dict[str, Any] = {
    "schema": "2.0",
    "stages": {
        "ingest": {"cmd": "gitops-ml ingest", "outs": [{"path": "data/raw", "md5": "1"}]},
        "train": {
            "cmd": "gitops-ml train",
            "params": {"params.yaml": {"model": {"max_iter": 250}}},
            "outs": [{"path": "models/model.joblib", "md5": "a"}],
        },
    },
}


def flatten(doc: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (doc or {}).items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def diff(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """What `dvc metrics diff --all --json` / `dvc params diff --all --json` print per file."""
    a, b = flatten(old), flatten(new)
    out = {}
    for key in sorted(set(a) | set(b)):
        entry: dict[str, Any] = {"old": a.get(key), "new": b.get(key)}
        if isinstance(a.get(key), int | float) and isinstance(b.get(key), int | float):
            entry["diff"] = b[key] - a[key]
        out[key] = entry
    return out


def inputs(
    base: dict[str, Any] | None,
    pr: dict[str, Any] | None,
    params_old: dict[str, Any] | None = None,
    params_new: dict[str, Any] | None = None,
    base_lock: dict[str, Any] | None = LOCK,
    pr_lock: dict[str, Any] | None = LOCK,
) -> ReviewInputs:
    params = {"model": {"max_iter": 250}}
    metrics = {"metrics/evaluate.json": diff(base, pr)}
    metrics["metrics/export.json"] = diff(EXPORT if base else None, EXPORT)
    metrics["metrics/data.json"] = diff(DATA if base else None, DATA)
    metrics["metrics/validation.json"] = diff(VALIDATION if base else None, VALIDATION)
    return ReviewInputs(
        base_rev="main",
        base_sha="0123456789abcdef",
        metrics=metrics,
        params={"params.yaml": diff(params_old or params, params_new or params)},
        base_plots={"plots/roc.json": ROC if base else None},
        pr_plots={"plots/roc.json": ROC},
        base_lock=base_lock,
        pr_lock=pr_lock,
        committed_lock=pr_lock,
        gates=GATES,
    )


def row(markdown: str, metric: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {metric} "))
    return [c.strip() for c in line.strip("|").split("|")]


def test_fewer_trees_report_shows_worse_metrics_with_direction_and_changed_params() -> None:
    lock = copy.deepcopy(LOCK)
    lock["stages"]["train"]["params"]["params.yaml"]["model"]["max_iter"] = 50
    lock["stages"]["train"]["outs"][0]["md5"] = "b"
    report = render(
        inputs(
            evaluate_doc(),
            evaluate_doc(roc=0.83, log_loss=0.39, tp=1000),
            params_old={"model": {"max_iter": 250}},
            params_new={"model": {"max_iter": 50}},
            pr_lock=lock,
        )
    )
    md = report.markdown
    assert_valid_markdown(md)
    assert md.startswith("## ❌ 2 of 5 gates failed: **log_loss regression**")
    assert row(md, "roc_auc ↑")[1:6] == [
        "0.8600",
        "0.8300",
        "-0.0300 (-3.5%)",
        "🔴 worse",
        "**real** (base 95% CI 0.8500–0.8700)",
    ]
    assert row(md, "log_loss ↓")[4] == "🔴 worse"  # higher log loss is worse
    assert "| `model.max_iter` | 250 | 50 |" in md
    assert "- **train**: params `model`; outputs `models/model.joblib`" in md
    assert "- unchanged: ingest" in md
    assert "| **churns** | 1,400 | 1,100 | 1,400 | 1,000 (-100) |" in md
    assert not report.passed


def test_improvement_within_the_interval_is_called_noise_and_passes() -> None:
    report = render(inputs(evaluate_doc(), evaluate_doc(roc=0.865, log_loss=0.355)))
    assert report.passed
    assert report.markdown.startswith("## ✅ All 5 gates passed")
    cells = row(report.markdown, "roc_auc ↑")
    assert cells[4] == "🟢 better"
    assert cells[5].startswith("within noise")
    assert row(report.markdown, "log_loss ↓")[4] == "🟢 better"  # lower log loss is better


def test_nothing_changed_is_said_explicitly() -> None:
    md = render(inputs(evaluate_doc(), evaluate_doc())).markdown
    assert "**Nothing changed** compared with `main` (`0123456`)" in md
    assert "No params changed." in md
    assert "No stage changed" in md
    assert_valid_markdown(md)


def test_first_pr_without_base_metrics_shows_values_as_new() -> None:
    report = render(inputs(None, evaluate_doc(), base_lock=None))
    md = report.markdown
    assert_valid_markdown(md)
    assert report.passed  # regression gates have nothing to regress from
    assert row(md, "roc_auc ↑")[1:4] == ["—", "0.8600", "new (no base value)"]
    assert "The base has no `dvc.lock`: every stage is new in this PR." in md
    assert "Blue line = this PR (the base has no curves yet)" in md
    assert "Nothing changed" not in md


def test_added_and_removed_metrics_are_marked() -> None:
    base, pr = evaluate_doc(), evaluate_doc()
    del pr["test"]["f1"]
    pr["test"]["mcc"] = 0.5
    md = render(inputs(base, pr)).markdown
    assert row(md, "f1 ↑")[3] == "removed in this PR"
    assert row(md, "mcc ↑")[1:4] == ["—", "0.5000", "new (no base value)"]


def test_stale_lock_and_changed_gates_are_warned_about_in_the_verdict() -> None:
    data = inputs(
        evaluate_doc(),
        evaluate_doc(),
        params_old={"gates": {"min": {"roc_auc": 0.8}}},
        params_new={"gates": {"min": {"roc_auc": 0.5}}},
    )
    data.committed_lock = None
    md = render(data).markdown
    verdict = md.split("### Metrics")[0]
    assert "⚠️ **Stale `dvc.lock`**" in verdict
    assert "(stages: ingest, train)" in verdict
    assert "⚠️ **This PR changes the gates themselves**" in verdict


def test_charts_are_mermaid_on_the_fixed_grid_with_base_and_pr_lines() -> None:
    md = render(inputs(evaluate_doc(), evaluate_doc())).markdown
    block = md.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert "xychart-beta" in block
    assert 'x-axis "False positive rate" [0, 0.05, 0.1,' in block
    lines = [x for x in block.splitlines() if x.strip().startswith("line [")]
    assert len(lines) == 2 and all(x.count(",") == 20 for x in lines)  # 21 grid points


def test_data_and_model_sections_show_rows_validation_and_onnx_facts() -> None:
    md = render(inputs(evaluate_doc(), evaluate_doc())).markdown
    assert "| rows (total) | 50,000 | 50,000 |" in md
    assert "| validation | passed | passed |" in md
    assert "| ONNX size | 120.6 KiB | 120.6 KiB |" in md
    assert "| parity: label flips | 0 | 0 |" in md
    assert f"`{'ab' * 32}`" in md


def test_huge_params_change_is_capped_and_the_comment_stays_under_the_limit() -> None:
    old = {"model": {f"p{i:05d}": i for i in range(5000)}}
    new = {"model": {f"p{i:05d}": i + 1 for i in range(5000)}}
    md = render(inputs(evaluate_doc(), evaluate_doc(), params_old=old, params_new=new)).markdown
    assert len(md) <= COMMENT_LIMIT
    assert "… and 4,850 more rows not shown." in md
    assert_valid_markdown(md)


def test_fit_drops_whole_trailing_sections_with_a_note() -> None:
    sections = ["## verdict", "a" * 50, "<details>\n\n" + "b" * 200 + "\n\n</details>"]
    out = fit(sections, limit=280)
    assert len(out) <= 280
    assert out.startswith("## verdict\n\n" + "a" * 50)
    assert "<details>" not in out
    assert "Report truncated" in out and "1 section(s)" in out


@pytest.mark.parametrize("limit", [COMMENT_LIMIT])
def test_a_normal_report_is_far_below_the_limit(limit: int) -> None:
    assert len(render(inputs(evaluate_doc(), evaluate_doc(roc=0.8))).markdown) < limit / 4
