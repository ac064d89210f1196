"""The Open Inference Protocol (KServe V2 REST): `POST /v2/models/{name}[/versions/{v}]/infer`.

Tensors' names, datatypes and shapes are checked here, their values by `serving.validation`.
"""

from __future__ import annotations

from typing import Any

from serving.outputs import Outputs, Prediction, tensor
from serving.validation import (
    ID_TYPE,
    FeatureSpec,
    FeatureTable,
    ParsedRequest,
    RequestError,
    check_rows,
    id_values,
    named,
)

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
    """V2 allows row-major flat data or nested [[v], [v]]; either gives one value per row."""
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


def _input_tensor(
    item: Any, index: int, by_name: dict[str, tuple[FeatureSpec, tuple[str, ...]]]
) -> tuple[str, list[Any]]:
    """One input tensor's name and values, all but the values checked."""
    if type(item) is not dict:
        raise RequestError(f"inputs[{index}] must be an object with name, datatype, shape, data")
    name = item.get("name")
    if type(name) is not str:
        raise RequestError(f"inputs[{index}]: 'name' must be a string")
    entry = by_name.get(name)
    if entry is None:
        raise RequestError(
            f"input {named(name)} is not a feature (or the id) of the data contract; expected "
            f"inputs: {', '.join(by_name)}"
        )
    spec, datatypes = entry
    datatype, shape, data = item.get("datatype"), item.get("shape"), item.get("data")
    if datatype is None or shape is None or data is None:
        missing = [key for key in ("datatype", "shape", "data") if item.get(key) is None]
        raise RequestError(f"input {name!r}: {', '.join(repr(k) for k in missing)} required")
    if "parameters" in item:
        _reject_binary(item["parameters"], f"input {name!r}: ")
    if datatype not in datatypes:
        what = "the id" if spec.type == ID_TYPE else f"contract type {spec.type}"
        raise RequestError(
            f"input {name!r}: datatype {datatype!r} does not fit {what}; "
            f"use {' or '.join(datatypes)}"
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


def parse_infer_request(body: Any, table: FeatureTable, max_rows: int) -> ParsedRequest:
    """One [N, 1] tensor per contract feature, and optionally one for the id column."""
    if type(body) is not dict:
        raise RequestError("the request body must be a JSON object with an 'inputs' array")
    if "parameters" in body:
        _reject_binary(body["parameters"], "")
    inputs = body.get("inputs")
    if type(inputs) is not list or not inputs:
        raise RequestError("'inputs' must be a non-empty array of tensors, one per feature")
    columns: dict[str, list[Any]] = {}
    for index, item in enumerate(inputs):
        name, values = _input_tensor(item, index, table.datatypes)
        if name in columns:
            raise RequestError(f"input {name!r} is given more than once")
        columns[name] = values
    ident = table.ident
    if len(columns) - (ident is not None and ident.name in columns) < len(table.specs):
        missing = [spec.name for spec in table.specs if spec.name not in columns]
        raise RequestError(f"missing input(s) for contract feature(s): {', '.join(missing)}")
    rows = {len(values) for values in columns.values()}
    if len(rows) > 1:
        sizes = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise RequestError(f"all inputs must have the same number of rows; got {sizes}")
    (count,) = rows
    check_rows(count, max_rows)
    ids = None if ident is None else columns.pop(ident.name, None)
    parsed = table.build(columns, count, "input")
    if ids is not None and ident is not None:
        parsed.ids = id_values(ident, ids, f"input {ident.name!r}")
    if "outputs" in body:
        parsed.outputs = _requested_outputs(body["outputs"], table.outputs)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError("'id' must be a string")
    parsed.request_id = request_id
    return parsed


def _requested_outputs(outputs: Any, known: tuple[str, ...]) -> tuple[str, ...] | None:
    if outputs is None:
        return None
    if type(outputs) is not list:
        raise RequestError("'outputs' must be an array of {\"name\": ...} objects")
    names: list[str] = []
    for index, item in enumerate(outputs):
        name = item.get("name") if type(item) is dict else None
        if name not in known:
            raise RequestError(
                f"outputs[{index}]: unknown output {named(name)}; the outputs are "
                f"{' and '.join(known)}"
            )
        _reject_binary(item.get("parameters"), f"output {name!r}: ")
        names.append(name)
    return tuple(names) or None


def infer_response(
    model_name: str,
    model_version: str,
    prediction: Prediction,
    outputs: Outputs,
    parsed: ParsedRequest,
    ident: FeatureSpec | None = None,
) -> dict[str, Any]:
    """The task's output tensors (serving.outputs) and the ids when sent, those asked for."""
    tensors = {output["name"]: output for output in outputs.v2(prediction)}
    if parsed.ids is not None and ident is not None:
        tensors[ident.name] = tensor(ident.name, "BYTES", [parsed.rows], parsed.ids)
    names = parsed.outputs or tuple(tensors)
    response: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": [tensors[name] for name in names if name in tensors],
    }
    if parsed.request_id is not None:
        response["id"] = parsed.request_id
    return response
