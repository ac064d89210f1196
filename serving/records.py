"""Plain records: `POST /predict` with `[{feature: value, ...}, ...]`, for humans and scripts.

Values are checked by `serving.validation` as V2 tensors' are, but a violation is a 422.
"""

from __future__ import annotations

from typing import Any

from serving import v2
from serving.outputs import Outputs, Prediction
from serving.validation import (
    FeatureSpec,
    FeatureTable,
    ParsedRequest,
    RequestError,
    check_rows,
    describe,
    first_few,
    id_values,
    named,
    parse_json,
)


def parse_request(api: str, raw: bytes, table: FeatureTable, max_rows: int) -> ParsedRequest:
    """The server's and the capture sidecar's one reading of a body to `api` ("v2" or
    "predict"): so the bodies the server accepts are exactly the bodies capture records."""
    document = parse_json(raw)
    if api == "v2":
        return v2.parse_infer_request(document, table, max_rows)
    return parse_records(document, table, max_rows)


def parse_records(body: Any, table: FeatureTable, max_rows: int) -> ParsedRequest:
    """Every contract feature in each record, the id column optional, no other key."""
    specs, ident = table.specs, table.ident
    if not isinstance(body, list):
        raise RequestError("the request body must be a JSON array of records (objects)")
    check_rows(len(body), max_rows)
    names = [spec.name for spec in specs]
    expected = set(names)
    with_id = expected if ident is None else {*expected, ident.name}
    columns: dict[str, list[Any]] = {name: [] for name in names}
    ids: list[Any] = []
    for row, record in enumerate(body):
        if not isinstance(record, dict):
            raise RequestError(f"record {row} is {describe(record)}, not an object", 422)
        keys = record.keys()
        if keys != expected and keys != with_id:
            missing = [name for name in names if name not in record]
            extra = sorted(named(key) for key in record if key not in with_id)
            problems = []
            if missing:
                problems.append(f"missing feature(s) {', '.join(missing)}")
            if extra:
                problems.append(f"unknown field(s) {first_few(extra)} (not contract features)")
            raise RequestError(f"record {row}: {'; '.join(problems)}", 422)
        for name in names:
            columns[name].append(record[name])
        if ident is not None:
            ids.append(record.get(ident.name))
    try:
        parsed = table.build(columns, len(body), "field")
        if ident is not None and any(value is not None for value in ids):
            parsed.ids = id_values(ident, ids, f"field {ident.name!r}")
    except RequestError as exc:
        raise RequestError(exc.message, 422) from None
    return parsed


def predict_response(
    model_name: str,
    model_version: str,
    prediction: Prediction,
    outputs: Outputs,
    parsed: ParsedRequest,
    ident: FeatureSpec | None = None,
) -> dict[str, Any]:
    """One answer per record (serving.outputs), with the record's id when sent."""
    predictions = outputs.record(prediction)
    if parsed.ids is not None and ident is not None:
        predictions = [
            {ident.name: key, **answer} for key, answer in zip(parsed.ids, predictions, strict=True)
        ]
    return {"model_name": model_name, "model_version": model_version, "predictions": predictions}
