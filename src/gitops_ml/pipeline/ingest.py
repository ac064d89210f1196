"""ingest: load the configured data source (`data.*` in params.yaml) into data/raw.

`data.source: synthetic` runs the seeded demo generator (gitops_ml.synthetic); anything else is
a CSV/Parquet path or an http(s)/s3/gs URL, copied as it is: CSV cells as the text in the file,
laid out as the contract's `csv` section says (delimiter, header row or names); the contract's
encoding reads the values in validate. The raw file is always Parquet so that later
stages read one format, fast.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import pyarrow as pa

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DataParams, load_params
from gitops_ml.contract import load_contract
from gitops_ml.io import CsvLayout
from gitops_ml.synthetic import generate_churn

DEFAULT_OUTPUT = paths.RAW
SYNTHETIC = "synthetic"


def load_source(params: DataParams, layout: CsvLayout) -> pd.DataFrame:
    """The raw table named by `data.source` (rows/seed/scenario apply to synthetic data only),
    a CSV file read as `layout` (the contract's `csv` section) lays it out."""
    if params.source == SYNTHETIC:
        return generate_churn(params.rows, params.seed, params.scenario)
    return gio.read_table(params.source, raw_text=True, layout=layout)


def describe_source(params: DataParams) -> str:
    if params.source == SYNTHETIC:
        return f"synthetic demo data (seed {params.seed}, scenario {params.scenario})"
    return params.source


def parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns Parquet cannot store as one type (numbers and words mixed in one object column)
    become text; the values are unchanged otherwise and validate reports the bad ones."""
    out = frame.copy()
    out.columns = [str(name) for name in out.columns]
    for name in out.columns:
        if out[name].dtype != object:
            continue
        try:
            pa.array(out[name], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            out[name] = out[name].map(lambda v: v if pd.isna(v) else str(v)).astype("str")
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="raw Parquet file to write")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    params = DataParams.from_params(load_params(args.params))
    print(f"ingest: reading {describe_source(params)}", flush=True)
    layout = CsvLayout() if params.source == SYNTHETIC else load_contract(args.contract).csv
    frame = parquet_safe(load_source(params, layout))
    gio.write_parquet(args.output, frame)
    print(
        f"ingest: wrote {len(frame):,} rows x {frame.shape[1]} columns to {args.output} "
        f"in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return 0
