"""The review report, rendered from hand-built DVC diffs: what a reviewer must be able to read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from report_checks import assert_valid_markdown

from gitops_ml.evaluate_metrics import Slice
from gitops_ml.review.gates import GateParams
from gitops_ml.review.paired import Comparison
from gitops_ml.review.report import COMMENT_LIMIT, FLAG_LEGEND, ReviewInputs, fit, render
from gitops_ml.scoring import Difference

GATES = GateParams(
    task="binary",
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
DATA = {
    "rows": {"total": 50000, "train": 40000, "test": 10000},
    "positive_rate": {"train": 0.25, "test": 0.24},
    "split": {"method": "time"},
}
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
    assert row(md, "roc_auc ↑")[1:7] == [
        "0.8600",
        "0.8300",
        "-0.0300 (-3.5%)",
        # unpaired: the two ±0.01 intervals add in quadrature (±0.0141), then scale from 95 % to
        # 97.5 %, the level at which the two regression-gated metrics together err at most 5 %
        "-0.0462 … -0.0138",
        "🔴 worse, **real**",
        "±0.0162",
    ]
    assert row(md, "log_loss ↓")[5] == "🔴 worse, **real**"  # higher log loss is worse
    assert "| `model.max_iter` | 250 | 50 |" in md
    assert "- **train**: params `model`; outputs `models/model.joblib`" in md
    assert "- unchanged: ingest" in md
    assert "| **positive** | 1,400 | 1,100 | 1,400 | 1,000 (-100) |" in md
    assert not report.passed


def test_improvement_within_the_interval_is_called_noise_and_passes() -> None:
    report = render(inputs(evaluate_doc(), evaluate_doc(roc=0.865, log_loss=0.355)))
    assert report.passed
    assert report.markdown.startswith("## ✅ All 5 gates passed")
    cells = row(report.markdown, "roc_auc ↑")
    assert cells[5] == "🟢 better, within noise"
    assert row(report.markdown, "log_loss ↓")[5] == "🟢 better, within noise"  # lower is better


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
        params_old={"gates": {"binary": {"min": {"roc_auc": 0.8}}}},
        params_new={"gates": {"binary": {"min": {"roc_auc": 0.5}}}},
    )
    data.stale_files = ["dvc.lock"]
    md = render(data).markdown
    verdict = md.split("### Metrics")[0]
    assert "⚠️ **Stale committed outputs**: reproducing the pipeline changed 1" in verdict
    assert "`dvc.lock`. Run `make run` and commit these." in verdict
    assert "dvc repro" not in verdict
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


# ------------------------------------------------------------------ paired comparison


def test_paired_differences_drive_the_interval_the_verdict_and_the_gate() -> None:
    data = inputs(evaluate_doc(), evaluate_doc(roc=0.845, log_loss=0.37))
    data.comparison = Comparison(
        paired=True,
        note="both models scored on the PR's 10,000 test rows; intervals from 200 paired "
        "bootstrap resamples of those rows",
        rows=10_000,
        samples=200,
        differences={
            "roc_auc": Difference(-0.015, -0.019, -0.011, paired=True),
            "log_loss": Difference(0.01, -0.002, 0.022, paired=True),
        },
    )
    report = render(data)
    md = report.markdown
    assert row(md, "roc_auc ↑")[3:8] == [
        "-0.0150 (-1.7%)",
        "-0.0190 … -0.0110",
        "🔴 worse, **real**",
        "±0.0040",
        "❌ regression",
    ]
    assert row(md, "log_loss ↓")[5] == "🔴 worse, within noise"
    assert "**Paired comparison**: both models scored on the PR's 10,000 test rows" in md
    assert [g.name for g in report.gates if not g.passed] == ["roc_auc regression"]


def test_unpaired_fallback_is_labelled_with_its_reason() -> None:
    data = inputs(evaluate_doc(), evaluate_doc(roc=0.85))
    data.comparison = Comparison(paired=False, note="the test sets differ (…)")
    md = render(data).markdown
    assert "**Unpaired comparison** (the test sets differ (…)): each interval" in md
    assert row(md, "roc_auc ↑")[4] == "-0.0262 … +0.0062"


def test_the_interval_level_is_family_wise_over_the_regression_gates_and_named() -> None:
    md = render(inputs(evaluate_doc(), evaluate_doc(roc=0.85))).markdown
    header = next(x for x in md.splitlines() if x.startswith("| metric |"))
    assert "| 97.5% interval |" in header
    assert "97.5% intervals: the 2 regression-gated metrics together call randomness real at " in md
    assert "no training noise measured (`evaluate.refits: 0`)" in md

    one_gate = inputs(evaluate_doc(), evaluate_doc(roc=0.85))
    one_gate.gates = GATES.model_copy(update={"max_regression": {"roc_auc": 0.01}})
    assert "| 95% interval |" in render(one_gate).markdown


def test_training_noise_of_both_sides_widens_the_interval_in_quadrature() -> None:
    def with_noise(doc: dict[str, Any], sd: float) -> dict[str, Any]:
        return {**doc, "training_noise": {"refits": 5, "fraction": 0.95, "sd": {"roc_auc": sd}}}

    data = inputs(with_noise(evaluate_doc(), 0.003), with_noise(evaluate_doc(roc=0.85), 0.004))
    data.comparison = Comparison(paired=False, note="the test sets differ (…)")
    md = render(data).markdown
    # test-set half-width 0.0162 (as above) and training t(97.5 %, 4 df) 3.4954 ×
    # √(0.003² + 0.004²) = 0.0175: the spread of 5 refits is itself an estimate
    assert row(md, "roc_auc ↑")[4] == "-0.0338 … +0.0138"
    assert "they include the training noise (the spread of 5 refits" in md
    assert row(md, "log_loss ↓")[4] == "-0.0162 … +0.0162"  # no noise measured for it: unchanged


def test_a_base_without_training_noise_borrows_the_prs_and_the_note_says_so() -> None:
    pr = {**evaluate_doc(roc=0.85), "training_noise": {"refits": 5, "sd": {"roc_auc": 0.004}}}
    data = inputs(evaluate_doc(), pr)
    data.comparison = Comparison(paired=False, note="the test sets differ (…)")
    md = render(data).markdown
    assert "subsamples, the PR's counting for both: the base measured none)" in md
    # 0.0162 and 3.4954 × √2 × 0.004 = 0.0198 in quadrature
    assert row(md, "roc_auc ↑")[4] == "-0.0355 … +0.0155"


# ------------------------------------------------------------------ honest flags


def export_doc(**parity: Any) -> dict[str, Any]:
    return {**EXPORT, "parity": {**EXPORT["parity"], **parity}}


def model_rows(base_export: dict[str, Any], pr_export: dict[str, Any]) -> str:
    data = inputs(evaluate_doc(), evaluate_doc())
    data.metrics["metrics/export.json"] = diff(base_export, pr_export)
    md = render(data).markdown
    return md.split("### Model (ONNX)", 1)[1]


def test_an_improvement_is_not_flagged_and_no_legend_is_shown() -> None:
    section = model_rows(export_doc(max_abs_diff=1.11e-07), export_doc(max_abs_diff=1.10e-07))
    assert "| parity: max abs diff | 1.11e-07 | 1.10e-07 |" in section
    assert "⚠️" not in section


def test_a_worse_value_and_a_changed_hash_are_flagged_with_a_legend() -> None:
    pr = {**export_doc(label_flips=2), "onnx": {**EXPORT["onnx"], "sha256": "cd" * 32}}
    section = model_rows(EXPORT, pr)
    assert "| parity: label flips | 0 | 2 ⚠️ |" in section
    assert "| sha256 | `abababababab` | `cdcdcdcdcdcd` ⚠️ |" in section
    assert "| ONNX size | 120.6 KiB | 120.6 KiB |" in section
    assert FLAG_LEGEND in section


def test_always_changed_stages_do_not_count_as_an_unreproduced_workspace() -> None:
    data = inputs(evaluate_doc(), evaluate_doc())
    data.status = {"source": ["always changed"]}
    assert "Workspace not reproduced" not in render(data).markdown
    data.status["train"] = [{"changed deps": {"params.yaml": "modified"}}]
    md = render(data).markdown
    assert "⚠️ **Workspace not reproduced**: `dvc status` reports changes in train;" in md


def ingest_lock(source: str, md5: str, size: int) -> dict[str, Any]:
    """A dvc.lock whose ingest stage read `source` (data.source) with this hash."""
    ingest = {
        "cmd": "gitops-ml ingest",
        "deps": [{"path": source, "md5": md5, "size": size}, {"path": "data/schema.yaml"}],
        "params": {"params.yaml": {"data.source": source}},
    }
    return {"stages": {**LOCK["stages"], "ingest": ingest}}


def test_data_section_shows_the_data_file_and_its_hash_base_vs_pr_from_dvc_lock() -> None:
    data = inputs(
        evaluate_doc(),
        evaluate_doc(),
        base_lock=ingest_lock("data/a.csv", "1" * 32, 10),
        pr_lock=ingest_lock("data/a.csv", "2" * 32, 12),
    )
    md = render(data).markdown
    assert "| data source | data/a.csv | data/a.csv |" in md
    assert "| data md5 | `111111111111` | `222222222222` ⚠️ |" in md
    assert "| data bytes | 10 | 12 |" in md


# ------------------------------------------------------------------ slices


def slices_doc(young_recall: float) -> dict[str, Slice]:
    group = {"rows": 400, "positives": 100, "roc_auc": 0.8, "positive_rate": 0.2}
    age = {
        "groups": {
            "18–40": {**group, "recall": young_recall, "calibration_error": 0.02},
            "41–95": {**group, "recall": 0.6, "calibration_error": 0.03},
            "missing": {**group, "rows": 12, "recall": 0.1, "small": True},
        },
        "gap": {"recall": round(0.6 - young_recall, 6)},
    }
    return {"age": Slice.model_validate(age)}


def test_slices_show_groups_base_vs_pr_and_the_largest_gap() -> None:
    data = inputs(evaluate_doc(), evaluate_doc())
    data.base_slices, data.pr_slices = slices_doc(0.55), slices_doc(0.40)
    md = render(data).markdown
    assert_valid_markdown(md)
    section = md.split("### Slices", 1)[1]
    assert "| 18–40 | 400 | 0.8000 → 0.8000 | 0.5500 → 0.4000 |" in section
    assert "| missing (small) | 12 |" in section
    assert "| recall | 0.0500 (18–40 vs 41–95) | 0.2000 (18–40 vs 41–95) ⚠️ |" in section
    assert "| ROC AUC | 0.0000 | 0.0000 |" in section  # equal groups: no gap, no flag
    assert FLAG_LEGEND in section


def test_a_narrower_slice_gap_is_not_flagged() -> None:
    data = inputs(evaluate_doc(), evaluate_doc())
    data.base_slices, data.pr_slices = slices_doc(0.40), slices_doc(0.55)
    section = render(data).markdown.split("### Slices", 1)[1].split("### Charts")[0]
    assert "⚠️" not in section


def test_slice_gap_gate_reads_the_pr_slices() -> None:
    data = inputs(evaluate_doc(), evaluate_doc())
    data.gates = GATES.model_copy(update={"max_slice_gap": {"recall": 0.1}})
    data.pr_slices = slices_doc(0.40)
    report = render(data)
    assert not report.passed
    assert "**recall gap across age** (largest recall gap between groups 0.2000" in report.markdown


def test_a_base_from_before_the_positive_rate_rename_still_lines_up() -> None:
    data = inputs(evaluate_doc(), evaluate_doc())
    old = {**DATA, "churn_rate": DATA["positive_rate"]}
    del old["positive_rate"]
    data.metrics["metrics/data.json"] = diff(old, DATA)
    assert "| positive rate (test) | 0.2400 | 0.2400 |" in render(data).markdown
