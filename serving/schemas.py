"""The request and response types of the API as pydantic models, the request models built
from the data contract: FastAPI writes the OpenAPI document from them. They document; they do
not validate (`serving.validation` does: docs/serving.md, "The app").
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from serving.validation import ID_DATATYPES, FeatureSpec

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


def responses(*statuses: int | str) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses` for the error statuses of a route, all `{"error": ...}`."""
    described = {s: ERRORS.get(s, "client error") for s in statuses if isinstance(s, int)}
    out: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": text} for status, text in described.items()
    }
    out["4XX"] = {"model": ErrorResponse, "description": "any other client error"}
    return out


def _safe(name: str) -> str:
    """A component name OpenAPI accepts, for a contract column named anything."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def value_type(spec: FeatureSpec) -> Any:
    """One value of a feature: its JSON type within the contract's range, null if nullable."""
    base: Any = PYTHON_TYPES[spec.type]
    bounded: Any = Annotated[base, Field(ge=spec.minimum, le=spec.maximum)]
    return bounded | None if spec.nullable else bounded


def id_type(ident: FeatureSpec) -> Any:
    return Annotated[str, Field(max_length=ident.max_length)] | int | None


def _feature_field(spec: FeatureSpec) -> Any:
    examples = None if spec.allowed is None else sorted(spec.allowed)
    return Field(alias=spec.name, description=spec.rule_text(), examples=examples)


def record_model(specs: Sequence[FeatureSpec], ident: FeatureSpec | None) -> type[BaseModel]:
    fields: dict[str, Any] = {
        f"f{index}": (value_type(spec), _feature_field(spec)) for index, spec in enumerate(specs)
    }
    if ident is not None:
        description = "optional id of the row (the contract's id column), echoed back"
        fields["row_id"] = (id_type(ident), Field(None, alias=ident.name, description=description))
    return create_model("Record", __config__=ConfigDict(extra="forbid"), **fields)


def tensor_model(spec: FeatureSpec, ident: bool = False) -> type[BaseModel]:
    """The V2 input tensor of one feature (or of the id): flat or nested [N, 1] data."""
    value: Any = id_type(spec) if ident else value_type(spec)
    name: Any = Literal[spec.name]
    datatype: Any = Literal[ID_DATATYPES if ident else spec.datatypes]
    row: Any = Annotated[list[value], Field(min_length=1, max_length=1)]  # nested [[v], [v]]
    return create_model(
        f"Input_{_safe(spec.name)}",
        name=(name, Field(description=spec.rule_text())),
        datatype=(datatype, ...),
        shape=(Annotated[list[int], Field(min_length=2, max_length=2)], Field(examples=[[1, 1]])),
        data=(list[value] | list[row], ...),
        parameters=(dict[str, Any] | None, None),
    )


def request_models(
    specs: Sequence[FeatureSpec], ident: FeatureSpec | None, max_rows: int
) -> tuple[type[BaseModel], type[BaseModel]]:
    """The V2 inference request and the `/predict` request of this contract."""
    tensors = [tensor_model(spec) for spec in specs]
    if ident is not None:
        tensors.append(tensor_model(ident, ident=True))
    tensor: Any = functools.reduce(operator.or_, tensors)
    if len(tensors) > 1:
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
    """`/predict`'s answer: one object per record with the task's `fields`
    (serving.outputs) and the record's id."""
    if ident is not None:
        fields = {**fields, "row_id": (id_type(ident), Field(None, alias=ident.name))}
    prediction: Any = create_model("Prediction", **fields)
    return create_model(
        "PredictResponse",
        __config__=ConfigDict(protected_namespaces=()),
        model_name=(str, ...),
        model_version=(str, ...),
        predictions=(list[prediction], ...),
    )
