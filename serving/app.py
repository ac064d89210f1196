"""The app: Open Inference Protocol (KServe V2 REST), `/predict`, health, metrics and docs.

One route table (`routes`) is both the Starlette routing and the OpenAPI document. Handlers
are `async`, calling onnxruntime inline (one intra-op thread): for a model that answers in tens
of microseconds, a thread-pool hop or a framework's parameter solving costs more than the
inference. The inference POSTs to this server's own paths are answered straight from ASGI
(`Direct`), every other request through Starlette. Bodies are read and parsed by hand, so a
JSON body is accepted whatever its Content-Type.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

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
from serving.settings import Settings
from serving.v2 import BINARY_MESSAGE
from serving.validation import (
    FeatureTable,
    ParsedRequest,
    RequestError,
    dump_json,
    id_spec,
)

if TYPE_CHECKING:  # capture is imported only when configured (serving/__main__.py)
    from serving.capture.writer import PredictionLog

REQUEST_ID_KEY = "serving.request_id"
# Metric labels come from fixed sets: a client must not be able to mint new time series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER = "other"
INTERNAL_ERROR = "internal server error (logged on the server)"
INTERNAL_ERROR_BODY = dump_json({"error": INTERNAL_ERROR})
logger = logging.getLogger("serving")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
Handler = Callable[[Request], Awaitable[Response]]


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


DirectHandler = Callable[[Scope, Receive], Awaitable[bytes]]


@dataclass(frozen=True)
class Direct:
    """A hot POST route answered without Starlette's routing, request and response objects.

    `handler` reads the body itself and returns the JSON answer; a RequestError becomes the
    same `{"error": ...}` answer as on the routed path.
    """

    route: str  # the route's template, its metrics label
    handler: DirectHandler


class Instrumentation:
    """Pure ASGI middleware: request id, model headers on every response, status/latency metrics.

    Written against ASGI rather than as BaseHTTPMiddleware, which would add a task and a
    stream per request. POSTs to the exact paths in `direct` (the inference routes with this
    server's model name) skip Starlette's exception middleware, router, Request and Response:
    those layers cost about as much as the validation of a 1-row request. Every other request
    (a wrong model name included) goes through the routed app and gets the same answers.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServingMetrics,
        headers: list[tuple[bytes, bytes]],
        direct: Mapping[str, Direct] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.headers = headers
        self.direct = direct or {}

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
        # A new id: 128 random bits like uuid4's, from the `random` module's generator (seeded
        # by the OS, reseeded in a forked child) rather than an os.urandom call per request:
        # request ids need to be unique, not secret.
        request_id = request_id or f"{random.getrandbits(128):032x}"
        scope[REQUEST_ID_KEY] = request_id
        extra = [*self.headers, (b"x-request-id", request_id.encode())]
        method = scope["method"]
        direct = self.direct.get(scope["path"]) if method == "POST" else None
        if direct is not None and not scope.get("root_path"):
            status = 500
            try:
                status = await _answer_direct(direct, scope, receive, send, extra)
            finally:
                elapsed = time.perf_counter() - started
                self.metrics.record_request(direct.route, method, status, elapsed)
            return
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
            logger.exception("unhandled error on %s %s", method, scope["path"])
            if started_response:
                raise
            response = error_response(INTERNAL_ERROR, 500)
            await response(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            self.metrics.record_request(
                getattr(route, "path", OTHER),
                method if method in METHODS else OTHER,
                status,
                time.perf_counter() - started,
            )


async def _answer_direct(
    direct: Direct, scope: Scope, receive: Receive, send: Send, extra: list[tuple[bytes, bytes]]
) -> int:
    """Run a direct route's handler and send its JSON answer; returns the status sent."""
    try:
        status, body = 200, await direct.handler(scope, receive)
    except RequestError as exc:
        status, body = exc.status, dump_json({"error": exc.message})
    except Exception:
        logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
        status, body = 500, INTERNAL_ERROR_BODY
    headers = [
        (b"content-length", b"%d" % len(body)),
        (b"content-type", b"application/json"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


class LabelledRoute(Route):
    """A plain Starlette route that, like FastAPI's, tells the metrics which route it was."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


class BodyDeadline:
    """The body timeout (408) with one shared timer instead of one per request.

    `asyncio.timeout` schedules and cancels a loop timer per request, which cost about as
    much as the rest of reading a 1-row body. Here a request registers its deadline while it
    reads; a sweep every `seconds / 4` (at most 1 s) cancels the reads past it, so a trickled
    body is answered within 1.25 × the timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick = min(seconds / 4, 1.0)
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.AbstractEventLoop | None = None

    async def read(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        """The body, refusing the binary tensor extension and anything over `limit` bytes."""
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing to cancel, so no deadline
            return await _read_body(scope, receive, limit)
        loop = asyncio.get_running_loop()
        self._due[task] = loop.time() + self.seconds
        if self._sweeping is not loop:
            self._sweeping = loop
            loop.call_later(self.tick, self._sweep, loop)
        try:
            return await _read_body(scope, receive, limit)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            task.uncancel()
            message = f"the request body did not arrive within {self.seconds:g} s"
            raise RequestError(message, 408) from None
        finally:
            self._due.pop(task, None)
            self._expired.discard(task)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, due in list(self._due.items()):
            if due <= now and task not in self._expired and task.get_loop() is loop:
                self._expired.add(task)
                task.cancel()
        if self._due:
            loop.call_later(self.tick, self._sweep, loop)
        else:
            self._sweeping = None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    length = b""
    for key, value in scope["headers"]:
        if key == b"content-length":
            length = value
        elif key == b"inference-header-content-length":
            raise RequestError(BINARY_MESSAGE)
    if length.isdigit() and int(length) > limit:
        raise RequestError(
            f"the request body has {length.decode()} bytes; the limit is {limit}", 413
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError("the client disconnected before sending the whole body")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the request body is over the limit of {limit} bytes", 413)
        if not message.get("more_body", False):
            if not chunks:
                return chunk  # the usual small request: the whole body in one message
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


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
    table = FeatureTable(specs, ident)
    deadline = BodyDeadline(settings.body_timeout)
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
        scope: Scope, parsed: ParsedRequest, api: str, raw: bytes
    ) -> tuple[np.ndarray, np.ndarray]:
        labels, probabilities = model.predict(parsed.feeds)
        scores = probabilities[:, 1]
        metrics.record_predictions(api, parsed.rows, scores, parsed.unknown)
        if prediction_log is not None:
            prediction_log.record(
                scope[REQUEST_ID_KEY], parsed.columns, labels, scores, parsed.ids, raw, api
            )
        return labels, probabilities

    # ---------------------------------------------------------------- handlers
    # The two POST APIs are direct handlers (see `Direct`); `routed` makes Starlette endpoints
    # of them for the paths the direct table does not hold (a wrong model name gets its 404).

    async def infer(scope: Scope, receive: Receive) -> bytes:
        raw = await deadline.read(scope, receive, settings.max_body_bytes)
        parsed = records.parse_request("v2", raw, table, settings.max_rows)
        labels, probabilities = predict(scope, parsed, "v2", raw)
        return dump_json(
            v2.infer_response(info.name, info.version, labels, probabilities, parsed, ident)
        )

    async def predict_records(scope: Scope, receive: Receive) -> bytes:
        raw = await deadline.read(scope, receive, settings.max_body_bytes)
        parsed = records.parse_request("predict", raw, table, settings.max_rows)
        labels, probabilities = predict(scope, parsed, "predict", raw)
        return dump_json(
            records.predict_response(info.name, info.version, labels, probabilities, parsed, ident)
        )

    def routed(handler: DirectHandler, check: Callable[[Request], None] | None = None) -> Handler:
        async def endpoint(request: Request) -> Response:
            if check is not None:
                check(request)
            body = await handler(request.scope, request.receive)
            return Response(body, media_type="application/json")

        return endpoint

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
        *(
            Endpoint(p + "/infer", "POST", routed(infer, check_model), infer_operation)
            for p in model_prefixes
        ),
        Endpoint(
            "/predict",
            "POST",
            routed(predict_records),
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

    direct = {"/predict": Direct("/predict", predict_records)}
    if "/" not in info.name + info.version:  # else Starlette's `{model_name}` would not match
        for prefix in model_prefixes:
            template = prefix + "/infer"
            path = template.format(model_name=info.name, model_version=info.version)
            direct[path] = Direct(template, infer)
    headers = [
        (b"x-model-name", _header_value(info.name)),
        (b"x-model-version", _header_value(info.version)),
        (b"x-model-sha256", _header_value(info.onnx_sha256)),
        (b"x-git-revision", _header_value(info.git_revision)),
    ]
    app = _application(
        endpoints,
        lifespan=lifespan,
        middleware=[Middleware(Instrumentation, metrics=metrics, headers=headers, direct=direct)],
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
