"""drift.md (verdict first, features by severity, Mermaid charts) and GitHub step outputs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitops_ml import markdown
from gitops_ml.monitor.findings import (
    Chart,
    DriftResult,
    FeatureFinding,
    OutcomeSummary,
    PerformanceFinding,
    PredictionFinding,
)

VERDICT_TITLE = {
    "drift": "🔴 Drift detected",
    "warn": "🟡 Drift warning",
    "no_drift": "🟢 No drift",
    "not_enough_data": "⚪ Not enough data",
}
LEVEL_MARK = {
    "alert": "🔴 alert",
    "warn": "🟡 warn",
    "ok": "🟢 ok",
    "not_enough_data": "⚪ n/a",
    "not_computed": "⚪ not computed",
}
CHARTS = 3  # charts for the most severe drifting features


def _num(value: Any, digits: int = 3) -> str:
    """Three decimals (scientific when smaller); missing shown as everywhere (markdown.MISSING)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return markdown.MISSING
    if not isinstance(value, float):
        return str(value)
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return markdown.MISSING if value is None else f"{100 * value:.1f}%"


FEATURE_HEADER = ["feature", "type", "status", "PSI", "test stat", "adj. p", "W₁/σ", "JS"]
FEATURE_HEADER += ["missing", "unseen"]
FEATURE_ALIGN = "---|---|---|---:|---:|---:|---:|---:|---:|---:"


def feature_table(features: list[FeatureFinding]) -> list[str]:
    rows = []
    for f in features:
        d = f.distribution
        stat = markdown.MISSING if d.statistic is None else f"{d.test} {_num(d.statistic)}"
        rows.append(
            [
                markdown.code(f.name),
                f.type,
                LEVEL_MARK[f.level],
                _num(d.psi),
                stat,
                _num(d.p_adjusted),
                _num(d.wasserstein_norm),
                _num(d.js),
                f"{_pct(d.missing.ref)} → {_pct(d.missing.cur)}",
                _pct(d.unseen),
            ]
        )
    return markdown.table(FEATURE_HEADER, rows, FEATURE_ALIGN, max_rows=len(rows)).splitlines()


def _mermaid_chart(title: str, chart: Chart) -> list[str]:
    """Bars = reference share per bin, line = current share (renders on GitHub as xychart-beta)."""
    labels = ", ".join(f'"{markdown.mermaid_text(label)}"' for label in chart.labels)
    ref = ", ".join(f"{100 * v:.1f}" for v in chart.reference)
    cur = ", ".join(f"{100 * v:.1f}" for v in chart.current)
    top = max([*chart.reference, *chart.current, 0.01]) * 100
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{markdown.mermaid_text(title)}: bars = reference %, line = current %"',
        f"    x-axis [{labels}]",
        f'    y-axis "share of rows (%)" 0 --> {min(100.0, top * 1.1):.0f}',
        f"    bar [{ref}]",
        f"    line [{cur}]",
        "```",
    ]


def _performance_lines(
    performance: PerformanceFinding, outcomes: OutcomeSummary | None = None
) -> list[str]:
    lines = ["## Performance (labelled rows)", ""]
    if outcomes is not None:
        lines += [f"Outcomes joined by id: {markdown.escape(outcomes.text())}.", ""]
    reason = markdown.escape(performance.reason)
    if performance.level == "not_computed":
        return [*lines, f"Not computed: {reason}.", ""]
    if performance.level == "not_enough_data":
        return [*lines, f"Not enough data: {reason}.", ""]
    note = f" Note: {reason}." if performance.reason else ""
    lines += [
        f"Status: **{LEVEL_MARK[performance.level]}** on {performance.rows:,} labelled rows.{note}",
        "",
        "| metric | training | current | 95% CI | degraded |",
        "|---|---:|---:|---|---|",
    ]
    for name, row in performance.metrics.items():
        ci = row.ci95
        ci_text = markdown.MISSING if ci is None else f"[{_num(ci.low)}, {_num(ci.high)}]"
        degraded = "yes" if row.degraded else "no" if row.training is not None else markdown.MISSING
        values = f"{_num(row.training)} | {_num(row.current)}"
        lines.append(f"| {markdown.escape(name)} | {values} | {ci_text} | {degraded} |")
    return [*lines, ""]


def _prediction_lines(prediction: PredictionFinding) -> list[str]:
    d = prediction.distribution
    reason = markdown.escape(prediction.reason)
    title = f"Prediction drift (the model's {prediction.watched})"
    if d is None:
        return [f"{title}: not computed — {reason}.", ""]
    note = f" ({reason})" if prediction.reason else ""
    if d.kind == "categorical":
        evidence = f"PSI {_num(d.psi)}, chi-square {_num(d.statistic)} over the classes"
    else:
        evidence = (
            f"PSI {_num(d.psi)}, KS {_num(d.statistic)}, "
            f"mean {_num(d.mean_ref)} → {_num(d.mean_cur)}"
        )
    lines = [f"{title}: **{LEVEL_MARK[prediction.level]}**{note} — {evidence}.", ""]
    if prediction.probability_means:
        means = ", ".join(
            f"{markdown.code(name)} {_num(mean.reference)} → {_num(mean.current)}"
            for name, mean in prediction.probability_means.items()
        )
        lines += [f"Mean probability of each class (reference → current): {means}.", ""]
    return lines


def skipped_lines_text(result: DriftResult) -> str:
    """The warning for torn log lines: how many were skipped and where the first ones are."""
    places = ", ".join(result.skipped_line_examples)
    more = "…" if result.skipped_lines > len(result.skipped_line_examples) else ""
    return (
        f"skipped {result.skipped_lines} log line(s) that are not valid JSON "
        f"(torn writes?): {places}{more}"
    )


def render_markdown(result: DriftResult) -> str:
    """The human report: verdict and reason first, then the evidence."""
    summary = result.summary
    sources = (
        f" from {', '.join(markdown.code(s) for s in result.sources)}" if result.sources else ""
    )
    lines = [
        f"# {VERDICT_TITLE[result.verdict]}",
        "",
        f"**Verdict: `{result.verdict}`** — {markdown.escape(result.reason)}.",
        "",
        f"Window: {result.rows:,} rows{sources}; reference: {result.reference.rows:,} training "
        f"rows. Features: {summary['alert']} alert, {summary['warn']} warn, {summary['ok']} ok, "
        f"{summary['not_enough_data']} without enough data.",
        "",
    ]
    if result.skipped_lines:
        lines += [f"> ⚠️ Warning: {markdown.escape(skipped_lines_text(result))}", ""]
    lines += _prediction_lines(result.prediction)
    thresholds = result.thresholds
    lines += [
        "## Features, most severe first",
        "",
        *feature_table(result.features),
        "",
        f"A feature drifts only when its change is significant (Benjamini–Hochberg adjusted "
        f"p < {thresholds['alpha']}) **and** large (PSI ≥ {thresholds['psi_warn']} warn / "
        f"{thresholds['psi_alert']} alert, missing-rate change ≥ {thresholds['missing_warn']} / "
        f"{thresholds['missing_alert']}, unseen share ≥ {thresholds['unseen_warn']} / "
        f"{thresholds['unseen_alert']}). Numeric test: KS on the reference quantile grid; "
        "categorical: chi-square homogeneity.",
        "",
    ]
    charts = [
        (f.name, f.distribution.chart) for f in result.features if f.level in ("warn", "alert")
    ][:CHARTS]
    score = result.prediction.distribution
    if score is not None and result.prediction.level in ("warn", "alert"):
        charts.append((f"model {result.prediction.watched}", score.chart))
    if charts:
        lines += ["## Reference vs current", ""]
        for title, chart in charts:
            lines += [*_mermaid_chart(title, chart), ""]
    lines += _performance_lines(result.performance, result.outcomes)
    return "\n".join(lines).rstrip() + "\n"


def write_github_outputs(
    result: DriftResult, report: str, out_dir: Path, environ: Mapping[str, str]
) -> None:
    """Step outputs (`drift`, `verdict`, `features`, `report`) and the job summary, in Actions."""
    output = environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"drift={'true' if result.drift else 'false'}\n")
            handle.write(f"verdict={result.verdict}\n")
            # the issue title and comment quote it: escaped, and one line whatever the names
            features = ",".join(result.drifting_features)
            handle.write(f"features={markdown.escape(features)}\n")
            handle.write(f"report={out_dir / 'drift.md'}\n")
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(report + "\n")
