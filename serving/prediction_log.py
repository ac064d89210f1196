"""Optional, sampled prediction log (JSON lines) that the drift check reads.

Requests only put small records on a bounded queue; one background thread serialises and
writes them. When the queue is full or the disk fails the line is dropped and counted:
logging must never block or crash serving. Format (docs/interfaces.md):
`{"ts", "request_id", "id"?, "model", "model_version", "features": {...}, "prediction":
{"label", "score"}}`, one object per logged row; "id" is the contract's id column when the
request carried it, so a prediction can be joined with its later outcome.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("serving.prediction_log")
_STOP = object()


def timestamp() -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-26T05:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """Missing values are null in the log, whether they came as null, NaN or ""."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


class PredictionLog:
    def __init__(
        self,
        path: str | Path,
        sample_rate: float,
        model_name: str,
        model_version: str,
        max_queue: int = 10_000,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample rate must be between 0 and 1, got {sample_rate}")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.model_name = model_name
        self.model_version = model_version
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self.on_written = on_written
        self.on_dropped = on_dropped
        self._random = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread."""
        if not self._thread.is_alive():
            return
        try:
            self.queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def _sampled(self, rows: int) -> Sequence[int]:
        if self.sample_rate >= 1.0:
            return range(rows)
        if self.sample_rate <= 0.0:
            return ()
        if rows == 1:
            return (0,) if self._random.random() < self.sample_rate else ()
        draws = np.random.default_rng(self._random.getrandbits(64)).random(rows)
        return np.flatnonzero(draws < self.sample_rate).tolist()

    def record(
        self,
        request_id: str,
        columns: Mapping[str, Sequence[Any]],
        labels: np.ndarray,
        scores: np.ndarray,
        ids: Sequence[Any] | None = None,
    ) -> None:
        """Queue the sampled rows of one request; never blocks, never raises."""
        rows = self._sampled(len(labels))
        if not rows:
            return
        ts = timestamp()
        for row in rows:
            entry = (
                ts,
                request_id,
                None if ids is None else ids[row],
                {n: _clean(v[row]) for n, v in columns.items()},
                int(labels[row]),
                float(scores[row]),
            )
            try:
                self.queue.put_nowait(entry)
            except queue.Full:
                self.on_dropped(1)

    def _line(self, entry: tuple[str, str, Any, dict[str, Any], int, float]) -> str:
        ts, request_id, key, features, label, score = entry
        line: dict[str, Any] = {"ts": ts, "request_id": request_id}
        if key is not None:
            line["id"] = key
        line.update(
            model=self.model_name,
            model_version=self.model_version,
            features=features,
            prediction={"label": label, "score": score},
        )
        return json.dumps(line, allow_nan=False)

    def _run(self) -> None:
        handle = None
        stopping = False
        while not stopping:
            batch = [self.queue.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [entry for entry in batch if entry is not _STOP]
            try:
                if handle is None:
                    handle = self.path.open("a", encoding="utf-8")
                handle.write("".join(self._line(entry) + "\n" for entry in batch))
                handle.flush()
                self.on_written(len(batch))
            except (OSError, ValueError, TypeError) as exc:
                self.on_dropped(len(batch))
                logger.warning(
                    "prediction log %s: dropped %d line(s): %s", self.path, len(batch), exc
                )
                handle = None
        if handle is not None:
            handle.close()
