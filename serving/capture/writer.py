"""The prediction log's writer: requests put small entries on a bounded queue; one background
thread encodes and writes them to a sink. When the queue is full or the disk fails the rows
are dropped and counted: logging must never block or crash serving. A file never holds a
partial record (a short write is cut back to the last whole one) and the counters say exactly
what reached it.

Two sinks take what the writer writes, through one interface (`Sink`): `LogFile`, the
documented JSON lines in one file that the drift check reads (`--prediction-log`), and the
capture's `Segments` (serving/capture/segments.py): request records in rotating files that a
shipper expands and uploads.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gitops_ml.errors import UserError
from serving.capture.codec import Predicted, expand, record_head

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

logger = logging.getLogger("serving.prediction_log")
LINGER_SECONDS = 0.02  # the writer's wait for more requests before writing a batch
BATCH_ROWS = 1000  # rows the writer gathers into one write, about
MAX_PENDING_BODY_BYTES = 64 * 1024 * 1024  # past this, entries keep columns, not bodies
# (epoch seconds, request_id, ids, columns, predicted (serving.capture.codec), sampled rows
# or None for all, the raw request body and its API when the entry keeps the body).
Entry = tuple[
    float,
    str,
    Sequence[Any] | None,
    Mapping[str, Sequence[Any]],
    Predicted,
    Sequence[int] | None,
    bytes | None,
    str,
]
Unit = tuple[bytes, int]  # bytes appended together, and the rows they log
_STOP = object()


class PredictionLogError(UserError):
    """The prediction log path cannot be written: refused at startup, not discovered later."""


class ShortWrite(Exception):
    """A write that failed part way: `rows` of its units reached the file whole."""

    def __init__(self, rows: int, cause: OSError) -> None:
        super().__init__(str(cause))
        self.rows = rows


@dataclass
class ModelTag:
    """The model every logged row names, with its request-record head encoded once."""

    name: str
    version: str
    head: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.head = record_head(self.name, self.version)


class Sink:
    """Where the writer thread puts what requests logged: `LogFile`, or the capture's
    `Segments`. The defaults here are those of a sink with one file that never rotates."""

    keeps_bodies = False  # whether entries may keep the raw body (a shipper parses it)

    def open(self) -> None:
        """Make ready to write, or raise a UserError that stops the server at startup."""

    def encode(self, entry: Entry, model: ModelTag) -> list[Unit]:
        raise NotImplementedError

    def append(self, units: list[Unit]) -> None:
        """Write the units whole, or raise ShortWrite (OSError and PredictionLogError too)."""
        raise NotImplementedError

    def room(self) -> int:
        """Bytes the current file takes before the sink wants a new one."""
        return 1 << 62

    def due_in(self) -> float | None:
        """Seconds the writer may wait for entries before `rotate_if_due` has work."""
        return None

    def rotate_if_due(self) -> None:
        """Start a new file when the current one is due (size, age, a new hour)."""

    def close(self) -> None:
        """After the writer's last write."""

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """The sink's own counters on the server's registry."""


class AppendFile:
    """A file appended with whole records only, reopened when the path no longer names it
    (removed or rotated), its directory recreated."""

    def __init__(self, path: Path, drop_torn_tail: Callable[[int, int], None]) -> None:
        self.path = path
        self._drop_torn_tail = drop_torn_tail  # (fd, size): cut what a crash left half-written
        self._fd: int | None = None
        self._identity: tuple[int, int] = (0, 0)

    def open(self) -> int:
        if self._fd is not None:
            return self._fd
        where = f"prediction log {self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except IsADirectoryError:
            raise PredictionLogError(f"{where}: is a directory; give a file path") from None
        except (NotADirectoryError, FileExistsError):
            raise PredictionLogError(f"{where}: a parent of the path is a file") from None
        except PermissionError:
            raise PredictionLogError(f"{where}: not writable (permission denied)") from None
        except OSError as exc:
            raise PredictionLogError(f"{where}: cannot be opened: {exc.strerror}") from None
        stat = os.fstat(fd)
        self._identity = (stat.st_dev, stat.st_ino)
        self._drop_torn_tail(fd, stat.st_size)
        self._fd = fd
        return fd

    def size(self) -> int:
        return 0 if self._fd is None else os.fstat(self._fd).st_size

    def _current(self) -> int:
        try:
            stat = os.stat(self.path)
            moved = (stat.st_dev, stat.st_ino) != self._identity
        except OSError:
            moved = True
        if self._fd is not None and not moved:
            return self._fd
        if self._fd is not None:
            self.close()
            logger.warning("%s was removed or rotated; reopening it", self.path)
        return self.open()

    def append(self, units: list[Unit]) -> None:
        fd = self._current()
        data = b"".join(line for line, _ in units)
        start = os.fstat(fd).st_size
        done = 0
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(fd, view[done:])
        except OSError as exc:
            whole = rows = 0
            for line, n in units:
                if whole + len(line) > done:
                    break
                whole, rows = whole + len(line), rows + n
            if whole < done:
                try:
                    os.ftruncate(fd, start + whole)
                except OSError:  # the next open cuts the torn tail instead
                    self.close()
            raise ShortWrite(rows, exc) from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def drop_partial_line(fd: int, size: int, window: int = 1 << 20) -> None:
    """Cut a line left half-written (a crash mid-write) so the next line starts clean."""
    if size == 0:
        return
    tail = os.pread(fd, min(size, window), max(0, size - window))
    if tail.endswith(b"\n"):
        return
    newline = tail.rfind(b"\n")
    if newline >= 0:
        os.ftruncate(fd, size - len(tail) + newline + 1)
    elif size <= window:
        os.ftruncate(fd, 0)


class LogFile(Sink):
    """The documented lines, one per logged row, in one file (`--prediction-log`)."""

    def __init__(self, path: str | Path) -> None:
        self.file = AppendFile(Path(path), drop_partial_line)

    def open(self) -> None:
        """Open the file now (creating its directory), so that a path that cannot be written
        stops the server at startup with `error: ...` instead of dropping every line."""
        self.file.open()

    def append(self, units: list[Unit]) -> None:
        self.file.append(units)

    def close(self) -> None:
        self.file.close()

    def encode(self, entry: Entry, model: ModelTag) -> list[Unit]:
        ts, request_id, ids, columns, predicted, rows, _, _ = entry
        lists = {key: np.asarray(values).tolist() for key, values in predicted.items()}
        lines = expand(ts, request_id, (model.name, model.version), ids, columns, lists, rows)
        return [(line, 1) for line in lines]


class PredictionLog:
    """The server's one writer: `record` on the event loop, encoding and writing on a thread."""

    def __init__(
        self,
        sink: Sink | str | Path,
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
        self.sink: Sink = LogFile(sink) if isinstance(sink, str | Path) else sink
        self.sample_rate = sample_rate
        self.model = ModelTag(model_name, model_version)
        self.queue: queue.Queue[Any] = queue.Queue()  # requests; rows bounded by max_queue
        self.max_queue = max_queue
        self.pending = 0  # rows queued and not yet taken by the writer
        self.pending_bytes = 0  # bytes of request bodies queued
        self._lock = threading.Lock()
        self.on_written = on_written
        self.on_dropped = on_dropped
        self._random = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """The sink's own counters (a capture's shipping) on the server's registry."""
        self.sink.register_metrics(registry)

    def open(self) -> None:
        """Make the sink ready now: a path that cannot be written stops the server at startup."""
        self.sink.open()

    def start(self) -> None:
        self.open()
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the writer thread, then close the sink (a capture
        closes its last segment and ships what is closed, within its drain time)."""
        if self._thread.is_alive():
            try:
                self.queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass
            else:
                self._thread.join(timeout)
        if not self._thread.is_alive():
            self.sink.close()

    def _sampled(self, rows: int) -> Sequence[int]:
        if self.sample_rate >= 1.0:
            return range(rows)  # recorded as None: every row
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
        predicted: Predicted,
        ids: Sequence[Any] | None = None,
        body: bytes | None = None,
        api: str = "v2",
    ) -> None:
        """Queue the sampled rows of one request, with its `predicted` (one column per key of
        the logged prediction, serving.outputs), as one entry (the writer thread encodes it,
        off the event loop); rows past `max_queue` pending are dropped and counted. When the
        sink keeps bodies, the entry keeps the raw `body` (its `api`: "v2" or "predict"),
        written as it is for the shipper to parse again: the serving process encodes nothing
        per row. Never blocks, never raises."""
        total = len(next(iter(predicted.values())))
        rows = self._sampled(total)
        if not rows:
            return
        with self._lock:
            room = self.max_queue - self.pending
            taken = rows if len(rows) <= room else rows[: max(room, 0)]
            self.pending += len(taken)
            if body is not None and (
                not self.sink.keeps_bodies
                or self.pending_bytes + len(body) > MAX_PENDING_BODY_BYTES
            ):
                body = None  # the columns, encoded by the writer, take less memory
            self.pending_bytes += 0 if body is None or not taken else len(body)
        if len(taken) < len(rows):
            self.on_dropped(len(rows) - len(taken))
        if taken:
            sampled = None if len(taken) == total else list(taken)
            if body is not None:  # the parsed request is freed now, by the request's thread
                ids, columns = None, {}
            entry = (time.time(), request_id, ids, columns, predicted, sampled, body, api)
            self.queue.put_nowait(entry)

    def _write(self, units: list[Unit]) -> None:
        """Append whole units, counting the rows that reached the file as written and the
        rest as dropped."""
        rows = sum(n for _, n in units)
        try:
            self.sink.append(units)
        except ShortWrite as exc:
            self.on_written(exc.rows)
            self._dropped(rows - exc.rows, exc)
            return
        except (OSError, PredictionLogError) as exc:
            self._dropped(rows, exc)
            return
        self.on_written(rows)

    def _dropped(self, rows: int, exc: Exception) -> None:
        self.on_dropped(rows)
        logger.warning("prediction log: dropped %d line(s): %s", rows, exc)

    def _batch(self) -> tuple[list[Entry], bool]:
        """The next entries, about BATCH_ROWS rows (empty when a rotation may be due), and
        whether the writer is to stop after them."""
        try:
            first = self.queue.get(timeout=self.sink.due_in())
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
            self.sink.rotate_if_due()
            units: list[Unit] = []
            for entry in batch:
                with self._lock:
                    self.pending -= entry_rows(entry)
                    self.pending_bytes -= len(entry[6] or b"")
                try:
                    units += self.sink.encode(entry, self.model)
                except (ValueError, TypeError) as exc:
                    self._dropped(entry_rows(entry), exc)
            self._write_filling(units)

    def _write_filling(self, units: list[Unit]) -> None:
        """Write the batch in pieces that fill the sink's file up to its size bound, so a busy
        writer still closes capture segments near the bound."""
        piece: list[Unit] = []
        room = self.sink.room()
        for unit in units:
            piece.append(unit)
            room -= len(unit[0])
            if room <= 0:
                self._write(piece)
                self.sink.rotate_if_due()
                piece, room = [], self.sink.room()
        if piece:
            self._write(piece)
            self.sink.rotate_if_due()


def entry_rows(entry: Entry) -> int:
    """Rows an entry logs: the sampled ones, or all of them."""
    rows = entry[5]
    return len(next(iter(entry[4].values()))) if rows is None else len(rows)
