"""Retraining data: the current training data plus a labelled production window, as one file.

Used by the retraining mode of `.github/workflows/drift.yml`:
`python -m gitops_ml.monitor.retrain --base data/raw/data.parquet --window W --output OUT`
writes OUT and points `data.source` in params.yaml at it, so the retraining pull request shows
the data change as a params diff plus a new `.dvc` file, and `dvc repro` retrains on it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from gitops_ml import io as gio
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError

SOURCE_LINE = re.compile(
    r"^(data:\s*(?:#.*)?\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+source:[ \t]*)(\S+)", re.M
)


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


def set_data_source(params_text: str, source: str) -> str:
    """params.yaml with `data.source` replaced, keeping every comment and the layout."""
    updated, count = SOURCE_LINE.subn(lambda m: m.group(1) + source, params_text, count=1)
    if count != 1:
        raise UserError("params.yaml: cannot find 'data.source' to point it at the new data")
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="current training data (raw stage output)")
    parser.add_argument("--window", required=True, help="labelled production window")
    parser.add_argument("--output", required=True, help="combined data file (.parquet)")
    parser.add_argument("--contract", default="data/schema.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        contract = load_contract(args.contract)
        combined = append_window(gio.read_table(args.base), gio.read_table(args.window), contract)
        gio.write_parquet(args.output, combined)
        params = Path(args.params)
        gio.write_text(params, set_data_source(params.read_text(), args.output))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"retraining data: {args.output} ({len(combined)} rows); data.source updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
