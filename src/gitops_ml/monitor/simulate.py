"""simulate: synthetic production traffic for one drift scenario, for the demo and the tests.

Uses the churn generator's drift knobs with a seed different from training, dated after the
training period. Writes Parquet, CSV or the serving prediction-log JSON lines (scored with
`--model`), with the true outcome attached only when `--labels` is given, as in production where
labels arrive later.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml.config import SCENARIOS, DriftParams, load_params
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.synthetic import generate_churn

TRAFFIC_START = "2026-01-01"  # after the generator's default training period (2024–2025)
TRAFFIC_DAYS = 30
DEFAULT_SEED = 20260101


def simulate_traffic(
    scenario: str, rows: int, seed: int = DEFAULT_SEED, labels: bool = False
) -> pd.DataFrame:
    """One window of `rows` customers under `scenario`; the target column only with `labels`."""
    if scenario not in SCENARIOS:
        raise UserError(f"unknown scenario {scenario!r}; expected one of {list(SCENARIOS)}")
    if rows <= 0:
        raise UserError(f"--rows must be positive, got {rows}")
    frame = generate_churn(rows, seed, scenario, start=TRAFFIC_START, days=TRAFFIC_DAYS)
    return frame if labels else frame.drop(columns=["churned"])


def prediction_log_lines(
    frame: pd.DataFrame, contract: Contract, scores: np.ndarray | None
) -> list[str]:
    """Rows in the serving prediction-log format (docs/interfaces.md), one JSON object each."""
    features = frame[contract.feature_names].astype(object)
    features = features.where(features.notna(), None)
    has_label = contract.target in frame.columns
    lines = []
    for i, record in enumerate(features.to_dict(orient="records")):
        item: dict[str, Any] = {
            "ts": f"{pd.Timestamp(frame[contract.timestamp].iloc[i]).date()}T00:00:00.000Z"
            if contract.timestamp
            else None,
            "request_id": f"sim-{i:08d}",
            "model": "churn-model",
            "model_version": "simulated",
            "features": {k: _plain(v) for k, v in record.items()},
        }
        if scores is not None:
            item["prediction"] = {"label": int(scores[i] >= 0.5), "score": float(scores[i])}
        if has_label:
            item["label"] = int(bool(frame[contract.target].iloc[i]))
        lines.append(json.dumps(item, sort_keys=True))
    return lines


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", choices=SCENARIOS, default="none")
    parser.add_argument("--rows", type=int, default=None, help="default: drift.window_rows")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--labels", action="store_true", help="attach the true outcome")
    parser.add_argument("--output", required=True, help=".parquet, .csv or .jsonl (log format)")
    parser.add_argument("--model", default=None, help="ONNX model scoring the .jsonl log rows")
    parser.add_argument("--contract", default="data/schema.yaml")
    parser.add_argument("--params", default="params.yaml")


def run(args: argparse.Namespace) -> int:
    rows = args.rows
    if rows is None:
        rows = DriftParams.from_params(load_params(args.params)).window_rows
    frame = simulate_traffic(args.scenario, rows, args.seed, args.labels)
    output = Path(args.output)
    suffix = output.name.lower()
    if suffix.endswith((".parquet", ".pq")):
        gio.write_parquet(output, frame)
    elif suffix.endswith(".csv"):
        with gio.atomic_path(output) as tmp:
            frame.to_csv(tmp, index=False)
    elif suffix.endswith((".jsonl", ".ndjson")):
        contract = load_contract(args.contract)
        scores = None
        if args.model:
            from gitops_ml.monitor.readers import ModelScorer

            scores = ModelScorer(args.model, contract).score(frame)
        gio.write_text(output, "\n".join(prediction_log_lines(frame, contract, scores)) + "\n")
    else:
        raise UserError(f"{output}: unsupported output type; use .parquet, .csv or .jsonl")
    print(f"simulated {rows} rows, scenario {args.scenario}: {output}")
    return 0
