"""Feature specs from the data contract and the per-value checks both APIs share.

The Open Inference Protocol (`serving.v2`) sends one tensor per feature and `/predict`
(`serving.records`) sends records; both end here, in the same per-column check (type, missing
values, range, text length), so a rule is enforced the same way whichever API a client uses,
and the error names the input, the row and the rule. Feeds are built from plain Python lists
per column (no pandas): that is most of the request cost.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from gitops_ml.coercion import ValueRejected, coerce_value
from gitops_ml.contract import MISSING_CATEGORY, Column, Contract, Encoding
from gitops_ml.v2_request import V2_DATATYPES

JSON_TYPES = {"float": "number", "int": "integer", "bool": "boolean", "category": "string"}
TAKES = {
    "float": "numbers",
    "int": "whole numbers",
    "bool": "true/false, 0/1 or the contract's true/false tokens",
}


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
    minimum: float | None
    maximum: float | None
    allowed: frozenset[str] | None
    max_length: int
    encoding: Encoding
    input_name: str  # the model's input for this feature (contract.onnx_inputs)

    @classmethod
    def from_column(cls, column: Column, encoding: Encoding, input_name: str) -> FeatureSpec:
        allowed = None if column.checks.allowed is None else frozenset(column.checks.allowed)
        return cls(
            name=column.name,
            type=column.type,
            nullable=column.nullable,
            minimum=column.checks.min,
            maximum=column.checks.max,
            allowed=allowed,
            max_length=column.max_length,
            encoding=encoding,
            input_name=input_name,
        )

    @property
    def datatypes(self) -> tuple[str, ...]:
        return ID_DATATYPES if self.type == ID_TYPE else V2_DATATYPES[self.type]

    def rule_text(self) -> str:
        """The contract rules of this feature in words, for error messages and API docs."""
        parts = [f"type {self.type}", "nullable" if self.nullable else "not nullable"]
        if self.minimum is not None:
            parts.append(f"min {_number(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"max {_number(self.maximum)}")
        if self.allowed is not None:
            parts.append("known values " + ", ".join(sorted(self.allowed)))
        return "; ".join(parts)


def feature_specs(contract: Contract) -> list[FeatureSpec]:
    return [
        FeatureSpec.from_column(column, contract.encoding, contract.onnx_inputs[column.name])
        for column in contract.features
    ]


# The contract's id column is accepted beside the features (optional, never fed to the model),
# echoed with each prediction and written to the prediction log, so a prediction can be joined
# with its later outcome. Ids are text or integers, whatever the column's contract type.
ID_TYPE = "id"
ID_DATATYPES = ("BYTES", "INT64", "INT32")


def id_spec(contract: Contract) -> FeatureSpec | None:
    if contract.id_column is None:
        return None
    column = contract.column(contract.id_column)
    return FeatureSpec(
        name=column.name,
        type=ID_TYPE,
        nullable=True,
        minimum=None,
        maximum=None,
        allowed=None,
        max_length=column.max_length,
        encoding=contract.encoding,
        input_name=column.name,  # echoed and logged, never fed to the model
    )


def id_values(spec: FeatureSpec, values: list[Any], where: str) -> list[Any]:
    """Ids as sent: text (checked like category text) or integers; null for none."""
    if _clean_text(values, spec.max_length):
        return values
    for row, value in enumerate(values):
        kind = type(value)
        if kind is str:
            check_text(spec, value, where, row)
        elif value is not None and kind is not int:
            raise RequestError(
                f"{where}: row {row} is {describe(value)}; the id column {spec.name!r} takes "
                "strings or integers"
            )
    return values


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _rows(indices: Sequence[int]) -> str:
    """`row 3`, or `rows 1, 4, 9 (3 in all)`: which rows break a rule and how many."""
    if len(indices) == 1:
        return f"row {indices[0]}"
    shown = ", ".join(str(i) for i in indices[:5])
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f"rows {shown}{more} ({len(indices)} in all)"


# Control characters never occur in category values people write; "\x00" in particular would
# reach the model as a different string than the client sent (C strings end at it).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _category_values(spec: FeatureSpec, values: list[Any], where: str) -> tuple[list[str], int]:
    """The values as model strings (missing = \"\") and how many are unknown categories,
    read as the contract reads text (`encoding.strip`, missing tokens).

    A known value needs one set lookup; anything else is checked for length (the contract's
    `max_length`, so a request costs memory in proportion to its body), control characters
    and encodability before it is scored and counted as unknown.
    """
    missing: list[int] = []
    unknown = 0
    out: list[str] = []
    allowed = spec.allowed
    text = spec.encoding.text
    for row, value in enumerate(values):
        if type(value) is str:
            value = text(value)  # " Male" is "Male" when the contract strips
            if allowed is not None and value in allowed:
                out.append(value)
                continue
            if value == MISSING_CATEGORY or spec.encoding.is_missing(value):
                missing.append(row)
                value = MISSING_CATEGORY
            else:
                check_text(spec, value, where, row)
                unknown += allowed is not None
            out.append(value)
        elif value is None:
            missing.append(row)
            out.append(MISSING_CATEGORY)
        else:
            raise RequestError(
                f"{where}: row {row} is {describe(value)}; feature {spec.name!r} is a "
                "category and takes strings"
            )
    if missing and not spec.nullable:
        raise RequestError(
            f"{where}: {_rows(missing)} missing (null or empty); feature {spec.name!r} is not "
            "nullable in the data contract"
        )
    return out, unknown


def check_text(spec: FeatureSpec, value: str, where: str, row: int) -> None:
    """Refuse text the model must never see: too long, control characters, not UTF-8."""
    if len(value) > spec.max_length:
        raise RequestError(
            f"{where}: row {row} has {len(value):,} characters; feature {spec.name!r} takes at "
            f"most {spec.max_length} (the contract's checks.max_length)"
        )
    control = _CONTROL.search(value)
    if control is not None:
        raise RequestError(
            f"{where}: row {row} contains the control character "
            f"U+{ord(control.group()):04X}; feature {spec.name!r} takes printable text"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(f"{where}: row {row} is not valid UTF-8 text") from None


def _clean_text(values: list[Any], max_length: int) -> bool:
    """`check_text` for a whole column of strings at once (one join, one search, one encode):
    True when every value is text it would accept; False leaves the column to it."""
    try:
        joined = "".join(values)
    except TypeError:  # not all text
        return False
    if not values or max(map(len, values)) > max_length or _CONTROL.search(joined):
        return False
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _to_float(spec: FeatureSpec, value: Any, where: str, row: int) -> float | None:
    """The value as a float (None when missing): exact JSON types on the fast path, anything
    else through the contract's coercion ("Yes", 0/1, "3.5", missing tokens)."""
    kind = type(value)
    if spec.type == "float" and (kind is float or kind is int):
        return float(value)
    if spec.type == "int" and (kind is int or (kind is float and value.is_integer())):
        return float(value)
    if spec.type == "bool" and kind is bool:
        return float(value)
    try:
        number: float | None = coerce_value(value, spec.type, spec.encoding)
    except ValueRejected as exc:
        raise RequestError(
            f"{where}: row {row} is {describe(value)}, {exc}; feature {spec.name!r} has "
            f"contract type {spec.type} and takes {TAKES[spec.type]}"
        ) from None
    return number


# The JSON types each numeric contract type takes as they are (exact types: bool is not int).
# Anything else (an integral float for an int, text, 0/1 for a bool) goes through `_to_float`.
PLAIN_TYPES: dict[str, tuple[type, ...]] = {"float": (float, int), "int": (int,), "bool": (bool,)}
# From this many rows on, numeric columns are checked with numpy rather than value by value.
MANY_ROWS = 16


def _numeric_values(spec: FeatureSpec, values: list[Any], where: str) -> list[float]:
    """Plain Python per value: for the 1-20 rows of a typical request, numpy calls per check
    would cost more than the checks. A plain JSON number is converted inline: the call per
    value was the costliest line in the profile of 100-row requests (benchmarks/serving.py
    --profile)."""
    low, high = _bounds(spec)
    plain = PLAIN_TYPES[spec.type]
    floats: list[float] = []
    absent: list[int] = []
    below: list[int] = []
    above: list[int] = []
    for row, value in enumerate(values):
        if type(value) in plain:
            number: float | None = float(value)
        elif value is None:
            number = None
        else:
            number = _to_float(spec, value, where, row)
        if number is None or number != number:
            absent.append(row)
            floats.append(math.nan)
            continue
        if number < low:
            below.append(row)
        elif number > high:
            above.append(row)
        floats.append(number)
    if absent and not spec.nullable:
        raise RequestError(
            f"{where}: {_rows(absent)} missing (null or NaN); feature {spec.name!r} is not "
            "nullable in the data contract"
        )
    for bad, bound, word in ((below, spec.minimum, "minimum"), (above, spec.maximum, "maximum")):
        if not bad:
            continue
        first = describe(values[bad[0]])
        if bound is None:
            raise RequestError(
                f"{where}: {_rows(bad)} beyond the float32 range (first: {first}); feature "
                f"{spec.name!r} takes finite numbers"
            )
        raise RequestError(
            f"{where}: {_rows(bad)} {'below' if word == 'minimum' else 'above'} the contract "
            f"{word} {_number(bound)} of feature {spec.name!r} (first: {first})"
        )
    return floats


def describe(value: Any) -> str:
    """A short description of a JSON value for error messages (never the whole value)."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    text = json.dumps(value)
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
    """What validating a request needs to know per feature, worked out once per server rather
    than once per request: the id column, each feature's V2 datatypes, and for each numeric
    feature the JSON types it takes as they are and its bounds.

    A column whose values all pass the one-line check of its table row (plain JSON type and
    within bounds; a known category) is used as it is; any other column takes the per-value
    path (`_numeric_values`, `_category_values`), which gives the same values and, for a bad
    one, the error naming the input, row and rule.
    """

    def __init__(self, specs: Sequence[FeatureSpec], ident: FeatureSpec | None = None) -> None:
        self.specs = list(specs)
        self.ident = ident
        named = [*self.specs, *(() if ident is None else (ident,))]
        self.datatypes = {spec.name: (spec, spec.datatypes) for spec in named}
        self.checks = [(spec, PLAIN_TYPES.get(spec.type), *_bounds(spec)) for spec in self.specs]
        numeric = [spec for spec in self.specs if spec.type != "category"]
        self.numeric_names = [spec.name for spec in numeric]
        self.numeric_inputs = [spec.input_name for spec in numeric]
        self.string_inputs = [spec.input_name for spec in self.specs if spec.type == "category"]
        missing = (type(None),)
        self.numeric_types = [
            frozenset((*PLAIN_TYPES[spec.type], *(missing if spec.nullable else ())))
            for spec in numeric
        ]
        self.nullable = np.array([[spec.nullable] for spec in numeric], dtype=bool).reshape(-1, 1)
        bounds = np.array([_bounds(spec) for spec in numeric], dtype=np.float64).reshape(-1, 2)
        self.lows, self.highs = bounds[:, :1], bounds[:, 1:]

    def build(self, columns: dict[str, list[Any]], rows: int, kind: str) -> ParsedRequest:
        """Validate every column and build the [N, 1] feeds; errors name `{kind} 'feature'`.

        All numeric columns go into one float32 block and all category columns into one
        object block, and each feed is a row view of its block: two numpy conversions per
        request instead of one per feature. Strings stay Python objects: a fixed-width unicode
        array makes every cell as wide as the longest one (one long value × many rows = TiB).
        """
        numeric: list[list[Any]] = []
        strings: list[list[Any]] = []
        unknown: dict[str, int] = {}
        clean, block64 = self._clean_numeric(columns) if rows >= MANY_ROWS else (None, None)
        for spec, plain, low, high in self.checks:
            values = columns[spec.name]
            if plain is None:  # a category: known values pass as they are
                try:
                    known = spec.allowed is not None and spec.allowed.issuperset(values)
                except TypeError:  # an array or an object among the values
                    known = False
                strings.append(values if known else self._slow(spec, values, kind, unknown))
                continue
            if clean is not None:
                if spec.name not in clean:
                    values = self._slow(spec, values, kind, unknown)
            else:
                for value in values:
                    if type(value) not in plain or not low <= value <= high:
                        values = self._slow(spec, values, kind, unknown)
                        break
            numeric.append(values)
        feeds: dict[str, np.ndarray] = {}
        if numeric:
            if block64 is not None and clean is not None and len(clean) == len(numeric):
                block = block64.astype(np.float32)  # every column as sent: converted once
            else:
                block = np.array(numeric, dtype=np.float32)
            block = block.reshape(len(numeric), rows, 1)
            feeds.update(zip(self.numeric_inputs, block, strict=True))
        if strings:
            text = np.array(strings, dtype=object).reshape(len(strings), rows, 1)
            feeds.update(zip(self.string_inputs, text, strict=True))
        return ParsedRequest(feeds=feeds, rows=rows, unknown=unknown, columns=columns)

    def _clean_numeric(self, columns: dict[str, list[Any]]) -> tuple[set[str], np.ndarray | None]:
        """The numeric features whose values are all plain JSON numbers of their type within
        bounds, or missing (null, NaN) where the contract allows it, checked for all columns at
        once: one type set per column, one float64 block, one comparison. Returns the float64
        block too when it holds every numeric column, so the feeds need no second conversion.

        Beyond a few rows this is cheaper than the per-value loop of `build`; the bounds are
        compared in float64, as `_numeric_values` compares `float(value)`.
        """
        names = self.numeric_names
        lists = [columns[name] for name in names]
        typed = [t.issuperset(map(type, v)) for t, v in zip(self.numeric_types, lists, strict=True)]
        lows, highs, nullable = self.lows, self.highs, self.nullable
        if not all(typed):
            names = [name for name, ok in zip(names, typed, strict=True) if ok]
            lists = [values for values, ok in zip(lists, typed, strict=True) if ok]
            lows, highs, nullable = lows[typed], highs[typed], nullable[typed]
        if not lists:
            return set(), None
        try:
            block = np.array(lists, dtype=np.float64)  # null (where allowed) becomes NaN
        except OverflowError:  # an integer beyond float64: the per-value path words it
            return set(), None
        inside = ((block >= lows) & (block <= highs) | (np.isnan(block) & nullable)).all(axis=1)
        clean = {names[i] for i in np.flatnonzero(inside).tolist()}
        return clean, block if len(names) == len(self.numeric_names) else None

    @staticmethod
    def _slow(
        spec: FeatureSpec, values: list[Any], kind: str, unknown: dict[str, int]
    ) -> list[Any]:
        """The per-value path: coercion, missing values, the exact error."""
        where = f"{kind} {spec.name!r}"
        if spec.type != "category":
            try:
                return _numeric_values(spec, values, where)
            except OverflowError:  # float() of an integer beyond the float range
                raise RequestError(f"{where}: a number is too large for this feature") from None
        out, count = _category_values(spec, values, where)
        if count:
            unknown[spec.name] = count
        return out


def _bounds(spec: FeatureSpec) -> tuple[float, float]:
    """The range a numeric feature's values must lie in: the contract's, within float32."""
    low = -FLOAT32_MAX if spec.minimum is None else max(spec.minimum, -FLOAT32_MAX)
    high = FLOAT32_MAX if spec.maximum is None else min(spec.maximum, FLOAT32_MAX)
    return low, high


BOMS = {b"\xef\xbb\xbf": "UTF-8", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def parse_json(body: bytes) -> Any:
    """The one reading of a request body, the server's and the capture sidecar's: UTF-8 JSON
    (RFC 8259 §8.1) without a byte-order mark, no key twice in an object, NaN/Infinity literals
    allowed (Python clients send them). Anything else is a RequestError (400).

    orjson parses the usual body several times faster but keeps the last of two equal keys. So
    its result is kept only when the body has no escape (a backslash) and as many colons as
    the re-encoded result: without escapes every key and string is spelt the same in both,
    and each duplicate key leaves one colon (and its dropped value's) out of the result. Any
    other body - with escapes, duplicates, NaN literals, integers beyond 64 bits - is parsed
    by the standard library, which names the problem.
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
    """orjson when it can encode the payload, else the standard library (never raises for
    what parse_json accepted, e.g. a lone surrogate echoed back in an error message)."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        pass
    return json.dumps(payload).encode()


def check_rows(rows: int, max_rows: int) -> None:
    if rows < 1:
        raise RequestError("the request has no rows")
    if rows > max_rows:
        raise RequestError(f"the request has {rows} rows; the limit is {max_rows} per request", 413)
