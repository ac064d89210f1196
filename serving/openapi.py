"""The OpenAPI document, generated from the data contract and the app's one route table.

Request schemas and examples come from the contract (types, ranges, allowed values, nullable),
so the document a client reads is the rule the server enforces. Error responses are all
`{"error": ...}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from serving.model import OUTPUT_NAMES
from serving.validation import JSON_TYPES, FeatureSpec

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what was wrong, naming the field"}},
}
ERRORS = {
    400: "bad request (names the field and rule)",
    404: "unknown model or version",
    408: "the body did not arrive in time",
    413: "body or row count over the limit",
    422: "a record breaks the data contract (names the field and rule)",
    503: "not ready, or over the connection limit",
}


@dataclass(frozen=True)
class Operation:
    """What the document says about one route: the app's route table holds one per route."""

    summary: str
    tags: tuple[str, ...] = ()
    body: dict[str, Any] | None = None  # requestBody
    ok: dict[str, Any] | None = None  # schema of the 200 answer
    ok_description: str = "OK"
    errors: tuple[int, ...] = ()
    documented: bool = True

    def render(self, path: str) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": self.summary, "tags": list(self.tags)}
        parameters = path_parameters(path)
        if parameters:
            operation["parameters"] = parameters
        if self.body is not None:
            operation["requestBody"] = self.body
        ok: dict[str, Any] = {"description": self.ok_description}
        if self.ok is not None:
            ok["content"] = {"application/json": {"schema": self.ok}}
        operation["responses"] = {"200": ok, **errors(*self.errors)}
        return operation


def document(
    title: str, version: str, description: str, routes: Iterable[tuple[str, str, Operation]]
) -> dict[str, Any]:
    """OpenAPI 3.1 from (path, method, operation) triples."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation in routes:
        if operation.documented:
            paths.setdefault(path, {})[method.lower()] = operation.render(path)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
    }


def errors(*statuses: int) -> dict[str, dict[str, Any]]:
    return {
        str(status): {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in statuses
    }


def request_body(schema: dict[str, Any], description: str, example: Any) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


def path_parameters(path: str) -> list[dict[str, Any]]:
    names = re.findall(r"{(\w+)}", path)
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in names
    ]


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
