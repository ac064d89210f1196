"""The app: Open Inference Protocol (KServe V2 REST), `/predict`, health, metrics and docs in
one FastAPI route table (docs/serving.md, "The app"). onnxruntime runs inline on the event loop:
for a model that answers in tens of microseconds a thread-pool hop costs more than the inference.
"""

# No `from __future__ import annotations`: FastAPI reads the POST bodies' types, built from the
# contract at runtime, from the handlers' evaluated annotations.

import asyncio
import functools
import inspect
import logging
import random
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from fastapi import Body, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from prometheus_client.exposition import choose_encoder
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gitops_ml.onnx_model import ModelLoadError
from gitops_ml.tasks import task_spec
from gitops_ml.v2_request import INFER_FILE, PREDICT_FILE, example_payloads
from serving import records, schemas, v2
from serving.metrics import ServingMetrics
from serving.model import Model
from serving.settings import Settings
from serving.v2 import BINARY_MESSAGE
from serving.validation import RequestError, dump_json, request_table

if TYPE_CHECKING:  # capture is imported only when configured (serving/__main__.py)
    from serving.capture.writer import PredictionLog

REQUEST_ID_KEY = "serving.request_id"
OPERATIONS = frozenset({"/metrics", "/docs", "/openapi.json"})  # FastAPI's docs and ours
# Metric labels come from fixed sets: a client must not be able to mint new time series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER = "other"
INTERNAL_ERROR = "internal server error (logged on the server)"
BUSY = dump_json({"error": "the server is at its limit of requests in flight; retry shortly"})
logger = logging.getLogger("serving")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(dump_json(payload), status_code=status, media_type="application/json")


def error_response(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def _header_value(text: str) -> bytes:
    # A model name or GIT_REVISION must neither break nor inject a header.
    return re.sub(r"[^\x20-\x7e]", "?", text).encode("latin-1")


@dataclass
class Instrumentation:
    """Pure ASGI middleware (BaseHTTPMiddleware would add a task and a stream per request):
    request id, model headers on every response, the cap on requests in flight (a JSON 503;
    idle connections never count: docs/serving.md), status/latency metrics. Every error a
    client sees is JSON, an unhandled one too (the traceback goes to the log)."""

    app: ASGIApp
    metrics: ServingMetrics
    headers: list[tuple[bytes, bytes]]
    limit: int
    in_flight: int = 0

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
        # 128 random bits like uuid4's, without its os.urandom call per request: request ids
        # need to be unique, not secret (`random` is seeded by the OS, reseeded after a fork).
        request_id = request_id or f"{random.getrandbits(128):032x}"
        scope[REQUEST_ID_KEY] = request_id
        extra = [*self.headers, (b"x-request-id", request_id.encode())]
        method = scope["method"]
        status = 0  # until the response starts

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        self.in_flight += 1
        try:
            if self.in_flight > self.limit:
                busy = Response(
                    BUSY, 503, {"connection": "close", "retry-after": "1"}, "application/json"
                )
                await busy(scope, receive, send_with_headers)
                return
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error on %s %s", method, scope["path"])
            if status:
                raise
            await error_response(INTERNAL_ERROR, 500)(scope, receive, send_with_headers)
        finally:
            self.in_flight -= 1
            route = scope.get("route")
            self.metrics.record_request(
                getattr(route, "path", OTHER),
                method if method in METHODS else OTHER,
                status or 500,
                time.perf_counter() - started,
            )


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The body within `seconds` (else 408), refusing the binary tensor extension and anything
    over `limit` bytes (413)."""
    headers = request.headers
    if "inference-header-content-length" in headers:
        raise RequestError(BINARY_MESSAGE)
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise RequestError(f"the request body has {length} bytes; the limit is {limit}", 413)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(f"the request body is over the limit of {limit} bytes", 413)
                chunks.append(chunk)
    except TimeoutError:
        message = f"the request body did not arrive within {seconds:g} s"
        raise RequestError(message, 408) from None
    except ClientDisconnect:
        raise RequestError("the client disconnected before sending the whole body") from None
    return b"".join(chunks)


class ServingRoute(APIRoute):
    """A route whose endpoint is called as `endpoint(request)`, without FastAPI's dependency
    solving (FastAPI's documented hook, `get_route_handler`): per request that saves about as
    much time as validating a 1-row request takes. The signature and `dependencies` only
    document the route; a dependency here is a check called with the path parameters."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        if not self.dependencies:
            return endpoint
        check = self.dependencies[0].dependency
        assert check is not None

        async def handler(request: Request) -> Response:
            check(**request.path_params)
            response: Response = await endpoint(request)
            return response

        return handler


async def _error(_: Request, exc: RequestError | HTTPException) -> Response:
    if isinstance(exc, RequestError):
        return error_response(exc.message, exc.status)
    return error_response(str(exc.detail), exc.status_code)


def create_app(
    model: Model, settings: Settings | None = None, prediction_log: "PredictionLog | None" = None
) -> FastAPI:
    """An app serving `model`, ready once its startup finished."""
    settings = settings or Settings()
    info = model.info
    contract = model.contract
    table = request_table(contract)
    ident = table.ident
    outputs = model.outputs
    metrics = ServingMetrics(info, contract.categorical_features, outputs)
    if prediction_log is not None:
        prediction_log.on_written = metrics.log_written.inc
        prediction_log.on_dropped = metrics.log_dropped.inc
        metrics.registry.register(prediction_log.segments)  # the shipper's counters

    def served_model(model_name: str) -> None:
        if model_name != info.name:
            raise RequestError(
                f"model {model_name!r} is not served here; this server serves {info.name!r}", 404
            )

    def served_version(model_name: str, model_version: str) -> None:
        served_model(model_name)
        if model_version != info.version:
            raise RequestError(
                f"model {model_name!r} has no version {model_version!r}; "
                f"this server serves {info.version!r}",
                404,
            )

    infer_request, predict_request = schemas.request_models(table.specs, ident, settings.max_rows)
    examples = example_payloads(contract)
    # The bodies as the document shows them: never validated by FastAPI (see ServingRoute).
    infer_body: Any = Body(openapi_examples={"example": {"value": examples[INFER_FILE]}})
    predict_body: Any = Body(openapi_examples={"example": {"value": examples[PREDICT_FILE]}})

    async def score(request: Request, api: str, answer: Callable[..., Any]) -> Response:
        raw = await read_body(request, settings.max_body_bytes, settings.body_timeout)
        parsed = records.parse_request(api, raw, table, settings.max_rows)
        prediction = model.predict(parsed.feeds)
        metrics.record_predictions(api, parsed.rows, outputs.score(prediction), parsed.unknown)
        if prediction_log is not None:
            request_id = request.scope.get(REQUEST_ID_KEY, "")
            prediction_log.record(request_id, api, raw, outputs.logged(prediction))
        return json_response(answer(info.name, info.version, prediction, outputs, parsed, ident))

    async def infer(request: Request, body: infer_request = infer_body) -> Response:  # type: ignore[valid-type]
        return await score(request, "v2", v2.infer_response)

    async def predict_records(request: Request, body: predict_request = predict_body) -> Response:  # type: ignore[valid-type]
        return await score(request, "predict", records.predict_response)

    model_metadata = {
        "name": info.name,
        "versions": [info.version],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": spec.name, "datatype": spec.datatypes[0], "shape": [-1, 1]}
            for spec in table.specs
        ],
        "outputs": outputs.v2_metadata(contract.classes),
        "parameters": {  # the task's own (positive label, classes) after the shared ones
            "onnx_sha256": info.onnx_sha256,
            "git_revision": info.git_revision,
            "sha256_verified": info.verified,
            "contract": contract.name,
            "target": contract.target,
            "task": contract.task,
            **outputs.parameters(contract),
            "id_input": None if ident is None else ident.name,
            "metrics": info.metrics,
        },
    }
    version = metadata.version("gitops-ml")
    server = {"name": "gitops-ml-serving", "version": version, "extensions": []}

    def readiness(**payload: Any) -> Response:
        ready = bool(app.state.ready)
        return json_response({**payload, "ready": ready}, 200 if ready else 503)

    async def model_metadata_endpoint(_: Request) -> Response:
        return json_response(model_metadata)

    async def model_ready(_: Request) -> Response:
        return readiness(name=info.name)

    async def server_metadata(_: Request) -> Response:
        return json_response(server)

    async def live(_: Request) -> Response:
        return json_response({"live": True})

    async def ready(_: Request) -> Response:
        return readiness()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if prediction_log is not None:
            prediction_log.start()
        app.state.ready = True  # load_model refused a model whose sha256 does not match
        yield
        app.state.ready = False
        if prediction_log is not None:
            prediction_log.close()

    headers = [
        (b"x-model-name", _header_value(info.name)),
        (b"x-model-version", _header_value(info.version)),
        (b"x-model-sha256", _header_value(info.onnx_sha256)),
        (b"x-git-revision", _header_value(info.git_revision)),
    ]
    app = FastAPI(
        title=f"{info.name} inference server",
        version=version,
        description="Open Inference Protocol (KServe V2 REST) and plain-JSON `/predict` for the "
        f"`{info.name}` model (version {info.version}). Request schemas are generated from "
        f"the data contract `{contract.name}`.",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
        exception_handlers={RequestError: _error, HTTPException: _error},
        # The metrics are Prometheus's; FastAPI's OpenTelemetry instruments would look up the
        # (unconfigured) providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        middleware=[
            Middleware(
                Instrumentation, metrics=metrics, headers=headers, limit=settings.limit_concurrency
            )
        ],
    )
    app.state.ready = False
    # Routes straight on the app's router (an included router is matched twice per request).
    router = app.router
    router.route_class = ServingRoute

    def answered(api: str, file: str, description: str, answer: Any) -> dict[str, Any]:
        """A POST route's 200 response, its example the model's answer to the route's example
        request: run before the server starts, so the first request is not the slow one and a
        model that cannot answer it does not start."""
        try:
            parsed = records.parse_request(api, dump_json(examples[file]), table, sys.maxsize)
            prediction = model.predict(parsed.feeds)
        except Exception as exc:
            raise ModelLoadError(
                f"{info.source}: the model fails on the example request {file}: {exc}"
            ) from None
        example = answer(info.name, info.version, prediction, outputs, parsed, ident)
        return {"description": description, "content": {"application/json": {"example": example}}}

    task = task_spec(contract.task)
    answers = ", ".join(f"`{name}`" for name in task.v2_outputs)
    infer_responses = {
        200: {
            "model": schemas.InferResponse,
            **answered("v2", INFER_FILE, f"the outputs {answers}", v2.infer_response),
        },
        **schemas.responses(400, 404, 408, 413),
    }
    v2_route = functools.partial(router.add_api_route, tags=["v2"])
    for path, check in (
        ("/v2/models/{model_name}", served_model),
        ("/v2/models/{model_name}/versions/{model_version}", served_version),
    ):
        model_route = functools.partial(v2_route, dependencies=[Depends(check)])
        model_route(
            path + "/infer",
            infer,
            methods=["POST"],
            summary="Inference (Open Inference Protocol)",
            description="One [N, 1] tensor per contract feature (and optionally one for the id "
            f"column, echoed back as an output); `null` is a missing value. The outputs "
            f"{answers} give {task.predicts} (task {contract.task}).",
            responses=infer_responses,
        )
        model_route(
            path,
            model_metadata_endpoint,
            summary="Model metadata (inputs, outputs, version, sha256, git revision, metrics)",
            responses=schemas.responses(404),
        )
        model_route(
            path + "/ready",
            model_ready,
            summary="Model readiness",
            responses=schemas.responses(404, 503),
        )
    router.add_api_route(
        "/predict",
        predict_records,
        methods=["POST"],
        summary=f"For each record, {task.predicts}",
        description=inspect.getdoc(predict_request) or "",
        tags=["predict"],
        responses={
            200: {
                "model": schemas.predict_response_model(outputs.record_fields(contract), ident),
                **answered(
                    "predict", PREDICT_FILE, "one answer per record", records.predict_response
                ),
            },
            **schemas.responses(400, 408, 413, 422),
        },
    )
    v2_route("/v2", server_metadata, summary="Server metadata")
    v2_route("/v2/health/live", live, summary="Liveness: the process answers")
    v2_route(
        "/v2/health/ready",
        ready,
        summary="Readiness: model loaded and its sha256 matches its metadata",
        responses=schemas.responses(503),
    )

    async def prometheus(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(metrics.registry), media_type=content_type)

    app.add_route("/metrics", prometheus, include_in_schema=False)
    return app


def with_operations_port(app: FastAPI, port: int) -> ASGIApp:
    """`app`, whose operations endpoints (`OPERATIONS`) answer only on `port`
    (SERVING_METRICS_PORT): scraped inside the cluster, never exposed by the Service. Every
    other path answers only on the public port; the lifespan goes to `app`."""

    async def by_port(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            local = scope.get("server") or (None, None)
            if (local[1] == port) != (scope["path"] in OPERATIONS):
                await error_response("Not Found", 404)(scope, receive, send)
                return
        await app(scope, receive, send)

    return by_port
