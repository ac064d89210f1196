"""The API's types as pydantic models, for FastAPI's OpenAPI document: they document, they do
not validate (`serving.validation` does: docs/serving.md, "The app").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from serving.validation import ID_TYPE, FeatureSpec

PYTHON_TYPES: dict[str, type] = {"float": float, "int": int, "bool": bool, "category": str}
ERRORS = {
    400: "bad request (names the field and rule)",
    404: "unknown model or version",
    408: "the body did not arrive in time",
    413: "body or row count over the limit",
    422: "a record breaks the data contract (names the field and rule)",
    503: "not ready, or over the limit of requests in flight",
}


class ErrorResponse(BaseModel):
    """Every error answer: 4xx for a client mistake, 5xx only for the server's own."""

    error: str = Field(description="what was wrong, naming the field and the rule")


class ResponseTensor(BaseModel):
    name: str
    datatype: Literal["INT64", "FP32", "FP64", "BYTES"]
    shape: list[int]
    data: list[int | float | str | None]
    parameters: dict[str, Any] | None = None


class InferResponse(BaseModel):
    """The model's outputs for its task: a classifier's `label` and `probabilities` ([N, k],
    multiclass: the class names in each output's `parameters.classes`), a regressor's
    `predict` (FP64 [N]); and the ids when the request sent them."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseTensor]


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses` for the error statuses of a route, all `{"error": ...}`."""
    out: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": ERRORS.get(status, "client error")}
        for status in statuses
    }
    out["4XX"] = {"model": ErrorResponse, "description": "any other client error"}
    return out


def _safe(name: str) -> str:
    """A component name OpenAPI accepts, for a contract column named anything."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def value_type(spec: FeatureSpec) -> Any:
    """One value of a column: its JSON type within the contract's range, null if nullable."""
    if spec.type == ID_TYPE:
        return Annotated[str, Field(max_length=spec.max_length)] | int | None
    known = None if spec.allowed is None else sorted(spec.allowed)
    bounded: Any = Annotated[
        PYTHON_TYPES[spec.type], Field(ge=spec.minimum, le=spec.maximum, examples=known)
    ]
    return bounded | None if spec.nullable else bounded


def record_model(specs: Sequence[FeatureSpec], ident: FeatureSpec | None) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for index, spec in enumerate(specs):
        fields[f"f{index}"] = (value_type(spec), Field(alias=spec.name))
    if ident is not None:
        about = "optional id of the row (the contract's id column), echoed back"
        fields["row_id"] = (value_type(ident), Field(None, alias=ident.name, description=about))
    return create_model("Record", __config__=ConfigDict(extra="forbid"), **fields)


def tensor_model(spec: FeatureSpec) -> type[BaseModel]:
    """The V2 input tensor of one feature (or of the id): flat or nested [N, 1] data."""
    value: Any = value_type(spec)
    name: Any = Literal[spec.name]
    datatype: Any = Literal[spec.datatypes]
    row: Any = Annotated[list[value], Field(min_length=1, max_length=1)]  # nested [[v], [v]]
    return create_model(
        f"Input_{_safe(spec.name)}",
        name=(name, ...),
        datatype=(datatype, ...),
        shape=(Annotated[list[int], Field(min_length=2, max_length=2)], Field(examples=[[1, 1]])),
        data=(list[value] | list[row], ...),
        parameters=(dict[str, Any] | None, None),
    )


def request_models(
    specs: Sequence[FeatureSpec], ident: FeatureSpec | None, max_rows: int
) -> tuple[type[BaseModel], type[BaseModel]]:
    """The V2 inference request and the `/predict` request of this contract."""
    named = [*specs] if ident is None else [*specs, ident]
    tensor: Any = Union[tuple(tensor_model(spec) for spec in named)]  # noqa: UP007 (run time)
    if len(named) > 1:
        tensor = Annotated[tensor, Field(discriminator="name")]
    infer = create_model(
        "InferRequest",
        id=(str | None, None),
        parameters=(dict[str, Any] | None, None),
        inputs=(Annotated[list[tensor], Field(min_length=1)], ...),
        outputs=(list[RequestedOutput] | None, None),
    )
    record: Any = record_model(specs, ident)
    bounded: Any = Annotated[list[record], Field(min_length=1, max_length=max_rows)]

    class PredictRequest(RootModel[bounded]):
        """A JSON array of records with every contract feature (and optionally the id column,
        echoed back); null is a missing value."""

    return infer, PredictRequest


def predict_response_model(fields: dict[str, Any], ident: FeatureSpec | None) -> type[BaseModel]:
    """`/predict`'s answer: the task's `fields` (serving.outputs) and the id, per record."""
    if ident is not None:
        fields = {**fields, "row_id": (value_type(ident), Field(None, alias=ident.name))}
    prediction: Any = create_model("Prediction", **fields)
    return create_model(
        "PredictResponse",
        __config__=ConfigDict(protected_namespaces=()),
        model_name=(str, ...),
        model_version=(str, ...),
        predictions=(list[prediction], ...),
    )
