"""The capture writer: requests put entries on a bounded queue that one background thread
encodes and appends to the segments. A full queue or a failing disk drops the rows and counts
them: capture must never block or crash serving (docs/monitoring.md, "In the pod").
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from serving.capture.codec import Predicted, encode_record, record_head
from serving.capture.segments import Segments, ShortWrite, Unit

logger = logging.getLogger("serving.capture")
LINGER_SECONDS = 0.02  # the writer's wait for more requests before writing a batch
BATCH_ROWS = 1000  # rows the writer gathers into one write, about
MAX_PENDING_BODY_BYTES = 64 * 1024 * 1024  # request bodies queued, at most
CLOSE_SECONDS = 5.0  # the writer's time to write what is queued when the server stops
_STOP = object()
# What a request queues, `encode_record`'s arguments: (epoch seconds, request_id, api,
# predicted, sampled rows or None for all, the body as received).
Entry = tuple[float, str, str, Predicted, Sequence[int] | None, bytes]


def entry_rows(entry: Entry) -> int:
    rows = entry[4]
    return len(next(iter(entry[3].values()))) if rows is None else len(rows)


class PredictionLog:
    """The server's one writer: `record` on the event loop, encoding and writing on a thread."""

    def __init__(
        self,
        segments: Segments,
        sample_rate: float,
        model_name: str,
        model_version: str,
        max_queue: int = 10_000,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        seed: int | None = None,
    ) -> None:
        self.segments = segments
        self.sample_rate = sample_rate
        self.head = record_head(model_name, model_version)
        self.queue: queue.Queue[Any] = queue.Queue()  # requests; rows bounded by max_queue
        self.max_queue = max_queue
        self.pending = 0  # rows queued and not yet taken by the writer
        self.pending_bytes = 0  # bytes of request bodies queued
        self._lock = threading.Lock()
        self.on_written = on_written
        self.on_dropped = on_dropped
        self._random = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)

    def start(self) -> None:
        self.segments.open()
        self._thread.start()

    def close(self) -> None:
        """Write what is queued, stop the writer thread, then close the last segment."""
        if self._thread.is_alive():
            self.queue.put(_STOP)  # the queue is unbounded: never blocks
            self._thread.join(CLOSE_SECONDS)
        if not self._thread.is_alive():
            self.segments.close()

    def _sampled(self, rows: int) -> Sequence[int]:
        if self.sample_rate >= 1.0:
            return range(rows)  # recorded as None: every row
        if self.sample_rate <= 0.0:
            return ()
        if rows == 1:
            return (0,) if self._random.random() < self.sample_rate else ()
        draws = np.random.default_rng(self._random.getrandbits(64)).random(rows)
        return np.flatnonzero(draws < self.sample_rate).tolist()

    def record(self, request_id: str, api: str, body: bytes, predicted: Predicted) -> None:
        """Queue the sampled rows of one request to `api` ("v2" or "predict") as one entry,
        encoded off the event loop. Rows past `max_queue` pending, or past
        MAX_PENDING_BODY_BYTES of bodies, are dropped and counted. Never blocks or raises."""
        total = len(next(iter(predicted.values())))
        rows = self._sampled(total)
        if not rows:
            return
        with self._lock:
            room = self.max_queue - self.pending
            if self.pending_bytes + len(body) > MAX_PENDING_BODY_BYTES:
                room = 0
            taken = rows if len(rows) <= room else rows[: max(room, 0)]
            self.pending += len(taken)
            self.pending_bytes += len(body) if taken else 0
        if len(taken) < len(rows):
            self.on_dropped(len(rows) - len(taken))
        if taken:
            sampled = None if len(taken) == total else list(taken)
            self.queue.put_nowait((time.time(), request_id, api, predicted, sampled, body))

    def _write(self, units: list[Unit]) -> None:
        """Append whole units; rows that reached the file count as written, the rest dropped."""
        rows = sum(n for _, n in units)
        try:
            self.segments.append(units)
        except ShortWrite as exc:
            self.on_written(exc.rows)
            self._dropped(rows - exc.rows, exc)
            return
        except OSError as exc:
            self._dropped(rows, exc)
            return
        self.on_written(rows)

    def _dropped(self, rows: int, exc: Exception) -> None:
        self.on_dropped(rows)
        logger.warning("capture: dropped %d row(s): %s", rows, exc)

    def _batch(self) -> tuple[list[Entry], bool]:
        """The next entries, about BATCH_ROWS rows (empty when a rotation may be due), and
        whether the writer is to stop after them."""
        try:
            first = self.queue.get(timeout=self.segments.due_in())
        except queue.Empty:
            return [], False
        batch: list[Any] = [first]
        rows = 0 if first is _STOP else entry_rows(first)
        if first is not _STOP and rows < BATCH_ROWS:
            # Let a few requests gather: waking (and taking the GIL from the event loop)
            # once per request cost more than writing their lines.
            time.sleep(LINGER_SECONDS)
        while rows < BATCH_ROWS:
            try:
                entry = self.queue.get_nowait()
            except queue.Empty:
                break
            batch.append(entry)
            rows += 0 if entry is _STOP else entry_rows(entry)
        return [entry for entry in batch if entry is not _STOP], _STOP in batch

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._batch()
            self.segments.rotate_if_due()
            units: list[Unit] = []
            for entry in batch:
                with self._lock:
                    self.pending -= entry_rows(entry)
                    self.pending_bytes -= len(entry[5])
                try:
                    units.append((encode_record(self.head, *entry), entry_rows(entry)))
                except (ValueError, TypeError) as exc:
                    self._dropped(entry_rows(entry), exc)
            self._write_filling(units)

    def _write_filling(self, units: list[Unit]) -> None:
        """Write in pieces that fill the open segment to its size bound, so that a busy writer
        still closes segments near the bound."""
        piece: list[Unit] = []
        room = self.segments.room()
        for unit in units:
            piece.append(unit)
            room -= len(unit[0])
            if room <= 0:
                self._write(piece)
                self.segments.rotate_if_due()
                piece, room = [], self.segments.room()
        if piece:
            self._write(piece)
            self.segments.rotate_if_due()
