"""split: validated data into train and test sets (`split.*` in params.yaml).

With a timestamp column in the contract, the test set is the newest data, as in production
where the model always predicts the future: rows are sorted by (timestamp, id) and the last
round(rows x test_fraction) rows are the test set. The cut is by row count, so the boundary
timestamp can appear on both sides; the id tie-break makes that deterministic. Without a
timestamp, a seeded split stratified on the target keeps the two sets alike: on the class for
classification, on quantile bins of the target for regression (STRATA, per task).

A classifier needs every class on both sides, and the evaluate stage's stratified
cross-validation needs `evaluate.cv_folds` rows of each class in the training set: a class with
fewer rows than that is named, with the choices (merge, drop, more data), before anything is
trained.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import EvaluateParams, SplitParams, load_params
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.metric_registry import class_names
from gitops_ml.model_view import target_vector
from gitops_ml.tasks import Task, task_spec

RATE_DIGITS = 4
TARGET_BINS = 10  # quantile bins of a regression target to stratify on (fewer for little data)


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


def _the_class(y: np.ndarray, size: int) -> np.ndarray:
    """A classifier's strata are its classes."""
    return y


def _target_bins(y: np.ndarray, size: int) -> np.ndarray:
    """Equal-count bins of the target's rank (ties broken by row order, so every bin holds
    ⌊n/bins⌋ or ⌈n/bins⌉ rows even when many values tie), at most one per test row and per
    training row, and at least two rows each: each bin can send rows to both sides."""
    rows = len(y)
    bins = max(1, min(TARGET_BINS, size, rows - size, rows // 2))
    rank = np.empty(rows, dtype=np.int64)
    rank[np.argsort(y, kind="stable")] = np.arange(rows)
    return rank * bins // rows


# What a split without a timestamp stratifies on, per task: (target vector, test rows) → strata.
STRATA: dict[Task, Callable[[np.ndarray, int], np.ndarray]] = {
    "binary": _the_class,
    "multiclass": _the_class,
    "regression": _target_bins,
}


def _stratified(frame: pd.DataFrame, contract: Contract, size: int, seed: int) -> Rows:
    from sklearn.model_selection import train_test_split  # slow import, needed only here

    strata = STRATA[contract.task](target_vector(frame, contract), size)
    stratify = strata if len(np.unique(strata)) > 1 else None
    train_rows, test_rows = train_test_split(
        np.arange(len(frame)), test_size=size, random_state=seed, stratify=stratify
    )
    return np.sort(train_rows), np.sort(test_rows), {"method": "stratified", "seed": seed}


def _rounded(value: float) -> float:
    return round(float(value), RATE_DIGITS)


# What metrics/data.json says about the target on each side, per task: (target vector, class
# names) → {key: value}, written as {key: {"train": …, "test": …}}.
TARGET_SUMMARY: dict[Task, Callable[[np.ndarray, tuple[str, ...]], dict[str, Any]]] = {
    "binary": lambda y, _: {"positive_rate": _rounded(y.mean())},
    "multiclass": lambda y, names: {
        "class_shares": {
            name: _rounded(share)
            for name, share in zip(
                names, np.bincount(y, minlength=len(names)) / len(y), strict=True
            )
        }
    },
    "regression": lambda y, _: {"target_mean": _rounded(y.mean()), "target_std": _rounded(y.std())},
}


def _short_classes(part: pd.DataFrame, contract: Contract, least: int) -> list[str]:
    """The classes with fewer than `least` rows in `part`, each with its row count."""
    names = class_names(contract.task, contract.classes)
    counts = np.bincount(target_vector(part, contract), minlength=len(names))
    return [f"{names[i]!r} ({counts[i]:,} rows)" for i in np.flatnonzero(counts < least)]


CLASS_CHOICES = (
    "merge a rare class into a related one, drop its rows (and its entry in the contract's "
    "classes), or collect more data"
)


def check_class_rows(
    frame: pd.DataFrame, contract: Contract, params: SplitParams, folds: int
) -> None:
    """Before splitting: every class has the rows the split and the cross-validation need, one
    in the test set and `folds` in the training set at split.test_fraction."""
    fraction = params.test_fraction
    needed = params.rows_per_class(folds)
    rare = _short_classes(frame, contract, needed)
    if rare:
        raise SplitError(
            f"target {contract.target!r}: {len(rare)} class(es) of {len(frame):,} rows have "
            f"fewer than the {needed:,} rows the split and the cross-validation need (one in the "
            f"test set at split.test_fraction {fraction}, {folds} in the training set for "
            f"evaluate.cv_folds {folds}): {', '.join(rare)}; {CLASS_CHOICES}"
        )


def check_sides(train: pd.DataFrame, test: pd.DataFrame, contract: Contract, folds: int) -> None:
    """After splitting (a time split decides by date, not by class): every class has `folds`
    rows in the training set and one in the test set."""
    for side, part, least in (("training", train, folds), ("test", test, 1)):
        short = _short_classes(part, contract, least)
        if short:
            by_time = (
                f" (the split is by time, on {contract.timestamp!r}: to split each class at "
                "random instead, leave that column out of the contract)"
                if contract.timestamp
                else ""
            )
            raise SplitError(
                f"the {side} set ({len(part):,} rows) has fewer than {least} row(s) of "
                f"{', '.join(short)} in target {contract.target!r}; a classifier needs every "
                f"class in both sets{by_time}: change split.test_fraction, or {CLASS_CHOICES}"
            )


def split_frame(
    frame: pd.DataFrame, contract: Contract, params: SplitParams, cv_folds: int = 2
) -> Split:
    """Train/test split of validated data; same data and params give the same split.
    `cv_folds` is evaluate's: every class needs that many training rows."""
    frame = frame.reset_index(drop=True)
    target = contract.target
    missing = int(frame[target].isna().sum())
    if missing:
        raise SplitError(f"target {target!r} has {missing:,} missing values; label every row")
    size = _test_size(len(frame), params)
    classification = task_spec(contract.task).classification
    if classification:
        check_class_rows(frame, contract, params, cv_folds)
    if contract.timestamp:
        train_rows, test_rows, info = _by_time(frame, contract.timestamp, contract.id_column, size)
    else:
        train_rows, test_rows, info = _stratified(frame, contract, size, params.seed)
    train, test = frame.iloc[train_rows], frame.iloc[test_rows]
    if classification:
        check_sides(train, test, contract, cv_folds)
    describe = TARGET_SUMMARY[contract.task]
    sides = {
        side: describe(target_vector(part, contract), class_names(contract.task, contract.classes))
        for side, part in (("train", train), ("test", test))
    }
    summary: dict[str, Any] = {
        "rows": {"total": len(frame), "train": len(train), "test": len(test)}
    }
    summary.update({key: {side: sides[side][key] for side in sides} for key in sides["train"]})
    summary["split"] = info
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
    raw = load_params(args.params)
    params = SplitParams.from_params(raw)
    folds = EvaluateParams.from_params(raw).cv_folds
    contract = load_contract(args.contract)
    # Every row at once: the newest rows by timestamp (or a stratified draw) are the test set.
    result = split_frame(gio.read_table(args.input), contract, params, folds)
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
