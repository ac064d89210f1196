"""The FastAPI app: Open Inference Protocol (KServe V2 REST), `/predict`, health and metrics.

Handlers are `async` and call onnxruntime inline (one intra-op thread): for a model that
answers in tens of microseconds, a thread-pool hop costs more than the inference. Bodies are
read and parsed by hand, so a JSON body is accepted whatever its Content-Type, and the
OpenAPI request schemas are generated from the data contract (see serving.protocol).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import protocol
from serving.example_payloads import INFER_FILE, PREDICT_FILE, example_payloads
from serving.metrics import CONTENT_TYPE, ServingMetrics
from serving.model import Model
from serving.prediction_log import PredictionLog
from serving.protocol import ParsedRequest, RequestError

REQUEST_ID_KEY = "serving.request_id"
# Metric labels come from fixed sets: a client must not be able to mint new time series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER = "other"
INTERNAL_ERROR = "internal server error (logged on the server)"
logger = logging.getLogger("serving")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what was wrong, naming the field"}},
}


@dataclass(frozen=True)
class Settings:
    """Limits that protect the server from one oversized request."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_rows: int = 10_000
    body_timeout: float = 30.0  # seconds for the whole body to arrive (a trickling client)


@dataclass
class ServerState:
    ready: bool = False


def _server_version() -> str:
    try:
        return metadata.version("gitops-ml")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(protocol.dump_json(payload), status_code=status, media_type="application/json")


def error_response(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def _header_value(text: str) -> bytes:
    """Header-safe (latin-1, no control characters) rendering of a metadata value."""
    return re.sub(r"[^\x20-\x7e]", "?", text).encode("latin-1")


class Instrumentation:
    """Pure ASGI middleware: request id, model headers on every response, status/latency metrics.

    Written against ASGI rather than as BaseHTTPMiddleware, which would add a task and a
    stream per request.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, headers: list[tuple[bytes, bytes]]):
        self.app = app
        self.metrics = metrics
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                text = value.decode("latin-1")
                request_id = text if _SAFE_REQUEST_ID.match(text) else ""
        request_id = request_id or uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id
        extra = [*self.headers, (b"x-request-id", request_id.encode())]
        status = 500
        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Every error a client sees is JSON, this one too; the traceback goes to the log.
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started_response:
                raise
            response = error_response(INTERNAL_ERROR, 500)
            await response(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            method = scope["method"]
            self.metrics.record_request(
                getattr(route, "path", OTHER),
                method if method in METHODS else OTHER,
                status,
                time.perf_counter() - started,
            )


class LabelledRoute(Route):
    """A plain Starlette route that, like FastAPI's, tells the metrics which route it was."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body, refusing the binary tensor extension, anything over the size limit and a body
    that takes longer than the body timeout to arrive (408)."""
    timeout = settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(request, settings.max_body_bytes)
    except TimeoutError:
        raise RequestError(f"the request body did not arrive within {timeout:g} s", 408) from None


async def _read_body(request: Request, limit: int) -> bytes:
    if "inference-header-content-length" in request.headers:
        raise RequestError(protocol.BINARY_MESSAGE)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise RequestError(f"the request body has {length} bytes; the limit is {limit}", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the request body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": {
                400: "bad request (names the field and rule)",
                404: "unknown model or version",
                408: "the body did not arrive in time",
                413: "body or row count over the limit",
                422: "a record breaks the data contract (names the field and rule)",
                503: "not ready",
            }[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in statuses
    }


def _body(schema: dict[str, Any], description: str, example: Any) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """OpenAPI parameters for a path template, for handlers that read them from the request."""
    names = re.findall(r"{(\w+)}", path)
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in names
    ]


def _ok(schema: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


def create_app(
    model: Model,
    settings: Settings | None = None,
    prediction_log: PredictionLog | None = None,
    operations_apart: bool = False,
) -> FastAPI:
    """An app serving `model`; readiness turns true once startup finished and sha256 matched.

    With `operations_apart`, `/metrics`, `/docs` and `/openapi.json` are left out: they are
    served by `operations_app(app)` on a port of their own, not behind the public Service.
    """
    settings = settings or Settings()
    info = model.info
    specs = model.specs
    ident = protocol.id_spec(model.contract)
    positive = f"{model.contract.target} = {model.contract.positive_label}"
    examples = example_payloads(model.contract)
    metrics = ServingMetrics(info, model.contract.categorical_features)
    state = ServerState()
    if prediction_log is not None:
        prediction_log.on_written = metrics.log_written.inc
        prediction_log.on_dropped = metrics.log_dropped.inc
        prediction_log.register_metrics(metrics.registry)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if prediction_log is not None:
            prediction_log.start()
        state.ready = info.sha256_matches
        yield
        state.ready = False
        if prediction_log is not None:
            prediction_log.close()

    app = FastAPI(
        title=f"{info.name} inference server",
        version=_server_version(),
        description=(
            "Open Inference Protocol (KServe V2 REST) and plain-JSON `/predict` for the "
            f"`{info.name}` model (version {info.version}). Request schemas are generated from "
            f"the data contract `{model.contract.name}`."
        ),
        lifespan=lifespan,
        openapi_url=None if operations_apart else "/openapi.json",
        docs_url=None if operations_apart else "/docs",
        redoc_url=None if operations_apart else "/redoc",
    )
    app.state.server = state
    app.state.metrics = metrics
    headers = [
        (b"x-model-name", _header_value(info.name)),
        (b"x-model-version", _header_value(info.version)),
        (b"x-model-sha256", _header_value(info.onnx_sha256)),
        (b"x-git-revision", _header_value(info.git_revision)),
    ]
    app.add_middleware(Instrumentation, metrics=metrics, headers=headers)

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> Response:
        return error_response(exc.message, exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error_response(str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(str(exc.errors()), 422)

    def check_model(name: str, version: str | None) -> None:
        if name != info.name:
            raise RequestError(
                f"model {name!r} is not served here; this server serves {info.name!r}", 404
            )
        if version is not None and version != info.version:
            raise RequestError(
                f"model {name!r} has no version {version!r}; this server serves {info.version!r}",
                404,
            )

    def predict(request: Request, parsed: ParsedRequest, api: str) -> tuple[np.ndarray, np.ndarray]:
        labels, probabilities = model.predict(parsed.feeds)
        scores = probabilities[:, 1]
        metrics.record_predictions(api, parsed.rows, scores, parsed.unknown)
        if prediction_log is not None:
            prediction_log.record(
                request.scope[REQUEST_ID_KEY], parsed.columns, labels, scores, parsed.ids
            )
        return labels, probabilities

    # ---------------------------------------------------------------- server-level endpoints

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def server_metadata() -> Response:
        return json_response(
            {"name": "gitops-ml-serving", "version": app.version, "extensions": []}
        )

    @app.get("/v2/health/live", tags=["v2"], summary="Liveness: the process answers")
    async def live() -> Response:
        return json_response({"live": True})

    @app.get(
        "/v2/health/ready",
        tags=["v2"],
        summary="Readiness: model loaded and its sha256 matches its metadata",
        responses=_errors(503),
    )
    async def ready() -> Response:
        return json_response({"ready": state.ready}, 200 if state.ready else 503)

    if not operations_apart:
        app.add_api_route(
            "/metrics",
            metrics_endpoint(metrics),
            methods=["GET"],
            tags=["operations"],
            summary="Prometheus metrics",
        )

    # ---------------------------------------------------------------- model endpoints

    model_metadata = {
        "name": info.name,
        "versions": [info.version],
        "platform": "onnxruntime_onnx",
        **protocol.model_metadata_tensors(specs),
        "parameters": {
            "onnx_sha256": info.onnx_sha256,
            "git_revision": info.git_revision,
            "sha256_verified": info.verified,
            "contract": model.contract.name,
            "target": model.contract.target,
            "positive_label": model.contract.positive_label,
            "id_input": None if ident is None else ident.name,
            "metrics": info.metrics,
        },
    }

    async def model_metadata_endpoint(
        model_name: str, model_version: str | None = None
    ) -> Response:
        check_model(model_name, model_version)
        return json_response(model_metadata)

    async def model_ready(model_name: str, model_version: str | None = None) -> Response:
        check_model(model_name, model_version)
        return json_response({"name": info.name, "ready": state.ready}, 200 if state.ready else 503)

    async def infer(request: Request) -> Response:
        # Path parameters are read here rather than declared: FastAPI's parameter solving
        # would cost more than the model on a 1-row request. They are documented below.
        path = request.path_params
        check_model(path["model_name"], path.get("model_version"))
        body = protocol.parse_json(await read_body(request, settings))
        parsed = protocol.parse_infer_request(body, specs, settings.max_rows, ident)
        labels, probabilities = predict(request, parsed, "v2")
        return json_response(
            protocol.infer_response(info.name, info.version, labels, probabilities, parsed, ident)
        )

    infer_body = _body(
        protocol.infer_request_schema(specs, ident),
        "One [N, 1] tensor per contract feature (and optionally one for the id column, echoed "
        "back as an output); `null` is a missing value. `probabilities` holds [P(0), P(1)] per "
        f"row, 1 being the positive class ({positive}).",
        examples[INFER_FILE],
    )
    infer_responses = {
        **_ok(protocol.infer_response_schema(), "label and probabilities"),
        **_errors(400, 404, 408, 413),
    }
    prefixes = ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}")
    for prefix in prefixes:
        app.add_api_route(
            prefix + "/infer",
            infer,
            methods=["POST"],
            tags=["v2"],
            summary="Inference (Open Inference Protocol)",
            openapi_extra={**infer_body, "parameters": _path_parameters(prefix)},
            responses=infer_responses,
        )
    # The hot path is served by plain Starlette routes placed first in the routing table,
    # skipping FastAPI's per-request dependency solving and the scan past the other routes
    # (~10 µs of a ~180 µs request in-process). The FastAPI routes above remain for the
    # OpenAPI document (same handler, same behaviour); requests never reach them.
    app.router.routes[:0] = [
        LabelledRoute(prefix + "/infer", infer, methods=["POST"], include_in_schema=False)
        for prefix in prefixes
    ]
    for prefix in prefixes:
        app.add_api_route(
            prefix,
            model_metadata_endpoint,
            methods=["GET"],
            tags=["v2"],
            summary="Model metadata (inputs, outputs, version, sha256, git revision, metrics)",
            responses=_errors(404),
        )
        app.add_api_route(
            prefix + "/ready",
            model_ready,
            methods=["GET"],
            tags=["v2"],
            summary="Model readiness",
            responses=_errors(404, 503),
        )

    # ---------------------------------------------------------------- plain JSON

    @app.post(
        "/predict",
        tags=["predict"],
        summary="Label and probability of the positive class for each record",
        openapi_extra=_body(
            protocol.records_schema(specs, settings.max_rows, ident),
            "A JSON array of records with every contract feature (and optionally the id column, "
            "echoed back); null is a missing value.",
            examples[PREDICT_FILE],
        ),
        responses={
            **_ok(protocol.predict_response_schema(positive, ident), "one prediction per record"),
            **_errors(400, 408, 413, 422),
        },
    )
    async def predict_records(request: Request) -> Response:
        body = protocol.parse_json(await read_body(request, settings))
        parsed = protocol.parse_records(body, specs, settings.max_rows, ident)
        labels, probabilities = predict(request, parsed, "predict")
        return json_response(
            protocol.predict_response(info.name, info.version, labels, probabilities, parsed, ident)
        )

    return app


def metrics_endpoint(metrics: ServingMetrics) -> Callable[[], Awaitable[Response]]:
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return prometheus


def operations_app(app: FastAPI) -> Starlette:
    """`/metrics`, `/openapi.json` and `/docs` of `app`, for a port of their own
    (SERVING_METRICS_PORT): scraped inside the cluster, never exposed by the Service."""

    async def openapi(_: Request) -> Response:
        return json_response(app.openapi())

    async def docs(_: Request) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    prometheus = metrics_endpoint(app.state.metrics)

    async def metrics(_: Request) -> Response:
        return await prometheus()

    async def http_error(_: Request, exc: Exception) -> Response:
        if isinstance(exc, StarletteHTTPException):
            return error_response(str(exc.detail), exc.status_code)
        return error_response(INTERNAL_ERROR, 500)

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ],
        exception_handlers={StarletteHTTPException: http_error, Exception: http_error},
    )
