"""retrain: the current training data plus a labelled production window, as one file.

Used by the retraining mode of `.github/workflows/drift.yml`:
`gitops-ml retrain --window W` (base `data/raw/data.parquet`, output `data/retrain/data.parquet`)
writes the output and points `data.source` in params.yaml at it, so the retraining pull request
shows the data change as a params diff plus a new `.dvc` file, and `dvc repro` retrains on it.
Both inputs are read through the contract's encoding, so a fork's raw text ("Yes", " ") and a
simulated typed window combine into one typed table that validate reads like any source.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.monitor.readers import canonical_frame
from gitops_ml.pipeline.source import set_data_source


def append_window(base: pd.DataFrame, window: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Base rows then window rows, in contract column order; the window must carry labels."""
    if contract.target not in window.columns or window[contract.target].isna().all():
        raise UserError(
            f"the production window has no '{contract.target}' labels; retraining needs "
            "labelled rows (simulate with --labels, or join outcomes to the log first)"
        )
    missing = [c for c in contract.names if c not in window.columns]
    if missing:
        raise UserError(f"the production window lacks contract column(s) {missing}")
    labelled = window[window[contract.target].notna()]
    combined = pd.concat([base[contract.names], labelled[contract.names]], ignore_index=True)
    if contract.timestamp:
        combined = combined.sort_values(contract.timestamp, kind="stable", ignore_index=True)
    return combined


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base", default=paths.RAW, help="current training data (raw stage output)"
    )
    parser.add_argument("--window", required=True, help="labelled production window")
    parser.add_argument("--output", default=paths.RETRAIN_DATA, help="combined data (.parquet)")
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)


def run(args: argparse.Namespace) -> int:
    if not args.window.strip():
        raise UserError(
            "--window is empty: give the labelled production window, a .parquet or .csv file "
            "(drift.yml: the check job writes it with `gitops-ml drift --save-window`)"
        )
    contract = load_contract(args.contract)
    base, window = (
        canonical_frame(gio.read_table(path, raw_text=True, layout=contract.csv), contract, path)
        for path in (args.base, args.window)
    )
    combined = append_window(base, window, contract)
    params = Path(args.params)
    updated = set_data_source(params.read_text(), args.output)
    gio.write_parquet(args.output, combined)
    gio.write_text(params, updated)
    print(f"retraining data: {args.output} ({len(combined)} rows); data.source updated")
    return 0
