"""The documented prediction-log lines (docs/interfaces.md, "Serving prediction log") and the
request records a capture segment holds.

Building the lines costs ~5 µs a row, so the server writes one *request record* per request,
with no per-row work, and the shipper expands it: `[2, model, version, ts, request_id, api,
predicted, rows, N]\\n`, then the N bytes of the body as received and a newline. `predicted`
holds one column per key of the logged prediction (`serving.outputs`), `rows` the sampled rows
(null: all). The shipper reads the body with the server's own parser (`BodyParser`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np
import orjson

RECORD = 2  # first element of a request record: its kind
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# A request's predictions as the log keeps them: one column (array or list) per key.
Predicted = Mapping[str, Any]
# Reads a request body as the server did: (api, body bytes) -> (columns, ids).
BodyParser = Callable[[str, bytes], tuple[Mapping[str, Sequence[Any]], Sequence[Any] | None]]


def timestamp(seconds: float) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-26T05:00:00.123Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _blank_to_none(values: Sequence[Any]) -> Sequence[Any]:
    """A request's column with "" as None (one C-speed scan when there is none)."""
    if isinstance(values, list) and "" in values:
        return [None if value == "" else value for value in values]
    return values


def _arrays(predicted: Predicted) -> dict[str, Any]:
    """Numpy arrays made contiguous, which orjson writes at C speed."""
    return {
        key: np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value
        for key, value in predicted.items()
    }


def record_head(model_name: str, model_version: str) -> bytes:
    """The model name and version as JSON array items, encoded once per server."""
    return orjson.dumps([model_name, model_version])[1:-1]


def encode_record(
    head: bytes,
    ts: float,
    request_id: str,
    api: str,
    predicted: Predicted,
    rows: Sequence[int] | None,
    body: bytes,
) -> bytes:
    """One request as a record: its predictions, then the body as received."""
    outputs = orjson.dumps((ts, request_id, api, _arrays(predicted), rows), option=_NUMPY)
    return b"[%d,%s,%s,%d]\n%s\n" % (RECORD, head, outputs[1:-1], len(body), body)


def read_records(handle: IO[bytes]) -> Iterator[tuple[bytes, bytes | None]]:
    """A segment's whole records as (header, body or None when not a record), stopping at one
    cut short by a crash, where `handle.tell()` then is."""
    while True:
        line = handle.readline()
        if not line.endswith(b"\n"):
            return
        if not line.startswith(b"[%d," % RECORD):
            yield line, None
            continue
        try:
            size = int(line[line.rindex(b",") + 1 : -2])
        except ValueError:
            return  # not a header this codec wrote: nothing after it can be framed
        body = handle.read(size + 1)
        if len(body) <= size:
            return
        yield line, body[:size]


def whole_records_size(handle: IO[bytes]) -> int:
    """Bytes taken by the whole records at the start of a segment."""
    end = 0
    for _ in read_records(handle):
        end = handle.tell()
    return end


def record_rows(line: bytes) -> int:
    """The rows (documented lines) of a request record's header; 0 when it is not one."""
    try:
        record = orjson.loads(line)  # headers are orjson's: never a NaN literal
        if record[0] != RECORD:
            return 0
        predicted, rows = record[6:8]
        return len(next(iter(predicted.values()))) if rows is None else len(rows)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, StopIteration):
        return 0


def expand_record(line: bytes, body: bytes | None, parse: BodyParser) -> list[bytes]:
    """The documented lines of one request record; ValueError when it is not one, or what
    `parse` raises for a body it refuses."""
    record = orjson.loads(line)
    if not isinstance(record, list) or len(record) != 9:
        raise ValueError("not a request record")
    if record[0] != RECORD or body is None:
        raise ValueError(f"not a request record (kind {record[0]!r})")
    _, model, version, ts, request_id, api, predicted, rows, _ = record
    columns, ids = parse(api, body)
    return expand(ts, request_id, (model, version), ids, columns, predicted, rows)


def expand(
    ts: float,
    request_id: str,
    model: tuple[str, str],
    ids: Sequence[Any] | None,
    columns: Mapping[str, Sequence[Any]],
    predicted: Mapping[str, Sequence[Any]],
    rows: Sequence[int] | None,
) -> list[bytes]:
    """One documented line per sampled row. The parts the rows share are encoded once, each
    row's features and prediction in one orjson call each. `model`: name and version."""
    names = list(columns)
    # Missing values are null whether they came as null, NaN (orjson writes null) or "".
    values = [_blank_to_none(columns[name]) for name in names]
    head = b'{"ts":' + orjson.dumps(timestamp(ts)) + b',"request_id":' + orjson.dumps(request_id)
    name, version = (orjson.dumps(text) for text in model)
    body = b',"model":' + name + b',"model_version":' + version + b',"features":'
    lines = []
    keys = list(predicted)
    outputs = [predicted[key] for key in keys]
    count = len(outputs[0]) if outputs else 0
    for row in range(count) if rows is None else rows:
        key = None if ids is None else ids[row]
        ident = b"" if key is None else b',"id":' + orjson.dumps(key, option=_NUMPY)
        features = dict(zip(names, [v[row] for v in values], strict=True))
        prediction = dict(zip(keys, [output[row] for output in outputs], strict=True))
        tail = b',"prediction":' + orjson.dumps(prediction) + b"}\n"
        lines.append(head + ident + body + orjson.dumps(features, option=_NUMPY) + tail)
    return lines
