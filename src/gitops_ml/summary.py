"""`gitops-ml summary`: the few numbers a person wants after `make run`, from the metrics files."""

from __future__ import annotations

import argparse
from pathlib import Path

from gitops_ml import paths
from gitops_ml.evaluate_metrics import EvaluateMetrics, read_evaluate_metrics
from gitops_ml.markdown import num
from gitops_ml.metric_registry import label, metric_sets
from gitops_ml.stage_metrics import (
    DataMetrics,
    ExportMetrics,
    read_data_metrics,
    read_export_metrics,
)

# The registry's labels that are too wide for this column.
SHORT_LABELS = {
    "pr_auc": "PR AUC",
    "balanced_accuracy": "balanced acc",
    "median_absolute_error": "median AE",
}


def render_summary(evaluation: EvaluateMetrics, export: ExportMetrics, data: DataMetrics) -> str:
    rate = data.positive_rate  # binary only
    lines = [
        f"Data: {data.rows.train:,} training rows, {data.rows.test:,} test rows"
        + ("" if rate is None else f" (positive rate {num(rate.test, '.1%')} in test)"),
        "",
    ]
    rows = [("metric", "test", "95% interval", "CV mean ± std")]
    for key in metric_sets(evaluation.task).test:  # per-class metrics: in the model card
        value, ci = evaluation.test.get(key), evaluation.ci95.get(key)
        cv = evaluation.cv.get(key)
        rows.append(
            (
                SHORT_LABELS.get(key, label(key)),
                num(value),
                f"[{num(ci.low)}, {num(ci.high)}]" if ci else "",
                f"{cv.mean:.4f} ± {cv.std:.4f}" if cv else "",
            )
        )
    # Columns as wide as their widest cell: a regression target in the thousands widens them.
    name_w, test_w, interval_w, cv_w = (max(len(row[i]) for row in rows) for i in range(4))
    lines += [
        f"{name:<{name_w}}  {test:>{test_w}}   {interval:<{interval_w}}  {cv:>{cv_w}}".rstrip()
        for name, test, interval, cv in rows
    ]
    business = evaluation.business  # only when params.yaml sets evaluate.costs
    onnx, parity = export.onnx, export.parity
    lines.append("")
    if business:
        lines.append(
            f"Cost per 1,000 rows: {business.cost_per_1000:,.0f} at threshold "
            f"{business.threshold:.2f}; {business.cost_per_1000_at_best:,.0f} at the "
            f"cost-minimising threshold {business.best_threshold:.2f}"
        )
    lines += [
        f"ONNX model: {onnx.path} ({onnx.size_bytes / 1024:,.0f} KiB, opset {onnx.opset}, "
        f"sha256 {onnx.sha256[:12]}…)",
        f"ONNX parity: {parity.measure} {parity.max_abs_diff:.1e}"
        + ("" if parity.label_flips is None else f", {parity.label_flips} label flips")
        + f" on {parity.rows_checked:,} rows",
        f"Model card: {paths.MODEL_CARD}",
    ]
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-dir", default=paths.METRICS_DIR, type=Path)


def run(args: argparse.Namespace) -> int:
    metrics_dir: Path = args.metrics_dir
    print(
        render_summary(
            read_evaluate_metrics(metrics_dir / Path(paths.EVALUATE_METRICS).name),
            read_export_metrics(metrics_dir / Path(paths.EXPORT_METRICS).name),
            read_data_metrics(metrics_dir / Path(paths.DATA_METRICS).name),
        )
    )
    return 0
