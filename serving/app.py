"""The app: Open Inference Protocol (KServe V2 REST), `/predict`, health, metrics and docs.

One route table (`routes`) is both the Starlette routing and the OpenAPI document. Handlers
are plain Starlette endpoints, `async`, calling onnxruntime inline (one intra-op thread): for a
model that answers in tens of microseconds, a thread-pool hop or a framework's parameter
solving costs more than the inference. Bodies are read and parsed by hand, so a JSON body is
accepted whatever its Content-Type.
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
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving import openapi, records, v2
from serving.example_payloads import INFER_FILE, PREDICT_FILE, example_payloads
from serving.metrics import CONTENT_TYPE, ServingMetrics
from serving.model import Model
from serving.openapi import Operation
from serving.prediction_log import PredictionLog
from serving.v2 import BINARY_MESSAGE
from serving.validation import ParsedRequest, RequestError, dump_json, id_spec, parse_json

REQUEST_ID_KEY = "serving.request_id"
# Metric labels come from fixed sets: a client must not be able to mint new time series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER = "other"
INTERNAL_ERROR = "internal server error (logged on the server)"
logger = logging.getLogger("serving")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
Handler = Callable[[Request], Awaitable[Response]]


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
    return Response(dump_json(payload), status_code=status, media_type="application/json")


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
        raise RequestError(BINARY_MESSAGE)
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


@dataclass(frozen=True)
class Endpoint:
    """One row of the route table: where, which method, what runs, what the docs say."""

    path: str
    method: str
    handler: Handler
    operation: Operation


async def _error(_: Request, exc: Exception) -> Response:
    if isinstance(exc, RequestError):
        return error_response(exc.message, exc.status)
    if isinstance(exc, HTTPException):
        return error_response(str(exc.detail), exc.status_code)
    return error_response(INTERNAL_ERROR, 500)


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    RequestError: _error,
    HTTPException: _error,
    Exception: _error,  # the operations app has no Instrumentation to catch it
}


def _application(endpoints: list[Endpoint], **options: Any) -> Starlette:
    routes = [LabelledRoute(e.path, e.handler, methods=[e.method]) for e in endpoints]
    return Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS, **options)


def create_app(
    model: Model,
    settings: Settings | None = None,
    prediction_log: PredictionLog | None = None,
    operations_apart: bool = False,
) -> Starlette:
    """An app serving `model`; readiness turns true once startup finished and sha256 matched.

    With `operations_apart`, `/metrics`, `/docs` and `/openapi.json` are left out: they are
    served by `operations_app(app)` on a port of their own, not behind the public Service.
    """
    settings = settings or Settings()
    info = model.info
    contract = model.contract
    specs = model.specs
    ident = id_spec(contract)
    positive = f"{contract.target} = {contract.positive_label}"
    examples = example_payloads(contract)
    metrics = ServingMetrics(info, contract.categorical_features)
    state = ServerState()
    version = _server_version()
    if prediction_log is not None:
        prediction_log.on_written = metrics.log_written.inc
        prediction_log.on_dropped = metrics.log_dropped.inc
        prediction_log.register_metrics(metrics.registry)

    def check_model(request: Request) -> None:
        name = request.path_params["model_name"]
        wanted = request.path_params.get("model_version")
        if name != info.name:
            raise RequestError(
                f"model {name!r} is not served here; this server serves {info.name!r}", 404
            )
        if wanted is not None and wanted != info.version:
            raise RequestError(
                f"model {name!r} has no version {wanted!r}; this server serves {info.version!r}",
                404,
            )

    def predict(
        request: Request, parsed: ParsedRequest, api: str, raw: bytes
    ) -> tuple[np.ndarray, np.ndarray]:
        labels, probabilities = model.predict(parsed.feeds)
        scores = probabilities[:, 1]
        metrics.record_predictions(api, parsed.rows, scores, parsed.unknown)
        if prediction_log is not None:
            request_id = request.scope[REQUEST_ID_KEY]
            prediction_log.record(request_id, parsed.columns, labels, scores, parsed.ids, raw, api)
        return labels, probabilities

    # ---------------------------------------------------------------- handlers

    async def infer(request: Request) -> Response:
        check_model(request)
        raw = await read_body(request, settings)
        parsed = v2.parse_infer_request(parse_json(raw), specs, settings.max_rows, ident)
        labels, probabilities = predict(request, parsed, "v2", raw)
        return json_response(
            v2.infer_response(info.name, info.version, labels, probabilities, parsed, ident)
        )

    async def predict_records(request: Request) -> Response:
        raw = await read_body(request, settings)
        parsed = records.parse_records(parse_json(raw), specs, settings.max_rows, ident)
        labels, probabilities = predict(request, parsed, "predict", raw)
        return json_response(
            records.predict_response(info.name, info.version, labels, probabilities, parsed, ident)
        )

    model_metadata = {
        "name": info.name,
        "versions": [info.version],
        "platform": "onnxruntime_onnx",
        **v2.model_metadata_tensors(specs),
        "parameters": {
            "onnx_sha256": info.onnx_sha256,
            "git_revision": info.git_revision,
            "sha256_verified": info.verified,
            "contract": contract.name,
            "target": contract.target,
            "positive_label": contract.positive_label,
            "id_input": None if ident is None else ident.name,
            "metrics": info.metrics,
        },
    }

    async def metadata_endpoint(request: Request) -> Response:
        check_model(request)
        return json_response(model_metadata)

    async def model_ready(request: Request) -> Response:
        check_model(request)
        return json_response({"name": info.name, "ready": state.ready}, 200 if state.ready else 503)

    async def server_metadata(_: Request) -> Response:
        return json_response({"name": "gitops-ml-serving", "version": version, "extensions": []})

    async def live(_: Request) -> Response:
        return json_response({"live": True})

    async def ready(_: Request) -> Response:
        return json_response({"ready": state.ready}, 200 if state.ready else 503)

    # ---------------------------------------------------------------- the one route table

    infer_operation = Operation(
        summary="Inference (Open Inference Protocol)",
        tags=("v2",),
        body=openapi.request_body(
            openapi.infer_request_schema(specs, ident),
            "One [N, 1] tensor per contract feature (and optionally one for the id column, "
            "echoed back as an output); `null` is a missing value. `probabilities` holds "
            f"[P(0), P(1)] per row, 1 being the positive class ({positive}).",
            examples[INFER_FILE],
        ),
        ok=openapi.infer_response_schema(),
        ok_description="label and probabilities",
        errors=(400, 404, 408, 413),
    )
    model_prefixes = ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}")
    endpoints = [  # the hot path first: routing tries routes in order
        *(Endpoint(p + "/infer", "POST", infer, infer_operation) for p in model_prefixes),
        Endpoint(
            "/predict",
            "POST",
            predict_records,
            Operation(
                summary="Label and probability of the positive class for each record",
                tags=("predict",),
                body=openapi.request_body(
                    openapi.records_schema(specs, settings.max_rows, ident),
                    "A JSON array of records with every contract feature (and optionally the "
                    "id column, echoed back); null is a missing value.",
                    examples[PREDICT_FILE],
                ),
                ok=openapi.predict_response_schema(positive, ident),
                ok_description="one prediction per record",
                errors=(400, 408, 413, 422),
            ),
        ),
        Endpoint("/v2", "GET", server_metadata, Operation("Server metadata", ("v2",))),
        Endpoint(
            "/v2/health/live", "GET", live, Operation("Liveness: the process answers", ("v2",))
        ),
        Endpoint(
            "/v2/health/ready",
            "GET",
            ready,
            Operation(
                "Readiness: model loaded and its sha256 matches its metadata",
                ("v2",),
                errors=(503,),
            ),
        ),
        *(
            Endpoint(
                p,
                "GET",
                metadata_endpoint,
                Operation(
                    "Model metadata (inputs, outputs, version, sha256, git revision, metrics)",
                    ("v2",),
                    errors=(404,),
                ),
            )
            for p in model_prefixes
        ),
        *(
            Endpoint(
                p + "/ready",
                "GET",
                model_ready,
                Operation("Model readiness", ("v2",), errors=(404, 503)),
            )
            for p in model_prefixes
        ),
    ]
    document = openapi.document(
        f"{info.name} inference server",
        version,
        "Open Inference Protocol (KServe V2 REST) and plain-JSON `/predict` for the "
        f"`{info.name}` model (version {info.version}). Request schemas are generated from "
        f"the data contract `{contract.name}`.",
        [(e.path, e.method, e.operation) for e in endpoints],
    )
    operations = operations_endpoints(metrics, document)
    if not operations_apart:
        endpoints += operations

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if prediction_log is not None:
            prediction_log.start()
        state.ready = info.sha256_matches
        yield
        state.ready = False
        if prediction_log is not None:
            prediction_log.close()

    headers = [
        (b"x-model-name", _header_value(info.name)),
        (b"x-model-version", _header_value(info.version)),
        (b"x-model-sha256", _header_value(info.onnx_sha256)),
        (b"x-git-revision", _header_value(info.git_revision)),
    ]
    app = _application(
        endpoints,
        lifespan=lifespan,
        middleware=[Middleware(Instrumentation, metrics=metrics, headers=headers)],
    )
    app.state.server = state
    app.state.metrics = metrics
    app.state.operations = operations
    return app


def operations_endpoints(metrics: ServingMetrics, document: dict[str, Any]) -> list[Endpoint]:
    """`/metrics`, `/openapi.json` and `/docs`: on the public port, or on their own."""
    title = f"{document['info']['title']} - docs"

    async def prometheus(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi_json(_: Request) -> Response:
        return json_response(document)

    async def docs(_: Request) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=title)

    undocumented = Operation("", documented=False)
    return [
        Endpoint("/metrics", "GET", prometheus, undocumented),
        Endpoint("/openapi.json", "GET", openapi_json, undocumented),
        Endpoint("/docs", "GET", docs, undocumented),
    ]


def operations_app(app: Starlette) -> Starlette:
    """The operations endpoints of `app` as an app of their own (SERVING_METRICS_PORT):
    scraped inside the cluster, never exposed by the Service."""
    return _application(app.state.operations)
