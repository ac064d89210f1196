"""Outcomes that arrive later, joined to the predictions they belong to (`drift --labels`).

The team's own systems write outcome records to the store, any layout under one prefix, as CSV,
JSON lines (gz too) or Parquet with three columns (docs/monitoring.md):

    id         the contract's id column value, echoed as "id" in every captured prediction
    timestamp  when the outcome became known (ISO 8601; UTC unless it says otherwise)
    label      the target as the data spells it: the contract's tokens (true/false, Yes/No,
               1/0, ...) for binary, a class for multiclass, a number for regression

A prediction gets the outcome with its id when the outcome is known no earlier than the
prediction and at most `max_delay` after it; an id seen twice keeps its latest outcome. The
join counts what it did, so the report can say how many predictions have outcomes yet.

The join is out of core, a partitioned hash join: outcomes (read a batch at a time) and the
window's predictions (id, time, prediction, written by the window's map) are spilled to a
scratch directory in `buckets` parts by a hash of the id, so an id's outcome and predictions
share a bucket; each bucket is then joined on its own, in parallel, and the performance
accumulators and counters of the buckets merged. Memory is one bucket, whatever the count of
outcomes; the disk holds the spilled columns (about 40 bytes a row).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from gitops_ml.contract import Contract
from gitops_ml.errors import UserError
from gitops_ml.monitor.findings import OutcomeSummary
from gitops_ml.monitor.performance import PerformanceAccumulator, performance_accumulator
from gitops_ml.monitor.watched import classes_hint, outcome_codes, watch
from gitops_ml.monitor.windows import UNREADABLE, Source, open_source, readable

COLUMNS = ("id", "timestamp", "label")
EPOCH = pd.Timestamp(0, tz="UTC")
BATCH_ROWS = 200_000  # outcome rows read at a time
SPILL_ROWS = 1_000_000  # rows a map task buffers before it writes them to their buckets
BUCKET_BYTES = 32 * 1024 * 1024  # input bytes (window and outcome files) per join bucket
ROW_BITS = 40  # an outcome's order: its file's index above these bits, its row below


class OutcomeError(UserError):
    """An outcome file that does not follow the documented format."""


@dataclass(frozen=True)
class OutcomeJoin:
    """Where one check spills the join's two sides, and the join's rule."""

    directory: Path
    buckets: int
    max_delay: timedelta
    max_delay_text: str

    @classmethod
    def sized(
        cls, directory: Path, input_bytes: int, max_delay: timedelta, text: str
    ) -> OutcomeJoin:
        """Buckets enough that each holds about BUCKET_BYTES of the inputs."""
        return cls(directory, max(1, math.ceil(input_bytes / BUCKET_BYTES)), max_delay, text)

    def spill(self, side: str, name: str, rows: pa.Table, buckets: np.ndarray) -> None:
        """`rows` of one side ("outcomes" or "predictions") into the files `name` of their
        `buckets`."""
        order = np.argsort(buckets, kind="stable")
        bounds = np.searchsorted(buckets[order], np.arange(self.buckets + 1))
        rows = rows.take(order)
        for number, (start, end) in enumerate(itertools.pairwise(bounds)):
            if end > start:
                path = self.directory / side / f"{number:05d}" / f"{name}.arrow"
                path.parent.mkdir(parents=True, exist_ok=True)
                feather.write_feather(rows.slice(start, end - start), path)

    def known(self) -> KnownOutcomes:
        """Every outcome at once (the window table, which holds every row anyway)."""
        parts = [self.bucket("outcomes", number) for number in range(self.buckets)]
        return KnownOutcomes(latest(pd.concat(parts)), self.max_delay)

    def bucket(self, side: str, number: int) -> pd.DataFrame | None:
        """A bucket's rows of one side, in the order they were spilled; None when empty."""
        folder = self.directory / side / f"{number:05d}"
        files = sorted(folder.glob("*.arrow")) if folder.is_dir() else []
        if not files:
            return None
        return pa.concat_tables(feather.read_table(path) for path in files).to_pandas()


def bucket_of(ids: np.ndarray, buckets: int) -> np.ndarray:
    """The bucket of each id: the same in every process (pandas' fixed-key hash)."""
    keys = pd.util.hash_array(np.asarray(ids, dtype=object))
    return (keys % np.uint64(buckets)).astype(np.int64)


def _batches(path: Source) -> Iterator[pd.DataFrame]:
    """An outcome file (local, or streamed from its store) a batch of rows at a time."""
    lower = path.name.lower()
    if lower.endswith((".parquet", ".pq")):
        with open_source(path, decompress=False) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS):
                yield batch.to_pandas()
    elif lower.endswith((".csv", ".csv.gz", ".txt")):
        with readable(path) as text:
            yield from pd.read_csv(text, dtype=str, keep_default_na=False, chunksize=BATCH_ROWS)
    else:
        with readable(path) as text:
            yield from pd.read_json(text, lines=True, dtype=False, chunksize=BATCH_ROWS)


class Spill:
    """Rows of one side of the join from one map task, buffered (as Arrow columns, with their
    buckets) and written to their buckets SPILL_ROWS at a time, each write a file
    `<name>-<n>` in every bucket it has rows for."""

    def __init__(self, join: OutcomeJoin, side: str, name: str) -> None:
        self.join, self.side, self.name = join, side, name
        self.tables: list[pa.Table] = []
        self.buckets: list[np.ndarray] = []
        self.rows = self.written = 0

    def add(self, columns: dict[str, np.ndarray]) -> None:
        """Rows as columns, `id` (text) among them."""
        ids = columns["id"]
        self.buckets.append(bucket_of(ids, self.join.buckets))
        rest = {key: value for key, value in columns.items() if key != "id"}
        self.tables.append(pa.table({"id": pa.array(ids, pa.string()), **rest}))
        self.rows += len(ids)
        if self.rows >= SPILL_ROWS:
            self.close()

    def close(self) -> None:
        """Write what is buffered."""
        if not self.tables:
            return
        rows, buckets = pa.concat_tables(self.tables), np.concatenate(self.buckets)
        self.join.spill(self.side, f"{self.name}-{self.written:06d}", rows, buckets)
        self.tables, self.buckets = [], []
        self.rows, self.written = 0, self.written + 1


def _checked(frame: pd.DataFrame, contract: Contract, shown: str) -> dict[str, np.ndarray]:
    """A batch of outcomes as (id, known_at epoch seconds, label code), or the error naming
    the file, the column, how many values break the format and an example."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise OutcomeError(
            f"{shown}: outcome file lacks column(s) {', '.join(missing)} (needs id, timestamp, "
            "label; see docs/monitoring.md)"
        )
    frame = frame[list(COLUMNS)].reset_index(drop=True)
    stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    bad = stamps.isna().to_numpy()
    if bad.any():
        raise OutcomeError(
            f"{shown}: column timestamp: {int(bad.sum())} value(s) are not ISO 8601 times "
            f"(e.g. {frame['timestamp'][bad].iloc[0]!r})"
        )
    codes, bad = outcome_codes(frame["label"], contract)
    bad |= np.isnan(codes)
    if bad.any():
        raise OutcomeError(
            f"{shown}: column label: {int(bad.sum())} value(s) are not a {contract.target!r} "
            f"value of the contract (e.g. {frame['label'][bad].iloc[0]!r}){classes_hint(contract)}"
        )
    if frame["id"].isna().any() or (frame["id"].astype(str) == "").any():
        raise OutcomeError(f"{shown}: column id: {int(frame['id'].isna().sum())} empty id(s)")
    return {
        "id": frame["id"].astype(str).to_numpy(dtype=object),
        "known_at": ((stamps - EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64),
        "code": codes,
    }


OutcomeFile = tuple[int, Source, str]  # its place among the outcome files, where, its name


def spill_outcomes(
    join: OutcomeJoin, part: int, files: Sequence[OutcomeFile], contract: Contract
) -> int:
    """Outcome files, each checked against the format a batch at a time, into the join's
    buckets (the map over the outcome files, a part of them a task); returns their rows."""
    spill = Spill(join, "outcomes", f"{part:05d}")
    rows = 0
    for index, path, shown in files:
        read = 0
        try:
            for frame in _batches(path):
                checked = _checked(frame, contract, shown)
                order = (index << ROW_BITS) + read + np.arange(len(frame), dtype=np.int64)
                spill.add({**checked, "order": order})
                read += len(frame)
        except UNREADABLE as exc:
            raise OutcomeError(f"{shown}: cannot read outcomes: {exc}") from None
        rows += read
    spill.close()
    return rows


def latest(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One outcome per id, the latest known (of equal times, the last read), indexed by id."""
    ordered = outcomes.sort_values(["known_at", "order"], kind="stable")
    return ordered.drop_duplicates("id", keep="last").set_index("id")


@dataclass
class Looked:
    """Predictions looked up among the outcomes: the code joined to each (NaN when none) and
    the position of each prediction's outcome (-1 when its id has none)."""

    codes: np.ndarray
    found: np.ndarray
    too_late: int


def look_up(
    outcomes: pd.DataFrame, ids: np.ndarray, logged_at: np.ndarray, max_delay: timedelta
) -> Looked:
    """The join's rule for each prediction (id, logged time in epoch seconds, NaN when the line
    has none): its id's latest outcome, when known within [0, max_delay] after it."""
    found = outcomes.index.get_indexer(pd.Index(np.asarray(ids, dtype=object)))
    has = found >= 0
    wait = outcomes["known_at"].to_numpy()[found] - logged_at
    in_time = np.isnan(logged_at) | ((wait >= 0) & (wait <= max_delay.total_seconds()))
    codes = np.where(has & in_time, outcomes["code"].to_numpy()[found], np.nan)
    return Looked(codes, found, int((has & ~in_time).sum()))


@dataclass(frozen=True)
class KnownOutcomes:
    """The latest outcome of each id (see latest) and the join's rule."""

    outcomes: pd.DataFrame
    max_delay: timedelta

    def codes(self, ids: np.ndarray, logged_at: np.ndarray) -> np.ndarray:
        """The outcome joined to each prediction, NaN when none is (see look_up)."""
        return look_up(self.outcomes, ids, logged_at, self.max_delay).codes


@dataclass
class JoinedBucket:
    """The performance accumulator and the counters of the joined rows of buckets."""

    performance: PerformanceAccumulator
    joined: int = 0
    too_late: int = 0
    outcomes: int = 0  # distinct ids with an outcome
    matched: int = 0  # of those, ids some prediction carries

    def merge(self, other: JoinedBucket) -> None:
        self.performance.merge(other.performance)
        self.joined += other.joined
        self.too_late += other.too_late
        self.outcomes += other.outcomes
        self.matched += other.matched

    def summary(self, predictions: int, max_delay: str) -> OutcomeSummary:
        unmatched = self.outcomes - self.matched
        return OutcomeSummary(
            predictions, self.joined, self.outcomes, unmatched, self.too_late, max_delay
        )


def join_bucket(
    join: OutcomeJoin, number: int, contract: Contract, profile: dict[str, Any]
) -> JoinedBucket:
    """The reduce: one bucket's predictions joined to its outcomes, into a performance
    accumulator of the task (gitops_ml.monitor.performance) and the join's counters."""
    result = JoinedBucket(performance_accumulator(contract, profile))
    spilled = join.bucket("outcomes", number)
    if spilled is None:
        return result
    outcomes = latest(spilled)
    result.outcomes = len(outcomes)
    predictions = join.bucket("predictions", number)
    if predictions is None:
        return result
    ids = predictions["id"].to_numpy(dtype=object)
    looked = look_up(outcomes, ids, predictions["logged_at"].to_numpy(), join.max_delay)
    result.matched = len(np.unique(looked.found[looked.found >= 0]))
    result.too_late = looked.too_late
    result.joined = int(np.count_nonzero(~np.isnan(looked.codes)))
    scores = predictions.filter(like=PREDICTION).to_numpy(dtype=np.float64)
    shaped = scores if watch(contract).per_class else scores[:, 0]
    result.performance.update(shaped, looked.codes)
    return result


PREDICTION = "prediction_"  # the spilled predictions' columns: prediction_0, prediction_1, …


def prediction_columns(
    ids: np.ndarray, logged_at: np.ndarray, predictions: np.ndarray | None, contract: Contract
) -> dict[str, np.ndarray]:
    """A chunk's predictions (logged or scored; None: unknown) with their ids and times, as
    the columns the window's map spills for the join."""
    width = len(contract.classes) if watch(contract).per_class else 1
    values = np.full((len(ids), width), np.nan)
    if predictions is not None:
        values[:] = np.asarray(predictions, dtype=np.float64).reshape(len(ids), width)
    columns = {f"{PREDICTION}{i}": values[:, i] for i in range(width)}
    return {"id": ids, "logged_at": logged_at, **columns}
