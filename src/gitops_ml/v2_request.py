"""Requests for the served model, built from raw rows and the data contract.

One builder for everything that talks to the server: the deploy smoke test, the tests, the
serving benchmark and the committed example payloads (`python -m serving.examples`). Raw cells
go through the contract's coercion (`gitops_ml.coercion`), so a frame read from the user's own
file ("Yes", " ", 0/1) becomes the JSON the server accepts, and missing values become null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.coercion import coerce_value
from gitops_ml.contract import Column, Contract

# V2 datatypes a contract type accepts; the first is the one clients are told to send.
V2_DATATYPES: dict[str, tuple[str, ...]] = {
    "float": ("FP32", "FP64"),
    "int": ("INT64", "INT32"),
    "bool": ("BOOL",),
    "category": ("BYTES",),
}
# The V2 output tensors a served model answers with, per task (serving/outputs.py builds them,
# the deploy smoke test checks them); the numbers (probabilities or values) come last.
V2_OUTPUTS: dict[str, tuple[str, ...]] = {
    "binary": ("label", "probabilities"),
    "multiclass": ("label", "probabilities"),
    "regression": ("predict",),
}


def json_value(value: Any, column: Column, contract: Contract) -> Any:
    """A raw cell as the JSON value serving takes for its column (None when missing)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or value is pd.NaT:
        return None
    coerced = coerce_value(value, column.type, contract.encoding)
    if coerced is None:
        return None
    if column.type == "int":
        return int(coerced)
    if column.type == "bool":
        return bool(coerced)
    return coerced


def id_value(value: Any, contract: Contract) -> str | None:
    """An id cell as text, whatever the id column's type (ids travel as V2 BYTES and are
    never fed to the model): 7590.0 from a gappy int column is "7590"."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return None if contract.encoding.is_missing(value) else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def request_columns(frame: pd.DataFrame, contract: Contract) -> dict[str, list[Any]]:
    """JSON values per column: the id column when the frame has one, then every feature."""
    columns: dict[str, list[Any]] = {}
    if contract.id_column is not None and contract.id_column in frame:
        ids = frame[contract.id_column].tolist()
        columns[contract.id_column] = [id_value(v, contract) for v in ids]
    for c in contract.features:
        columns[c.name] = [json_value(v, c, contract) for v in frame[c.name].tolist()]
    return columns


def records(frame: pd.DataFrame, contract: Contract) -> list[dict[str, Any]]:
    """`/predict` records: the id (if the frame has it) and every feature, null for missing."""
    columns = request_columns(frame, contract)
    return [{name: values[i] for name, values in columns.items()} for i in range(len(frame))]


def v2_request(
    frame: pd.DataFrame, contract: Contract, request_id: str | None = None
) -> dict[str, Any]:
    """An Open Inference Protocol (KServe V2) request: one [N, 1] tensor per column."""
    datatypes = {c.name: V2_DATATYPES[c.type][0] for c in contract.features}
    if contract.id_column is not None:
        datatypes[contract.id_column] = "BYTES"
    body: dict[str, Any] = {} if request_id is None else {"id": request_id}
    body["inputs"] = [
        {"name": name, "datatype": datatypes[name], "shape": [len(frame), 1], "data": values}
        for name, values in request_columns(frame, contract).items()
    ]
    return body


def example_frame(contract: Contract, rows: int = 2) -> pd.DataFrame:
    """Valid rows derived from the contract alone: numbers spread evenly inside each range,
    categories cycling through their allowed values, booleans alternating, an id per row, and
    the last row missing every nullable feature (when there is more than one row).

    Needs nothing but the contract, so the smoke test and the example payloads work for any
    user's data.
    """
    columns: dict[str, list[Any]] = {}
    if contract.id_column is not None:
        columns[contract.id_column] = [f"example-{i + 1}" for i in range(rows)]
    for column in contract.features:
        if column.is_categorical:
            allowed = column.checks.allowed or ("example",)
            values: list[Any] = [allowed[i % len(allowed)] for i in range(rows)]
        elif column.type == "bool":
            values = [i % 2 == 1 for i in range(rows)]
        else:
            low = column.checks.min if column.checks.min is not None else 0.0
            high = column.checks.max if column.checks.max is not None else low + 10.0
            spread = low + (high - low) * (np.arange(rows) + 1) / (rows + 1)
            values = [
                round(float(v)) if column.type == "int" else round(float(v), 2) for v in spread
            ]
        if column.nullable and rows > 1:
            values[-1] = None
        columns[column.name] = values
    return pd.DataFrame(columns)
