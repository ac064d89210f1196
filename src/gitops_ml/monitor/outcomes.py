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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.contract import Contract
from gitops_ml.errors import UserError
from gitops_ml.monitor.findings import OutcomeSummary
from gitops_ml.monitor.watched import classes_hint, outcome_codes

COLUMNS = ("id", "timestamp", "label")
EPOCH = pd.Timestamp(0, tz="UTC")


class OutcomeError(UserError):
    """An outcome file that does not follow the documented format."""


@dataclass
class Outcomes:
    """Outcomes by id, and the counters of the join done while the window is read."""

    known_at: dict[str, float]  # id -> epoch seconds
    labels: dict[str, Any]  # id -> raw label token
    max_delay: timedelta
    max_delay_text: str
    joined: int = 0
    too_late: int = 0
    _matched: set[str] = field(default_factory=set)

    def label_for(self, key: Any, ts: Any) -> Any:
        """The raw label of the prediction with id `key` logged at `ts`, or None."""
        if key is None:
            return None
        key = str(key)
        known = self.known_at.get(key)
        if known is None:
            return None
        self._matched.add(key)
        if isinstance(ts, str):
            try:
                logged = datetime.fromisoformat(ts).timestamp()
            except ValueError:
                logged = None
            if logged is not None and not 0 <= known - logged <= self.max_delay.total_seconds():
                self.too_late += 1
                return None
        self.joined += 1
        return self.labels[key]

    def summary(self, predictions: int) -> OutcomeSummary:
        return OutcomeSummary(
            predictions,
            self.joined,
            len(self.labels),
            len(self.labels) - len(self._matched),
            self.too_late,
            self.max_delay_text,
        )


def _read(path: Path) -> pd.DataFrame:
    lower = path.name.lower()
    try:
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if lower.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_json(path, lines=True, dtype=False)
    except (OSError, ValueError) as exc:
        raise OutcomeError(f"{path}: cannot read outcomes: {exc}") from None


def _outcome_frame(path: Path, contract: Contract, shown: str) -> pd.DataFrame:
    frame = _read(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise OutcomeError(
            f"{shown}: outcome file lacks column(s) {', '.join(missing)} (needs id, timestamp, "
            "label; see docs/monitoring.md)"
        )
    frame = frame[list(COLUMNS)]
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
    return pd.DataFrame(
        {
            "id": frame["id"].astype(str).to_numpy(),
            "known_at": ((stamps - EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=float),
            "label": frame["label"].to_numpy(dtype=object),
        }
    )


def load_outcomes(
    paths: list[Path], shown: list[str], contract: Contract, max_delay: timedelta, delay: str
) -> Outcomes:
    """Every outcome file, checked against the format; the latest outcome of an id wins."""
    frames = [_outcome_frame(p, contract, name) for p, name in zip(paths, shown, strict=True)]
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise OutcomeError(f"{', '.join(shown)}: no outcome rows")
    frame = frame.iloc[np.argsort(frame["known_at"].to_numpy(), kind="stable")]
    frame = frame.drop_duplicates("id", keep="last")
    ids = frame["id"].tolist()
    return Outcomes(
        dict(zip(ids, frame["known_at"].tolist(), strict=True)),
        dict(zip(ids, frame["label"].tolist(), strict=True)),
        max_delay,
        delay,
    )
