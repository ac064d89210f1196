"""Optional, sampled prediction log (JSON lines) that the drift check reads.

Requests only put small records on a bounded queue; one background thread serialises and
writes them. When the queue is full or the disk fails the line is dropped and counted:
logging must never block or crash serving. The file never holds a partial line (a short write
is truncated back to the last newline) and the counters say exactly what reached it; a file
that is removed or rotated is reopened, its directory recreated. Format (docs/interfaces.md):
`{"ts", "request_id", "id"?, "model", "model_version", "features": {...}, "prediction":
{"label", "score"}}`, one object per logged row; "id" is the contract's id column when the
request carried it, so a prediction can be joined with its later outcome.

With a `Capture` (serving/capture.py) the writer does not build those lines: it appends one
compact *request record* per request (`encode_record`: one orjson call over the request's
columns, ids, labels and scores) to the capture's open segment and closes it when it is due
(size, age, new hour). The shipper, a sidecar process in a pod, expands each record into the
documented lines (`expand_record`), gzips and uploads them: the per-row work leaves the serving
core.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from gitops_ml.errors import UserError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from serving.capture import Capture

logger = logging.getLogger("serving.prediction_log")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
LINGER_SECONDS = 0.02  # the writer's wait for more requests before writing a batch
# (epoch seconds, request_id, ids, columns, labels, scores, sampled rows or None for all,
# the raw request body and its API when the record carries the body).
Entry = tuple[
    float,
    str,
    Sequence[Any] | None,
    Mapping[str, Sequence[Any]],
    Any,
    Any,
    Sequence[int] | None,
    bytes | None,
    str,
]
COLUMNS_RECORD, BODY_RECORD = 1, 2  # first element of a request record: its kind
MAX_PENDING_BODY_BYTES = 64 * 1024 * 1024  # past this, records carry columns, not bodies
_STOP = object()


class PredictionLogError(UserError):
    """The prediction log path cannot be written: refused at startup, not discovered later."""


def timestamp(seconds: float) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-26T05:00:00.123Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: float | None) -> str:
    """A float as JSON: repr is exact and valid JSON when finite."""
    return repr(float(value)) if value is not None and math.isfinite(value) else "null"


def _blank_to_none(values: Sequence[Any]) -> Sequence[Any]:
    """A request's column with "" as None (one C-speed scan when there is none)."""
    if isinstance(values, list) and "" in values:
        return [None if value == "" else value for value in values]
    return values


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
        capture: Capture | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample rate must be between 0 and 1, got {sample_rate}")
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.model_name = model_name
        self.model_version = model_version
        self.queue: queue.Queue[Any] = queue.Queue()  # requests; rows bounded by max_queue
        self.max_queue = max_queue
        self.pending = 0  # rows queued and not yet taken by the writer
        self._lock = threading.Lock()
        self.on_written = on_written
        self.on_dropped = on_dropped
        self._random = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._fd: int | None = None
        self._identity: tuple[int, int] = (0, 0)
        self.capture = capture
        self._head = record_head(model_name, model_version)
        self.pending_bytes = 0  # bytes of request bodies queued
        self._bodies = capture is not None and capture.config.ship == "sidecar"

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """Counters of the capture, when there is one, on the server's registry."""
        if self.capture is not None:
            self.capture.count_into(registry)

    def open(self) -> None:
        """Open the file now (creating its directory), so that a path that cannot be written
        stops the server at startup with `error: ...` instead of dropping every line."""
        if self.capture is not None:
            self.capture.start()  # segments open when lines arrive
            return
        if self._fd is None:
            self._fd = self._open()

    def start(self) -> None:
        self.open()
        self._thread.start()

    def _open(self) -> int:
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
        _drop_partial_line(fd, stat.st_size)
        return fd

    def _current(self) -> int:
        """The open file, reopened when the path no longer names it (removed or rotated)."""
        try:
            stat = os.stat(self.path)
            moved = (stat.st_dev, stat.st_ino) != self._identity
        except OSError:
            moved = True
        if self._fd is not None and not moved:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            logger.warning("%s was removed or rotated; reopening it", self.path)
        self._fd = self._open()
        return self._fd

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread; with a capture, close the last
        segment and ship what is closed (within its drain time)."""
        if self._thread.is_alive():
            try:
                self.queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass
            else:
                self._thread.join(timeout)
        elif self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.capture is not None and not self._thread.is_alive():
            self.capture.close()

    def _rotate_if_due(self) -> None:
        """Close the capture's segment when it is due; the next write opens a new one."""
        if self.capture is None or self._fd is None:
            return
        if self.capture.due(os.fstat(self._fd).st_size):
            os.close(self._fd)
            self._fd = None
            self.capture.close_segment()

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
        labels: np.ndarray,
        scores: np.ndarray,
        ids: Sequence[Any] | None = None,
        body: bytes | None = None,
        api: str = "v2",
    ) -> None:
        """Queue the sampled rows of one request as one entry (the writer thread builds the
        lines, off the event loop); rows past `max_queue` pending are dropped and counted.
        With a sidecar shipping, the entry keeps the raw `body` (its `api`: "v2" or
        "predict"): written as it is, the sidecar parses it again, so the serving process
        encodes nothing per row. Never blocks, never raises."""
        rows = self._sampled(len(labels))
        if not rows:
            return
        with self._lock:
            room = self.max_queue - self.pending
            taken = rows if len(rows) <= room else rows[: max(room, 0)]
            self.pending += len(taken)
            if body is not None and (
                not self._bodies or self.pending_bytes + len(body) > MAX_PENDING_BODY_BYTES
            ):
                body = None  # the columns, encoded by the writer, take less memory
            self.pending_bytes += 0 if body is None or not taken else len(body)
        if len(taken) < len(rows):
            self.on_dropped(len(rows) - len(taken))
        if taken:
            sampled = None if len(taken) == len(labels) else list(taken)
            if body is not None:  # the parsed request is freed now, by the request's thread
                ids, columns = None, {}
            entry = (time.time(), request_id, ids, columns, labels, scores, sampled, body, api)
            self.queue.put_nowait(entry)

    def _units(self, entry: Entry) -> list[tuple[bytes, int]]:
        """What one request adds to the file, as (line, rows) units: with a capture, one
        request record for the shipper to expand; without, the documented lines themselves."""
        ts, request_id, ids, columns, labels, scores, rows, body, api = entry
        if body is not None:
            with self._lock:
                self.pending_bytes -= len(body)
            line = encode_body_record(self._head, ts, request_id, api, labels, scores, rows, body)
            return [(line, _count(entry))]
        if self.capture is not None:
            line = encode_record(self._head, ts, request_id, ids, columns, labels, scores, rows)
            return [(line, _count(entry))]
        label_list, score_list = np.asarray(labels).tolist(), np.asarray(scores).tolist()
        model = (self.model_name, self.model_version)
        lines = expand(ts, request_id, model, ids, columns, label_list, score_list, rows)
        return [(line, 1) for line in lines]

    def _write(self, units: list[tuple[bytes, int]]) -> None:
        """Append whole lines; on a failed or short write cut the file back to its last
        newline, count the rows that reached it as written and the rest as dropped."""
        if self.capture is not None and self.capture.segment is None:
            self.path = self.capture.next_segment()
        fd = self._current()
        data = b"".join(line for line, _ in units)
        rows = sum(n for _, n in units)
        start = os.fstat(fd).st_size
        done = 0
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(fd, view[done:])
        except OSError as exc:
            whole = data.rfind(b"\n", 0, done) + 1
            if whole < done:
                try:
                    os.ftruncate(fd, start + whole)
                except OSError:  # the next open cuts the partial line instead
                    os.close(fd)
                    self._fd = None
            written = end = 0
            for line, n in units:
                end += len(line)
                if end > whole:
                    break
                written += n
            self.on_written(written)
            self.on_dropped(rows - written)
            logger.warning(
                "prediction log %s: dropped %d line(s): %s", self.path, rows - written, exc
            )
            return
        self.on_written(rows)

    def _dropped(self, lines: int, exc: Exception) -> None:
        self.on_dropped(lines)
        logger.warning("prediction log %s: dropped %d line(s): %s", self.path, lines, exc)

    def _pieces(self, units: list[tuple[bytes, int]]) -> Iterator[list[tuple[bytes, int]]]:
        """The batch in pieces that fill the capture's segment up to its size bound (the
        whole batch without a capture), so a busy writer still closes files near the bound."""
        if self.capture is None:
            yield units
            return
        bound = self.capture.config.max_bytes
        room = bound - (0 if self._fd is None else os.fstat(self._fd).st_size)
        piece: list[tuple[bytes, int]] = []
        for unit in units:
            piece.append(unit)
            room -= len(unit[0])
            if room <= 0:
                yield piece
                piece, room = [], bound
        if piece:
            yield piece

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                wait = None if self.capture is None else self.capture.seconds_to_due()
                batch = [self.queue.get(timeout=wait)]
            except queue.Empty:
                self._rotate_if_due()
                continue
            rows = 0 if batch[0] is _STOP else _count(batch[0])
            if batch[0] is not _STOP and rows < 1000:
                # Let a few requests gather: waking (and taking the GIL from the event loop)
                # once per request cost more than writing their lines.
                time.sleep(LINGER_SECONDS)
            while rows < 1000:  # a batch of about 1,000 lines: one write
                try:
                    entry = self.queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(entry)
                rows += 0 if entry is _STOP else _count(entry)
            if _STOP in batch:
                stopping = True
                batch = [entry for entry in batch if entry is not _STOP]
            self._rotate_if_due()
            if not batch:
                continue
            units: list[tuple[bytes, int]] = []
            for entry in batch:
                with self._lock:
                    self.pending -= _count(entry)
                try:
                    units += self._units(entry)
                except (ValueError, TypeError) as exc:
                    self._dropped(_count(entry), exc)
            for piece in self._pieces(units):
                try:
                    self._write(piece)
                except (OSError, PredictionLogError) as exc:
                    self._dropped(sum(n for _, n in piece), exc)
                self._rotate_if_due()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _count(entry: Entry) -> int:
    """Rows an entry logs: the sampled ones, or all of them."""
    rows = entry[6]
    return len(entry[4]) if rows is None else len(rows)


def encode_record(
    head: bytes,
    ts: float,
    request_id: str,
    ids: Sequence[Any] | None,
    columns: Mapping[str, Sequence[Any]],
    labels: Any,
    scores: Any,
    rows: Sequence[int] | None,
) -> bytes:
    """One request as one JSON line, `[1, model, model_version, ts, request_id, ids, columns,
    labels, scores, rows]`: a single orjson call whatever the row count (~2 µs for one row,
    ~0.2-0.5 µs a row for 100), against ~5 µs a row to build the documented lines."""
    body = orjson.dumps(
        (ts, request_id, ids, columns, labels, np.ascontiguousarray(scores), rows),
        option=_NUMPY,
    )
    return b"[%d,%s,%s\n" % (COLUMNS_RECORD, head, body[1:])


def encode_body_record(
    head: bytes,
    ts: float,
    request_id: str,
    api: str,
    labels: Any,
    scores: Any,
    rows: Sequence[int] | None,
    body: bytes,
) -> bytes:
    """One request as `[2, model, model_version, ts, request_id, api, labels, scores, rows,
    <the request body as received>]`: no per-row work at all. The body is JSON the server
    parsed; its line breaks can only be whitespace between tokens (inside strings they are
    escaped), so they become spaces and the record stays one line."""
    outputs = orjson.dumps(
        (ts, request_id, api, labels, np.ascontiguousarray(scores), rows), option=_NUMPY
    )
    flat = body.replace(b"\n", b" ").replace(b"\r", b" ")
    return b"[%d,%s,%s,%s]\n" % (BODY_RECORD, head, outputs[1:-1], flat)


def record_head(model_name: str, model_version: str) -> bytes:
    """The model name and version that every request record of this server carries, as JSON
    array items, encoded once."""
    return orjson.dumps([model_name, model_version])[1:-1]


# Parses a request body again in the shipper: (api, parsed JSON) -> (columns, ids).
BodyParser = Callable[[str, Any], tuple[Mapping[str, Sequence[Any]], Sequence[Any] | None]]


def _load(line: bytes) -> Any:
    """orjson, or the standard parser for what a server accepted and orjson refuses (NaN)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def expand_record(line: bytes, parse: BodyParser | None = None) -> list[bytes]:
    """The documented lines of one request record (ValueError when it is not one, or when it
    carries a body and there is no `parse`)."""
    record = _load(line)
    if not isinstance(record, list) or len(record) != 10:
        raise ValueError("not a request record")
    kind, model, version, ts, request_id = record[:5]
    if kind == COLUMNS_RECORD:
        ids, columns, labels, scores, rows = record[5:]
    elif kind == BODY_RECORD and parse is not None:
        api, labels, scores, rows, body = record[5:]
        columns, ids = parse(api, body)
    else:
        raise ValueError(f"a request record of kind {kind!r} needs the data contract to read")
    return expand(ts, request_id, (model, version), ids, columns, labels, scores, rows)


def record_rows(line: bytes) -> int:
    """How many rows (documented lines) a request record holds; 0 when it is not one."""
    try:
        record = _load(line)
        labels = record[7] if record[0] == COLUMNS_RECORD else record[6]
        rows = record[9] if record[0] == COLUMNS_RECORD else record[8]
        return len(labels) if rows is None else len(rows)
    except (ValueError, TypeError, IndexError, KeyError):
        return 0


def expand(
    ts: float,
    request_id: str,
    model: tuple[str, str],
    ids: Sequence[Any] | None,
    columns: Mapping[str, Sequence[Any]],
    labels: Sequence[Any],
    scores: Sequence[Any],
    rows: Sequence[int] | None,
) -> list[bytes]:
    """One JSON line per sampled row of a request (docs/interfaces.md). The parts shared by
    the request's rows are encoded once and each row's features in one orjson call.
    `model` is the model's name and version."""
    names = list(columns)
    # Missing values are null whether they came as null, NaN (orjson writes null) or "".
    values = [_blank_to_none(columns[name]) for name in names]
    head = b'{"ts":' + orjson.dumps(timestamp(ts)) + b',"request_id":' + orjson.dumps(request_id)
    name, version = (orjson.dumps(text) for text in model)
    body = b',"model":' + name + b',"model_version":' + version + b',"features":'
    lines = []
    for row in range(len(labels)) if rows is None else rows:
        key = None if ids is None else ids[row]
        ident = b"" if key is None else b',"id":' + orjson.dumps(key, option=_NUMPY)
        features = dict(zip(names, [v[row] for v in values], strict=True))
        score = _number(scores[row])
        tail = f',"prediction":{{"label":{int(labels[row])},"score":{score}}}}}\n'
        lines.append(head + ident + body + orjson.dumps(features, option=_NUMPY) + tail.encode())
    return lines


def _drop_partial_line(fd: int, size: int, window: int = 1 << 20) -> None:
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
