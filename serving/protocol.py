"""Request parsing and validation derived from the data contract, for both APIs.

The Open Inference Protocol (KServe V2) sends one tensor per feature; `/predict` sends records.
Both end in the same per-column check (type, missing values, range), so a rule is enforced the
same way whichever API a client uses, and the error names the input, the row and the rule.
Feeds are built from plain Python lists per column (no pandas): that is most of the request cost.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import orjson
except ImportError:  # pragma: no cover - orjson comes with dvc; the stdlib path is the fallback
    orjson = None  # type: ignore[assignment]

from gitops_ml.coercion import ValueRejected, coerce_value
from gitops_ml.contract import MISSING_CATEGORY, Column, Contract, Encoding
from gitops_ml.v2_request import V2_DATATYPES

OUTPUT_LABEL = "label"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_NAMES = (OUTPUT_LABEL, OUTPUT_PROBABILITIES)

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

    @classmethod
    def from_column(cls, column: Column, encoding: Encoding) -> FeatureSpec:
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
    return [FeatureSpec.from_column(column, contract.encoding) for column in contract.features]


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
    )


def _id_values(spec: FeatureSpec, values: list[Any], where: str) -> list[Any]:
    for row, value in enumerate(values):
        kind = type(value)
        if kind is str:
            check_text(spec, value, where, row)
        elif value is not None and kind is not int:
            raise RequestError(
                f"{where}: row {row} is {_describe(value)}; the id column {spec.name!r} takes "
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
    """The values as model strings (missing = \"\") and how many are unknown categories.

    A known value needs one set lookup; anything else is checked for length (the contract's
    `max_length`, so a request costs memory in proportion to its body), control characters
    and encodability before it is scored and counted as unknown.
    """
    missing: list[int] = []
    unknown = 0
    out: list[str] = []
    allowed = spec.allowed
    for row, value in enumerate(values):
        if type(value) is str:
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
                f"{where}: row {row} is {_describe(value)}; feature {spec.name!r} is a "
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
            f"{where}: row {row} is {_describe(value)}, {exc}; feature {spec.name!r} has "
            f"contract type {spec.type} and takes {TAKES[spec.type]}"
        ) from None
    return number


def _numeric_values(spec: FeatureSpec, values: list[Any], where: str) -> list[float]:
    """Plain Python per value: for the 1-20 rows of a typical request, numpy calls per check
    would cost more than the checks."""
    low = -FLOAT32_MAX if spec.minimum is None else max(spec.minimum, -FLOAT32_MAX)
    high = FLOAT32_MAX if spec.maximum is None else min(spec.maximum, FLOAT32_MAX)
    floats: list[float] = []
    absent: list[int] = []
    below: list[int] = []
    above: list[int] = []
    for row, value in enumerate(values):
        number = None if value is None else _to_float(spec, value, where, row)
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
        first = _describe(values[bad[0]])
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


def _describe(value: Any) -> str:
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


def _build(
    specs: Sequence[FeatureSpec], columns: dict[str, list[Any]], rows: int, kind: str
) -> ParsedRequest:
    """Validate every column and build the [N, 1] feeds; errors name `{kind} 'feature'`.

    All numeric columns go into one float32 block and all category columns into one object
    block, and each feed is a contiguous row view of its block: two numpy conversions per
    request instead of one per feature. Strings stay Python objects: a fixed-width unicode
    array makes every cell as wide as the longest one (one long value × many rows = TiB).
    """
    numeric: list[list[float]] = []
    numeric_names: list[str] = []
    strings: list[list[str]] = []
    string_names: list[str] = []
    unknown: dict[str, int] = {}
    where = ""
    try:
        for spec in specs:
            where = f"{kind} {spec.name!r}"
            if spec.type == "category":
                values, count = _category_values(spec, columns[spec.name], where)
                strings.append(values)
                string_names.append(spec.name)
                if count:
                    unknown[spec.name] = count
            else:
                numeric.append(_numeric_values(spec, columns[spec.name], where))
                numeric_names.append(spec.name)
    except OverflowError:  # float() of an integer beyond the float range
        raise RequestError(f"{where}: a number is too large for this feature") from None
    feeds: dict[str, np.ndarray] = {}
    if numeric:
        block = np.array(numeric, dtype=np.float32)
        feeds.update((name, block[i].reshape(rows, 1)) for i, name in enumerate(numeric_names))
    if strings:
        text = np.array(strings, dtype=object)
        feeds.update((name, text[i].reshape(rows, 1)) for i, name in enumerate(string_names))
    return ParsedRequest(feeds=feeds, rows=rows, unknown=unknown, columns=columns)


def parse_json(body: bytes) -> Any:
    """Any JSON document; NaN/Infinity literals are allowed (Python clients send them).

    orjson (installed with dvc) parses the usual body several times faster; whatever it
    refuses (NaN literals, integers beyond 64 bits, lone surrogates) gets a second chance with
    the standard library, whose error message the client then sees.
    """
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from None


def dump_json(payload: Any) -> bytes:
    """orjson when it can encode the payload, else the standard library (never raises for
    what parse_json accepted, e.g. a lone surrogate echoed back in an error message)."""
    if orjson is not None:
        try:
            return orjson.dumps(payload)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(payload).encode()


def _check_rows(rows: int, max_rows: int) -> None:
    if rows < 1:
        raise RequestError("the request has no rows")
    if rows > max_rows:
        raise RequestError(f"the request has {rows} rows; the limit is {max_rows} per request", 413)


# --------------------------------------------------------------------------------------------
# Open Inference Protocol (KServe V2): POST /v2/models/{name}[/versions/{v}]/infer
# --------------------------------------------------------------------------------------------

BINARY_PARAMETERS = ("binary_data", "binary_data_output", "binary_data_size")
BINARY_MESSAGE = (
    "the binary tensor extension is not supported; send the tensors as JSON "
    "('data' arrays) without binary_data parameters"
)


def _reject_binary(parameters: Any, where: str) -> None:
    if parameters is None:
        return
    if type(parameters) is not dict:
        raise RequestError(f"{where}'parameters' must be an object")
    for key in BINARY_PARAMETERS:
        if parameters.get(key) not in (False, None):
            raise RequestError(f"{where}{BINARY_MESSAGE}")


def _flat_data(name: str, data: Any) -> list[Any]:
    """V2 allows row-major flat data or nested [[v], [v]]; either gives one value per row.

    Values themselves are checked by the column validators (an array where a value belongs
    fails there as a wrong type).
    """
    if type(data) is not list:
        raise RequestError(f"input {name!r}: 'data' must be an array")
    if data and type(data[0]) is list:
        flat: list[Any] = []
        for row, item in enumerate(data):
            if type(item) is not list or len(item) != 1:
                raise RequestError(
                    f"input {name!r}: nested 'data' row {row} must hold exactly one value "
                    "(shape [N, 1])"
                )
            flat.append(item[0])
        return flat
    return data


def _input_tensor(item: Any, index: int, by_name: dict[str, FeatureSpec]) -> tuple[str, list[Any]]:
    """One V2 input tensor's values, after checking everything but the values themselves.

    Called once per feature per request: exact type checks, no ABC isinstance.
    """
    if type(item) is not dict:
        raise RequestError(f"inputs[{index}] must be an object with name, datatype, shape, data")
    name = item.get("name")
    spec = by_name.get(name) if type(name) is str else None
    if spec is None:
        if type(name) is not str:
            raise RequestError(f"inputs[{index}]: 'name' must be a string")
        raise RequestError(
            f"input {name!r} is not a feature (or the id) of the data contract; expected "
            f"inputs: {', '.join(by_name)}"
        )
    name = spec.name
    datatype = item.get("datatype")
    shape = item.get("shape")
    data = item.get("data")
    if datatype is None or shape is None or data is None:
        missing = [key for key in ("datatype", "shape", "data") if item.get(key) is None]
        raise RequestError(f"input {name!r}: {', '.join(repr(k) for k in missing)} required")
    if "parameters" in item:
        _reject_binary(item["parameters"], f"input {name!r}: ")
    if datatype not in spec.datatypes:
        what = "the id" if spec.type == ID_TYPE else f"contract type {spec.type}"
        raise RequestError(
            f"input {name!r}: datatype {datatype!r} does not fit {what}; "
            f"use {' or '.join(spec.datatypes)}"
        )
    if (
        type(shape) is not list
        or len(shape) != 2
        or type(shape[0]) is not int
        or shape[1] != 1
        or type(shape[1]) is not int
        or shape[0] < 0
    ):
        raise RequestError(f"input {name!r}: shape must be [N, 1], got {shape!r}")
    values = _flat_data(name, data)
    if len(values) != shape[0]:
        raise RequestError(
            f"input {name!r}: shape {shape} says {shape[0]} rows but 'data' has "
            f"{len(values)} values"
        )
    return name, values


def parse_infer_request(
    body: Any, specs: Sequence[FeatureSpec], max_rows: int, ident: FeatureSpec | None = None
) -> ParsedRequest:
    """Validate a V2 inference request: exactly one [N, 1] tensor per contract feature, and
    optionally one for the contract's id column (`ident`)."""
    if type(body) is not dict:
        raise RequestError("the request body must be a JSON object with an 'inputs' array")
    _reject_binary(body.get("parameters"), "")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("'inputs' must be a non-empty array of tensors, one per feature")
    by_name = {spec.name: spec for spec in specs}
    if ident is not None:
        by_name[ident.name] = ident
    columns: dict[str, list[Any]] = {}
    for index, item in enumerate(inputs):
        name, values = _input_tensor(item, index, by_name)
        if name in columns:
            raise RequestError(f"input {name!r} is given more than once")
        columns[name] = values
    missing = [spec.name for spec in specs if spec.name not in columns]
    if missing:
        raise RequestError(f"missing input(s) for contract feature(s): {', '.join(missing)}")
    counts = {len(values) for values in columns.values()}
    if len(counts) > 1:
        sizes = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise RequestError(f"all inputs must have the same number of rows; got {sizes}")
    rows = counts.pop()
    _check_rows(rows, max_rows)
    ids = None if ident is None else columns.pop(ident.name, None)
    parsed = _build(specs, columns, rows, "input")
    if ids is not None and ident is not None:
        parsed.ids = _id_values(ident, ids, f"input {ident.name!r}")
    parsed.outputs = _requested_outputs(body.get("outputs"), ident)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError("'id' must be a string")
    parsed.request_id = request_id
    return parsed


def _requested_outputs(outputs: Any, ident: FeatureSpec | None) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise RequestError("'outputs' must be an array of {\"name\": ...} objects")
    known = OUTPUT_NAMES if ident is None else (*OUTPUT_NAMES, ident.name)
    names: list[str] = []
    for index, item in enumerate(outputs):
        name = item.get("name") if isinstance(item, Mapping) else None
        if name not in known:
            raise RequestError(
                f"outputs[{index}]: unknown output {name!r}; the outputs are {' and '.join(known)}"
            )
        if isinstance(item, Mapping):
            _reject_binary(item.get("parameters"), f"output {name!r}: ")
        names.append(str(name))
    return tuple(names) or None


def infer_response(
    model_name: str,
    model_version: str,
    labels: np.ndarray,
    probabilities: np.ndarray,
    parsed: ParsedRequest,
    ident: FeatureSpec | None = None,
) -> dict[str, Any]:
    rows = int(labels.shape[0])
    tensors = {
        OUTPUT_LABEL: {
            "name": OUTPUT_LABEL,
            "datatype": "INT64",
            "shape": [rows],
            "data": labels.tolist(),
        },
        OUTPUT_PROBABILITIES: {
            "name": OUTPUT_PROBABILITIES,
            "datatype": "FP32",
            "shape": [rows, 2],
            "data": probabilities.ravel().tolist(),
        },
    }
    if parsed.ids is not None and ident is not None:
        tensors[ident.name] = {
            "name": ident.name,
            "datatype": "BYTES",
            "shape": [rows],
            "data": parsed.ids,
        }
    names = parsed.outputs or tuple(tensors)
    response: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": [tensors[name] for name in names if name in tensors],
    }
    if parsed.request_id is not None:
        response["id"] = parsed.request_id
    return response


# --------------------------------------------------------------------------------------------
# Plain records: POST /predict
# --------------------------------------------------------------------------------------------


def parse_records(
    body: Any, specs: Sequence[FeatureSpec], max_rows: int, ident: FeatureSpec | None = None
) -> ParsedRequest:
    """Validate `[{feature: value, ...}, ...]`: every feature present, the id column (`ident`)
    optional, no other key."""
    if not isinstance(body, list):
        raise RequestError("the request body must be a JSON array of records (objects)")
    _check_rows(len(body), max_rows)
    names = [spec.name for spec in specs]
    expected = set(names)
    with_id = expected if ident is None else {*expected, ident.name}
    columns: dict[str, list[Any]] = {name: [] for name in names}
    ids: list[Any] = []
    for row, record in enumerate(body):
        if not isinstance(record, dict):
            raise RequestError(f"record {row} is {_describe(record)}, not an object", 422)
        keys = record.keys()
        if keys != expected and keys != with_id:
            missing = [name for name in names if name not in record]
            extra = sorted(str(key) for key in record if key not in with_id)
            problems = []
            if missing:
                problems.append(f"missing feature(s) {', '.join(missing)}")
            if extra:
                problems.append(f"unknown field(s) {', '.join(extra)} (not contract features)")
            raise RequestError(f"record {row}: {'; '.join(problems)}", 422)
        for name in names:
            columns[name].append(record[name])
        if ident is not None:
            ids.append(record.get(ident.name))
    try:
        parsed = _build(specs, columns, len(body), "field")
        if ident is not None and any(value is not None for value in ids):
            parsed.ids = _id_values(ident, ids, f"field {ident.name!r}")
    except RequestError as exc:
        raise RequestError(exc.message, 422) from None
    return parsed


def predict_response(
    model_name: str,
    model_version: str,
    labels: np.ndarray,
    probabilities: np.ndarray,
    parsed: ParsedRequest,
    ident: FeatureSpec | None = None,
) -> dict[str, Any]:
    """One prediction per record: the label and the probability of the positive class, with
    the record's id when it had one."""
    scores = probabilities[:, 1].tolist()
    predictions = [
        {"label": label, "probability": score}
        for label, score in zip(labels.tolist(), scores, strict=True)
    ]
    if parsed.ids is not None and ident is not None:
        predictions = [
            {ident.name: key, **prediction}
            for key, prediction in zip(parsed.ids, predictions, strict=True)
        ]
    return {"model_name": model_name, "model_version": model_version, "predictions": predictions}


# --------------------------------------------------------------------------------------------
# OpenAPI schemas, generated from the same contract
# --------------------------------------------------------------------------------------------


def feature_schema(spec: FeatureSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[spec.type], "description": spec.rule_text()}
    if spec.minimum is not None:
        schema["minimum"] = spec.minimum
    if spec.maximum is not None:
        schema["maximum"] = spec.maximum
    if spec.allowed is not None:
        schema["examples"] = sorted(spec.allowed)
    if spec.nullable:
        return {"anyOf": [schema, {"type": "null"}], "description": spec.rule_text()}
    return schema


def id_schema(ident: FeatureSpec) -> dict[str, Any]:
    return {
        "type": ["string", "integer", "null"],
        "maxLength": ident.max_length,
        "description": "optional id of the row (the contract's id column), echoed back",
    }


def records_schema(
    specs: Sequence[FeatureSpec], max_rows: int, ident: FeatureSpec | None
) -> dict[str, Any]:
    properties = {spec.name: feature_schema(spec) for spec in specs}
    if ident is not None:
        properties = {ident.name: id_schema(ident), **properties}
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": max_rows,
        "items": {
            "type": "object",
            "properties": properties,
            "required": [spec.name for spec in specs],
            "additionalProperties": False,
        },
    }


def input_tensor_schema(specs: Sequence[FeatureSpec], ident: FeatureSpec | None) -> dict[str, Any]:
    names = [spec.name for spec in specs] + ([] if ident is None else [ident.name])
    return {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string", "enum": names},
            "datatype": {
                "type": "string",
                "enum": ["FP32", "FP64", "INT64", "INT32", "BOOL", "BYTES"],
            },
            "shape": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "data": {"type": "array", "items": {}},
            "parameters": {"type": "object"},
        },
    }


def infer_request_schema(specs: Sequence[FeatureSpec], ident: FeatureSpec | None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {
                "type": "array",
                "items": input_tensor_schema(specs, ident),
                "minItems": 1,
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": list(OUTPUT_NAMES)}},
                },
            },
        },
    }


def model_metadata_tensors(specs: Sequence[FeatureSpec]) -> dict[str, list[dict[str, Any]]]:
    """The `inputs`/`outputs` of the V2 model metadata response."""
    return {
        "inputs": [
            {"name": spec.name, "datatype": spec.datatypes[0], "shape": [-1, 1]} for spec in specs
        ],
        "outputs": [
            {"name": OUTPUT_LABEL, "datatype": "INT64", "shape": [-1]},
            {"name": OUTPUT_PROBABILITIES, "datatype": "FP32", "shape": [-1, 2]},
        ],
    }


def _tensor_schema(datatype: str, item_type: str | list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": [datatype]},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "data": {"type": "array", "items": {"type": item_type}},
        },
    }


def infer_response_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["model_name", "model_version", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {
                "type": "array",
                "items": {
                    "oneOf": [
                        _tensor_schema("INT64", "integer"),
                        _tensor_schema("FP32", "number"),
                        _tensor_schema("BYTES", ["string", "integer", "null"]),
                    ]
                },
            },
        },
    }


def predict_response_schema(positive: str, ident: FeatureSpec | None) -> dict[str, Any]:
    """`positive` says in words what `probability` is the probability of."""
    properties: dict[str, Any] = {
        "label": {"type": "integer", "enum": [0, 1], "description": "1 for the positive class"},
        "probability": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": f"probability of the positive class ({positive})",
        },
    }
    if ident is not None:
        properties = {ident.name: id_schema(ident), **properties}
    return {
        "type": "object",
        "required": ["model_name", "model_version", "predictions"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "predictions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["label", "probability"],
                    "properties": properties,
                },
            },
        },
    }
