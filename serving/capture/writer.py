"""The capture writer (docs/monitoring.md, "In the pod"): requests queue entries that a thread
encodes and appends to the spool; a full queue or a failing disk drops rows and counts them,
never blocking or failing a request.
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
# What a request queues: the rows it holds, then `encode_record`'s arguments (epoch seconds,
# request_id, api, predicted, sampled rows or None for all, the body as received).
Entry = tuple[int, float, str, str, Predicted, Sequence[int] | None, bytes]


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
        """Queue the sampled rows of one request to `api` ("v2" or "predict"), to be encoded off
        the event loop; rows past `max_queue` or MAX_PENDING_BODY_BYTES are dropped, counted."""
        total = len(next(iter(predicted.values())))
        rows = self._sampled(total)
        if not rows:
            return
        with self._lock:
            room = self.max_queue - self.pending
            if self.pending_bytes + len(body) > MAX_PENDING_BODY_BYTES:
                room = 0
            taken = rows if len(rows) <= room else rows[: max(room, 0)]
            kept = len(taken)
            self.pending += kept
            self.pending_bytes += len(body) if kept else 0
        if kept < len(rows):
            self.on_dropped(len(rows) - kept)
        if kept:
            sampled = None if kept == total else list(taken)
            self.queue.put_nowait((kept, time.time(), request_id, api, predicted, sampled, body))

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
        """~BATCH_ROWS rows of entries (none when a rotation may be due), and whether to stop."""
        try:
            first = self.queue.get(timeout=self.segments.due_in())
        except queue.Empty:
            return [], False
        batch: list[Any] = [first]
        rows = 0 if first is _STOP else first[0]
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
            rows += 0 if entry is _STOP else entry[0]
        return [entry for entry in batch if entry is not _STOP], _STOP in batch

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._batch()
            self.segments.rotate_if_due()
            units: list[Unit] = []
            for entry in batch:
                rows = entry[0]
                with self._lock:
                    self.pending -= rows
                    self.pending_bytes -= len(entry[6])
                try:
                    units.append((encode_record(self.head, *entry[1:]), rows))
                except (ValueError, TypeError) as exc:
                    self._dropped(rows, exc)
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
