"""The documented prediction-log lines (docs/interfaces.md) and the spool's request records.
Building lines costs ~5 µs a row, so the server writes one record per request instead,
`[2, model, version, ts, request_id, api, predicted, rows, N]\\n` then the body as received (N
bytes) and a newline, and the sidecar expands it. `rows`: the sampled rows (null: all).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np
import orjson

from serving.validation import ParsedRequest

RECORD = 2  # first element of a request record: its kind
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# A request's predictions as the log keeps them: one column (array or list) per key.
Predicted = Mapping[str, Any]
BodyParser = Callable[[str, bytes], ParsedRequest]  # reads a body (api, bytes) as the server did


def _blank_to_none(values: Sequence[Any]) -> Sequence[Any]:
    """A request's column with "" as None (one C-speed scan when there is none)."""
    if isinstance(values, list) and "" in values:
        return [None if value == "" else value for value in values]
    return values


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
    # Numpy arrays made contiguous, which orjson writes at C speed.
    arrays = {
        key: np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value
        for key, value in predicted.items()
    }
    outputs = orjson.dumps((ts, request_id, api, arrays, rows), option=_NUMPY)
    return b"[%d,%s,%s,%d]\n%s\n" % (RECORD, head, outputs[1:-1], len(body), body)


def read_records(handle: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """A segment's whole records as (header, body), skipping lines that are not one and
    stopping at one a crash cut short; after each, `handle.tell()` is where the next starts."""
    while True:
        line = handle.readline()
        if not line.endswith(b"\n"):
            return
        if not line.startswith(b"[%d," % RECORD):
            continue
        try:
            size = int(line[line.rindex(b",") + 1 : -2])
        except ValueError:
            return  # not a header this codec wrote: nothing after it can be framed
        body = handle.read(size + 1)
        if len(body) <= size:
            return
        yield line, body[:size]


def record_rows(line: bytes) -> int:
    """The rows (documented lines) of a request record's header; 0 when it is not one."""
    try:
        predicted, rows = orjson.loads(line)[6:8]  # headers are orjson's: never a NaN literal
        return len(next(iter(predicted.values()))) if rows is None else len(rows)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, StopIteration):
        return 0


def expand_record(line: bytes, body: bytes, parse: BodyParser) -> list[bytes]:
    """A request record's lines, one per sampled row: the parts they share encoded once, each
    row's features and prediction in one orjson call each."""
    record = orjson.loads(line)
    if not isinstance(record, list) or len(record) != 9:
        raise ValueError("not a request record")
    _, model, version, ts, request_id, api, predicted, rows, _ = record
    parsed = parse(api, body)
    columns, ids = parsed.columns, parsed.ids
    names = list(columns)
    # Missing values are null whether they came as null, NaN (orjson writes null) or "".
    values = [_blank_to_none(columns[name]) for name in names]
    moment = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    head = b'{"ts":' + orjson.dumps(moment.replace("+00:00", "Z"))
    head += b',"request_id":' + orjson.dumps(request_id)
    shared = b',"model":' + orjson.dumps(model) + b',"model_version":' + orjson.dumps(version)
    shared += b',"features":'
    lines = []
    keys = list(predicted)
    outputs = [predicted[key] for key in keys]
    count = len(outputs[0]) if outputs else 0
    for row in range(count) if rows is None else rows:
        key = None if ids is None else ids[row]
        ident = b"" if key is None else b',"id":' + orjson.dumps(str(key))  # documented: text
        features = dict(zip(names, [v[row] for v in values], strict=True))
        prediction = dict(zip(keys, [output[row] for output in outputs], strict=True))
        tail = b',"prediction":' + orjson.dumps(prediction) + b"}\n"
        lines.append(head + ident + shared + orjson.dumps(features, option=_NUMPY) + tail)
    return lines
