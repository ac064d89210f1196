"""split: validated data into train and test sets (`split.*` in params.yaml).

With a timestamp column in the contract, the test set is the newest data, as in production
where the model always predicts the future: rows are sorted by (timestamp, id) and the last
round(rows x test_fraction) rows are the test set. The cut is by row count, so the boundary
timestamp can appear on both sides; the id tie-break makes that deterministic. Without a
timestamp, a seeded split stratified on the target keeps the class balance equal.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import SplitParams, load_params
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError

RATE_DIGITS = 4


class SplitError(UserError):
    """The data cannot be split as configured (too few rows, one class only, missing labels)."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    summary: dict[str, Any]  # the content of metrics/data.json


def _stamp(value: pd.Timestamp) -> str:
    """A date when the timestamps are dates (the usual snapshot data), else full ISO 8601."""
    return value.date().isoformat() if value == value.normalize() else value.isoformat()


def _test_size(rows: int, params: SplitParams) -> int:
    size = round(rows * params.test_fraction)
    if size < 1 or size > rows - 1:
        side = "test" if size < 1 else "train"
        raise SplitError(
            f"split.test_fraction {params.test_fraction} of {rows:,} rows leaves the {side} set "
            "empty; use more data or a different test_fraction"
        )
    return size


Rows = tuple[np.ndarray, np.ndarray, dict[str, Any]]  # train positions, test positions, info


def _by_time(frame: pd.DataFrame, timestamp: str, id_column: str | None, size: int) -> Rows:
    missing = int(frame[timestamp].isna().sum())
    if missing:
        raise SplitError(
            f"timestamp column {timestamp!r} has {missing:,} missing values; a time split needs "
            "a timestamp on every row (make the column non-nullable in the contract)"
        )
    keys = [timestamp] + ([id_column] if id_column else [])
    order = frame.sort_values(keys, kind="stable").index.to_numpy()
    train_rows, test_rows = order[:-size], order[-size:]
    info = {
        "method": "time",
        "train_end": _stamp(frame[timestamp].iloc[train_rows[-1]]),
        "test_start": _stamp(frame[timestamp].iloc[test_rows[0]]),
    }
    return train_rows, test_rows, info


def _stratified(frame: pd.DataFrame, contract: Contract, size: int, seed: int) -> Rows:
    from sklearn.model_selection import train_test_split  # slow import, needed only here

    target = frame[contract.target].to_numpy()
    try:
        train_rows, test_rows = train_test_split(
            np.arange(len(frame)), test_size=size, random_state=seed, stratify=target
        )
    except ValueError as exc:  # e.g. a class with a single row
        raise SplitError(f"cannot stratify on {contract.target!r}: {exc}") from None
    return np.sort(train_rows), np.sort(test_rows), {"method": "stratified", "seed": seed}


def split_frame(frame: pd.DataFrame, contract: Contract, params: SplitParams) -> Split:
    """Train/test split of validated data; same data and params give the same split."""
    frame = frame.reset_index(drop=True)
    target = contract.target
    missing = int(frame[target].isna().sum())
    if missing:
        raise SplitError(f"target {target!r} has {missing:,} missing values; label every row")
    size = _test_size(len(frame), params)
    if contract.timestamp:
        train_rows, test_rows, info = _by_time(frame, contract.timestamp, contract.id_column, size)
    else:
        train_rows, test_rows, info = _stratified(frame, contract, size, params.seed)
    train, test = frame.iloc[train_rows], frame.iloc[test_rows]
    for name, part in (("train", train), ("test", test)):
        classes = part[target].astype(bool).unique()
        if len(classes) < 2:
            raise SplitError(
                f"the {name} set ({len(part):,} rows) holds only {target}={bool(classes[0])}; "
                "a classifier needs both classes in train and test"
            )
    summary = {
        "rows": {"total": len(frame), "train": len(train), "test": len(test)},
        "positive_rate": {
            "train": round(float(train[target].astype(bool).mean()), RATE_DIGITS),
            "test": round(float(test[target].astype(bool).mean()), RATE_DIGITS),
        },
        "split": info,
    }
    return Split(train.reset_index(drop=True), test.reset_index(drop=True), summary)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default=paths.VALIDATED)
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--train", default=paths.TRAIN)
    parser.add_argument("--test", default=paths.TEST)
    parser.add_argument("--summary", default=paths.DATA_METRICS, help="split metrics JSON")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    for stale in (args.train, args.test):  # a failed split must not leave an old one behind
        Path(stale).unlink(missing_ok=True)
    params = SplitParams.from_params(load_params(args.params))
    contract = load_contract(args.contract)
    result = split_frame(gio.read_table(args.input), contract, params)
    gio.write_parquet(args.train, result.train)
    gio.write_parquet(args.test, result.test)
    gio.write_json(args.summary, result.summary)
    rows, info = result.summary["rows"], result.summary["split"]
    boundary = f", test from {info['test_start']}" if info["method"] == "time" else ""
    print(
        f"split: {info['method']} split{boundary}: {rows['train']:,} train / {rows['test']:,} "
        f"test rows in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return 0
