"""Requests for the served model, built from raw rows and the data contract.

One builder for everything that talks to the server: the deploy smoke test, the tests, the
serving benchmark, the OpenAPI examples and the committed example payloads (`example_payloads`,
written by the pipeline's `examples` stage). Raw cells
go through the contract's coercion (`gitops_ml.value_coercion`), so a frame read from the user's
own file ("Yes", " ", 0/1) becomes the JSON the server accepts, and missing values become null.
Rows come as columns: a pandas frame, or a mapping of column names to lists (the server builds
its OpenAPI examples that way and never imports pandas).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from gitops_ml import paths
from gitops_ml.contract import V2_DATATYPES, Column, Contract
from gitops_ml.value_coercion import coerce_value

if TYPE_CHECKING:
    import pandas as pd

# Rows as columns: a pandas frame or a mapping of column name → values.
Columns = Union["pd.DataFrame", Mapping[str, Sequence[Any]]]
PREDICT_FILE = Path(paths.EXAMPLE_PREDICT).name
INFER_FILE = Path(paths.EXAMPLE_INFER).name


def _pandas_missing(value: Any) -> bool:
    """pandas' NA or NaT: only a pandas frame holds them, so pandas is loaded whenever one can
    occur."""
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


def json_value(value: Any, column: Column, contract: Contract) -> Any:
    """A raw cell as the JSON value serving takes for its column (None when missing)."""
    if isinstance(value, np.generic):
        value = value.item()
    if _pandas_missing(value):
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
    if value is None or _pandas_missing(value) or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return None if contract.encoding.is_missing(value) else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def request_columns(frame: Columns, contract: Contract) -> dict[str, list[Any]]:
    """JSON values per column: the id column when the frame has one, then every feature."""
    columns: dict[str, list[Any]] = {}
    if contract.id_column is not None and contract.id_column in frame:
        columns[contract.id_column] = [id_value(v, contract) for v in frame[contract.id_column]]
    for c in contract.features:
        columns[c.name] = [json_value(v, c, contract) for v in frame[c.name]]
    return columns


def records(frame: Columns, contract: Contract) -> list[dict[str, Any]]:
    """`/predict` records: the id (if the frame has it) and every feature, null for missing."""
    columns = request_columns(frame, contract)
    rows = len(columns[contract.features[0].name])
    return [{name: values[i] for name, values in columns.items()} for i in range(rows)]


def v2_request(frame: Columns, contract: Contract, request_id: str | None = None) -> dict[str, Any]:
    """An Open Inference Protocol (KServe V2) request: one [N, 1] tensor per column."""
    datatypes = {c.name: V2_DATATYPES[c.type][0] for c in contract.features}
    if contract.id_column is not None:
        datatypes[contract.id_column] = "BYTES"
    body: dict[str, Any] = {} if request_id is None else {"id": request_id}
    body["inputs"] = [
        {"name": name, "datatype": datatypes[name], "shape": [len(values), 1], "data": values}
        for name, values in request_columns(frame, contract).items()
    ]
    return body


def _fitted(text: str, short: str, max_length: int) -> str:
    """`text`, or `short` where the contract's `max_length` is shorter (a 2-character code)."""
    return text if len(text) <= max_length else short[:max_length]


def example_rows(contract: Contract, rows: int = 2) -> dict[str, list[Any]]:
    """Valid rows derived from the contract alone: numbers spread evenly inside each range,
    categories cycling through their allowed values, booleans alternating, an id per row, and
    the last row missing every nullable feature (when there is more than one row).

    Needs nothing but the contract, so the smoke test and the example payloads work for any
    user's data.
    """
    columns: dict[str, list[Any]] = {}
    if contract.id_column is not None:
        longest = contract.column(contract.id_column).max_length
        columns[contract.id_column] = [
            _fitted(f"example-{i + 1}", str(i + 1), longest) for i in range(rows)
        ]
    for column in contract.features:
        if column.is_categorical:
            allowed = column.checks.allowed or (_fitted("example", "x", column.max_length),)
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
    return columns


def example_payloads(contract: Contract) -> dict[str, Any]:
    """File name → request body: the same two example rows as records and as V2 tensors."""
    rows = example_rows(contract, rows=2)
    return {
        PREDICT_FILE: records(rows, contract),
        INFER_FILE: v2_request(rows, contract, request_id="example"),
    }
