"""ingest: copy the data file `data.source` names (params.yaml) into data/raw, as Parquet.

`data.source` is a file in the project that DVC knows: the demo generator's output (stage
`generate`), a file tracked with `dvc add`, or one imported from a URL with `dvc import-url` (all
three set up by `gitops-ml source --set`). dvc.yaml declares it as this stage's dependency
(`${data.source}`), so a change to the data reruns everything from here. The file is copied as
it is: CSV cells as the text in the file, laid out as the contract's `csv` section says
(delimiter, header row or names); the contract's encoding reads the values in validate. The raw
file is always Parquet so that later stages read one format, fast.
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
from gitops_ml.errors import UserError

DEFAULT_OUTPUT = paths.RAW


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
    if "://" in params.source:
        raise UserError(
            f"{args.params}: data.source is a URL ({params.source}); DVC brings a URL in: run "
            f"`gitops-ml source --set {params.source}` (`dvc import-url`), which points "
            "data.source at the imported file"
        )
    print(f"ingest: reading {params.source}", flush=True)
    layout = load_contract(args.contract).csv
    # Every row at once: the Parquet file gets one schema, and a column is typed by all of its
    # values (parquet_safe); peak ~0.6 GB per million rows, under the bound.
    frame = parquet_safe(gio.read_table(params.source, raw_text=True, layout=layout))
    gio.write_parquet(args.output, frame)
    print(
        f"ingest: wrote {len(frame):,} rows x {frame.shape[1]} columns to {args.output} "
        f"in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return 0
