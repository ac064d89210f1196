"""The one check of a request's values and the JSON codec (docs/serving.md, "The app").

V2 tensors and `/predict` records both end in `FeatureTable.build`, so a rule holds alike in
both APIs. Feeds are built from plain lists per column, not pandas: that is most of the cost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from gitops_ml.contract import MISSING_CATEGORY, V2_DATATYPES, Contract, Encoding
from gitops_ml.tasks import task_spec
from gitops_ml.value_coercion import ValueRejected, coerce_value

TAKES = {
    "float": "numbers",
    "int": "whole numbers",
    "bool": "true/false, 0/1 or the contract's true/false tokens",
}
# The JSON types a numeric column takes as they are (exact: bool is not int); any other value
# goes to the contract's coercion.
PLAIN_TYPES: dict[str, tuple[type, ...]] = {"float": (float, int), "int": (int,), "bool": (bool,)}
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Control characters other than tab and line breaks never occur in text people write (free
# text with line breaks does, and the training data holds it as written); "\x00" would reach
# the model as a different string than the client sent (C strings end at it). A lone
# surrogate (JSON "\ud800") has no UTF-8 form at all.
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class RequestError(Exception):
    """A client mistake: answered with `{"error": message}` and `status`, never a 5xx."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class FeatureSpec:
    """What serving needs to know about one feature column, precomputed from the contract."""

    name: str
    type: str
    nullable: bool
    max_length: int
    encoding: Encoding
    input_name: str  # contract.onnx_inputs; the id's is its name (never fed to the model)
    minimum: float | None = None
    maximum: float | None = None
    allowed: frozenset[str] | None = None

    @property
    def datatypes(self) -> tuple[str, ...]:
        return ID_DATATYPES if self.type == ID_TYPE else V2_DATATYPES[self.type]

    @property
    def bounds(self) -> tuple[float, float]:
        """The contract's range, within float32."""
        low = -FLOAT32_MAX if self.minimum is None else max(self.minimum, -FLOAT32_MAX)
        high = FLOAT32_MAX if self.maximum is None else min(self.maximum, FLOAT32_MAX)
        return low, high


def feature_specs(contract: Contract) -> list[FeatureSpec]:
    inputs = contract.onnx_inputs
    return [
        FeatureSpec(
            name=column.name,
            type=column.type,
            nullable=column.nullable,
            max_length=column.max_length,
            encoding=contract.encoding,
            input_name=inputs[column.name],
            minimum=column.checks.min,
            maximum=column.checks.max,
            allowed=None if column.checks.allowed is None else frozenset(column.checks.allowed),
        )
        for column in contract.features
    ]


# The id column is optional in a request and echoed with each prediction and logged, so a
# prediction can be joined with its later outcome. Ids are text or integers, whatever its type.
ID_TYPE = "id"
ID_DATATYPES = ("BYTES", "INT64", "INT32")


def request_table(contract: Contract) -> FeatureTable:
    """The server's table, and the capture sidecar's reading what the server accepted."""
    ident = None
    if contract.id_column is not None:
        column = contract.column(contract.id_column)
        ident = FeatureSpec(
            name=column.name,
            type=ID_TYPE,
            nullable=True,
            max_length=column.max_length,
            encoding=contract.encoding,
            input_name=column.name,
        )
    return FeatureTable(feature_specs(contract), ident, task_spec(contract.task).v2_outputs)


def id_values(spec: FeatureSpec, values: list[Any], where: str) -> list[Any]:
    """Ids as sent: text (checked like category text) or integers; null for none."""
    for row, value in enumerate(values):
        if value is not None and type(value) not in (str, int):
            raise RequestError(
                f"{where}: row {row} is {describe(value)}; the id column {spec.name!r} takes "
                "strings or integers"
            )
    check_text(spec, [value if type(value) is str else "" for value in values], where)
    return values


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def first_few(items: Sequence[Any]) -> str:
    """`a, b, c, d, e and 7 more`: an error names a few, never thousands a client sent."""
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return ", ".join(str(item) for item in items[:5]) + more


def _rows(indices: Sequence[int]) -> str:
    """`row 3`, or `rows 1, 4, 9 (3 in all)`: which rows break a rule and how many."""
    if len(indices) == 1:
        return f"row {indices[0]}"
    return f"rows {first_few(indices)} ({len(indices)} in all)"


def check_text(spec: FeatureSpec, values: list[str], where: str) -> None:
    """Refuse text too long, with control characters or not UTF-8: the whole column in one
    search, then row by row only to name the first bad row."""
    if max(map(len, values), default=0) <= spec.max_length and not _REFUSED.search("".join(values)):
        return
    for row, value in enumerate(values):
        if len(value) > spec.max_length:
            raise RequestError(
                f"{where}: row {row} has {len(value):,} characters; feature {spec.name!r} takes "
                f"at most {spec.max_length} (the contract's checks.max_length)"
            )
        refused = _REFUSED.search(value)
        if refused is not None and refused.group() < "\ud800":
            raise RequestError(
                f"{where}: row {row} contains the control character "
                f"U+{ord(refused.group()):04X}; feature {spec.name!r} takes printable text"
            )
        if refused is not None:
            raise RequestError(f"{where}: row {row} is not valid UTF-8 text")


def describe(value: Any) -> str:
    """A short description of a JSON value for error messages (never the whole value)."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return _cut(json.dumps(value))


def named(value: Any) -> str:
    """A name the client sent (a key, a tensor, an output), quoted and cut short as `describe`
    cuts a value."""
    return repr(_cut(value)) if isinstance(value, str) else describe(value)


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class ParsedRequest:
    """Validated model feeds plus what the response and the prediction log need."""

    feeds: dict[str, np.ndarray]
    rows: int
    unknown: dict[str, int]
    columns: dict[str, list[Any]]
    request_id: str | None = None
    outputs: tuple[str, ...] | None = None  # None: every output (the ids too, when sent)
    ids: list[Any] | None = None


class FeatureTable:
    """What checking a request needs, worked out once per server rather than per request."""

    def __init__(
        self,
        specs: Sequence[FeatureSpec],
        ident: FeatureSpec | None = None,
        outputs: Sequence[str] = (),
    ) -> None:
        self.specs = list(specs)
        self.ident = ident
        named = self.specs if ident is None else [*self.specs, ident]
        # The outputs a request may ask for: the task's, and the id when the contract has one.
        self.outputs = tuple(outputs) if ident is None else (*outputs, ident.name)
        self.datatypes = {spec.name: (spec, spec.datatypes) for spec in named}
        self.numeric = [spec for spec in self.specs if spec.type != "category"]
        self.categories = [spec for spec in self.specs if spec.type == "category"]
        self.plain = [frozenset((*PLAIN_TYPES[spec.type], type(None))) for spec in self.numeric]
        self.nullable = np.array([[spec.nullable] for spec in self.numeric], bool).reshape(-1, 1)
        bounds = np.array([spec.bounds for spec in self.numeric], np.float64).reshape(-1, 2)
        self.lows, self.highs = bounds[:, :1], bounds[:, 1:]

    def build(self, columns: dict[str, list[Any]], rows: int, kind: str) -> ParsedRequest:
        """Check every column and build the [N, 1] feeds; errors name `{kind} 'feature'`.

        The numeric columns are one float64 block checked at once, the categories one object
        block (a fixed-width unicode array makes every cell as wide as the longest one: one
        long value × many rows = TiB); each feed is a row view of its block.
        """
        feeds: dict[str, np.ndarray] = {}
        unknown: dict[str, int] = {}
        if self.numeric:
            numeric = [
                values if plain.issuperset(map(type, values)) else _coerce(spec, values, kind)
                for spec, plain in zip(self.numeric, self.plain, strict=True)
                for values in (columns[spec.name],)
            ]
            try:
                block = np.array(numeric, dtype=np.float64)  # None becomes NaN
            except OverflowError:  # an integer beyond float64: name its feature
                for spec, values in zip(self.numeric, numeric, strict=True):
                    try:
                        np.array(values, dtype=np.float64)
                    except OverflowError:
                        message = f"{kind} {spec.name!r}: a number is too large for this feature"
                        raise RequestError(message) from None
                raise
            inside = (block >= self.lows) & (block <= self.highs)  # NaN is not inside
            if not inside.all() and not (inside | np.isnan(block) & self.nullable).all():
                self._refuse(block, numeric, kind)
            floats = block.astype(np.float32).reshape(len(numeric), rows, 1)
            feeds.update(zip((spec.input_name for spec in self.numeric), floats, strict=True))
        if self.categories:
            strings = []
            for spec in self.categories:
                values = columns[spec.name]
                try:
                    known = spec.allowed is not None and spec.allowed.issuperset(values)
                except TypeError:  # an array or an object among the values
                    known = False
                strings.append(values if known else _category(spec, values, kind, unknown))
            text = np.array(strings, dtype=object).reshape(len(strings), rows, 1)
            feeds.update(zip((spec.input_name for spec in self.categories), text, strict=True))
        return ParsedRequest(feeds=feeds, rows=rows, unknown=unknown, columns=columns)

    def _refuse(self, block: np.ndarray, numeric: list[list[Any]], kind: str) -> None:
        """The error for the first numeric feature with a value the contract refuses."""
        for spec, row, values in zip(self.numeric, block, numeric, strict=True):
            where = f"{kind} {spec.name!r}"
            absent = np.flatnonzero(np.isnan(row)).tolist()
            if absent and not spec.nullable:
                raise RequestError(
                    f"{where}: {_rows(absent)} missing (null or NaN); feature {spec.name!r} is "
                    "not nullable in the data contract"
                )
            low, high = spec.bounds
            below = np.flatnonzero(row < low).tolist()
            indices = below or np.flatnonzero(row > high).tolist()
            if not indices:
                continue
            first = describe(values[indices[0]])
            bound = spec.minimum if below else spec.maximum
            if bound is None:
                raise RequestError(
                    f"{where}: {_rows(indices)} beyond the float32 range (first: {first}); "
                    f"feature {spec.name!r} takes finite numbers"
                )
            raise RequestError(
                f"{where}: {_rows(indices)} {'below' if below else 'above'} the contract "
                f"{'minimum' if below else 'maximum'} {_number(bound)} of feature "
                f"{spec.name!r} (first: {first})"
            )


def _coerce(spec: FeatureSpec, values: list[Any], kind: str) -> list[Any]:
    """A numeric column as numbers or None, read by the contract's coercion where not plain."""
    plain = PLAIN_TYPES[spec.type]
    out: list[Any] = []
    for row, value in enumerate(values):
        if type(value) in plain or value is None:
            out.append(value)
            continue
        try:
            out.append(coerce_value(value, spec.type, spec.encoding))
        except ValueRejected as exc:
            raise RequestError(
                f"{kind} {spec.name!r}: row {row} is {describe(value)}, {exc}; feature "
                f"{spec.name!r} has contract type {spec.type} and takes {TAKES[spec.type]}"
            ) from None
    return out


def _category(
    spec: FeatureSpec, values: list[Any], kind: str, unknown: dict[str, int]
) -> list[str]:
    """A category column as model strings, read as the contract reads text; unknown values
    are scored and counted."""
    where = f"{kind} {spec.name!r}"
    allowed = spec.allowed or frozenset()
    out: list[str] = []
    missing: list[int] = []
    new = 0
    for row, value in enumerate(values):
        if type(value) is str:
            if value in allowed:  # the usual value: one set lookup
                out.append(value)
                continue
            text = spec.encoding.text(value)
        elif value is None:
            text = MISSING_CATEGORY
        else:
            raise RequestError(
                f"{where}: row {row} is {describe(value)}; feature {spec.name!r} is a "
                "category and takes strings"
            )
        if text == MISSING_CATEGORY or spec.encoding.is_missing(text):
            missing.append(row)
            text = MISSING_CATEGORY
        elif text not in allowed:
            new += 1
        out.append(text)
    if missing and not spec.nullable:
        raise RequestError(
            f"{where}: {_rows(missing)} missing (null or empty); feature {spec.name!r} is not "
            "nullable in the data contract"
        )
    check_text(spec, out, where)
    if new and spec.allowed is not None:
        unknown[spec.name] = new
    return out


BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def parse_json(body: bytes) -> Any:
    """The server's and the capture sidecar's one reading of a body: UTF-8 JSON (RFC 8259
    §8.1) without a byte-order mark, no key twice in an object, NaN/Infinity allowed.

    orjson is several times faster but keeps the last of two equal keys, so its result is kept
    only for a body without escapes (each key spelt alike in both) and with as many colons as
    the result re-encoded (a duplicate key drops one). Other bodies go to the standard library,
    which names the problem.
    """
    try:
        value = orjson.loads(body)
        if b"\\" not in body and body.count(b":") == orjson.dumps(value).count(b":"):
            return value
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # encode: nested over 254 deep
        pass
    for bom, encoding in BOMS.items():
        if body.startswith(bom):
            raise RequestError(
                f"the request body starts with a {encoding} byte-order mark; send UTF-8 JSON "
                "without one"
            )
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the request body is not UTF-8 (byte {exc.start}); send UTF-8 JSON"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise RequestError(f"the request body has the key {key!r} twice in one object")
        found[key] = value
    return found


def dump_json(payload: Any) -> bytes:
    """orjson, or the standard library for what it refuses (a lone surrogate echoed back)."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(payload).encode()


def check_rows(rows: int, max_rows: int) -> None:
    if rows < 1:
        raise RequestError("the request has no rows")
    if rows > max_rows:
        raise RequestError(f"the request has {rows} rows; the limit is {max_rows} per request", 413)
