"""`gitops-ml summary`: the few numbers a person wants after `make run`, from the metrics files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.errors import UserError

METRICS = [
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC"),
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("log_loss", "log loss"),
    ("brier", "Brier score"),
]


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: not found; run `make run` (dvc repro) first")
    data: dict[str, Any] = gio.read_json(path)
    return data


def render_summary(evaluation: dict[str, Any], export: dict[str, Any], data: dict[str, Any]) -> str:
    rows = data.get("rows", {})
    lines = [
        f"Data: {rows.get('train', 0):,} training rows, {rows.get('test', 0):,} test rows "
        f"(churn rate {data.get('churn_rate', {}).get('test', float('nan')):.1%} in test)",
        "",
        f"{'metric':<12}{'test':>8}   {'95% interval':<18}{'CV mean ± std':>16}",
    ]
    for key, label in METRICS:
        value = evaluation["test"][key]
        low, high = evaluation["ci95"][key]["low"], evaluation["ci95"][key]["high"]
        cv = evaluation.get("cv", {}).get(key)
        cv_text = f"{cv['mean']:.4f} ± {cv['std']:.4f}" if cv else ""
        lines.append(f"{label:<12}{value:>8.4f}   [{low:.4f}, {high:.4f}]  {cv_text:>16}".rstrip())
    business = evaluation["business"]
    onnx, parity = export["onnx"], export["parity"]
    lines += [
        "",
        f"Cost per 1,000 customers: {business['cost_per_1000']:,.0f} at threshold "
        f"{business['threshold']:.2f}; {business['cost_per_1000_at_best']:,.0f} at the "
        f"cost-minimising threshold {business['best_threshold']:.2f}",
        f"ONNX model: {onnx['path']} ({onnx['size_bytes'] / 1024:,.0f} KiB, opset {onnx['opset']}, "
        f"sha256 {onnx['sha256'][:12]}…)",
        f"ONNX parity: max |Δp| {parity['max_abs_diff']:.1e}, {parity['label_flips']} label flips "
        f"on {parity['rows_checked']:,} rows",
        "Model card: reports/model_card.md",
    ]
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-dir", default=paths.METRICS_DIR, type=Path)


def run(args: argparse.Namespace) -> int:
    metrics_dir: Path = args.metrics_dir
    print(
        render_summary(
            _load(metrics_dir / "evaluate.json"),
            _load(metrics_dir / "export.json"),
            _load(metrics_dir / "data.json"),
        )
    )
    return 0
