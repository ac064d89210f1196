"""The app in-process (ASGI, no sockets): bounded metric labels and JSON for every error,
including the 500 that no client input should ever reach."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from gitops_ml.onnx_model import ModelLoadError
from gitops_ml.v2_request import records, v2_request
from serving.app import create_app
from serving.model import Model, load_model
from serving.settings import Settings

INFER = "/v2/models/churn-model/infer"


@pytest.fixture(scope="module")
def model(exported_model: Any) -> Model:
    return load_model(
        exported_model.onnx_path, exported_model.contract_path, model_name="churn-model"
    )


def _send(app: Any, requests: Sequence[tuple[str, str, Any]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return [await client.request(m, url, json=body) for m, url, body in requests]

    return asyncio.run(run())


def _metrics(app: Any) -> str:
    return _send(app, [("GET", "/metrics", None)])[0].text


def test_made_up_methods_and_paths_share_one_label_each(model: Model) -> None:
    app = create_app(model)
    requests = [(f"M{i:04d}", f"/made-up/{i}", None) for i in range(200)]

    answers = _send(app, requests)
    text = _metrics(app)

    assert {a.status_code for a in answers} <= {404, 405}
    samples = [line for line in text.splitlines() if line.startswith("serving_requests_total{")]
    assert samples == ['serving_requests_total{method="other",route="other",status="404"} 200.0']


def test_v2_infer_has_its_own_route_label(model: Model, exported_model: Any) -> None:
    app = create_app(model)
    frame = exported_model.test_frame.iloc[:2]

    answers = _send(
        app,
        [
            ("POST", INFER, v2_request(frame, model.contract)),
            (
                "POST",
                "/v2/models/churn-model/versions/dev/infer",
                v2_request(frame, model.contract),
            ),
            ("POST", "/predict", records(frame, model.contract)),
        ],
    )
    text = _metrics(app)

    assert [a.status_code for a in answers] == [200, 200, 200]
    for route in (
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
        "/predict",
    ):
        assert f'method="POST",route="{route}",status="200"}} 1.0' in text, route
    assert 'route="unmatched"' not in text


def test_metrics_answer_in_the_format_the_scraper_asks_for(model: Model) -> None:
    app = create_app(model)

    async def run(accept: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/metrics", headers={"accept": accept})

    plain = asyncio.run(run("text/plain"))
    open_metrics = asyncio.run(run("application/openmetrics-text; version=1.0.0"))

    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n") and "serving_model_info" in open_metrics.text


def test_an_unexpected_failure_is_a_json_500(model: Model, exported_model: Any) -> None:
    class Broken(Model):
        failing = False  # after startup, which runs the model on its examples

        def predict(self, feeds: Any) -> Any:
            if self.failing:
                raise RuntimeError("the session fell over")
            return super().predict(feeds)

    broken = Broken(model.session, model.contract, model.info)
    app = create_app(broken)
    broken.failing = True

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            body = records(exported_model.test_frame.iloc[:1], model.contract)
            return await client.post("/predict", json=body)

    response = asyncio.run(run())

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "internal server error (logged on the server)"}
    assert "x-request-id" in response.headers


def _post_raw(app: Any, path: str, messages: list[dict[str, Any]]) -> list[Any]:
    """POST `path` straight through ASGI, receiving `messages` and then nothing more (a body
    that never comes); the messages the app sent."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_client_gone_before_its_body_arrived_is_a_client_error_not_a_500(
    model: Model, caplog: pytest.LogCaptureFixture
) -> None:
    """The inference routes read their body themselves: a disconnect mid-body ends the
    request as a 400 in the metrics, with no traceback in the log."""
    app = create_app(model)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"inputs": [', "more_body": True},
        {"type": "http.disconnect"},
    ]

    sent = _post_raw(app, INFER, messages)
    text = _metrics(app)

    assert sent[0]["status"] == 400
    assert 'route="/v2/models/{model_name}/infer",status="400"} 1.0' in text
    assert "unhandled error" not in caplog.text


def test_a_body_that_stops_arriving_is_answered_408_once_its_deadline_passed(
    model: Model,
) -> None:
    """The body deadline (SERVING_BODY_TIMEOUT) ends a request whose body stops arriving."""
    app = create_app(model, Settings(body_timeout=0.2))

    first: dict[str, Any] = {"type": "http.request", "body": b"[{", "more_body": True}
    sent = _post_raw(app, "/predict", [first])

    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"]) == {"error": "the request body did not arrive within 0.2 s"}


def _post_bytes(app: Any, path: str, body: bytes) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post(path, content=body)

    return asyncio.run(run())


def test_a_key_given_twice_is_a_400_not_last_wins(model: Model, exported_model: Any) -> None:
    app = create_app(model)
    frame = exported_model.test_frame.iloc[:1]
    tensors = json.dumps(v2_request(frame, model.contract)["inputs"])
    record = json.dumps(records(frame, model.contract)[0])

    v2_twice = _post_bytes(app, INFER, f'{{"inputs": [], "inputs": {tensors}}}'.encode())
    record_twice = _post_bytes(app, "/predict", f'[{record[:-1]}, "age": 30}}]'.encode())

    assert v2_twice.status_code == 400
    assert v2_twice.json() == {"error": "the request body has the key 'inputs' twice in one object"}
    assert record_twice.status_code == 400 and "'age' twice" in record_twice.json()["error"]


@pytest.mark.parametrize(
    ("encode", "message"),
    [
        (lambda text: b"\xef\xbb\xbf" + text.encode(), "a UTF-8 byte-order mark"),
        (lambda text: text.encode("utf-16"), "a UTF-16 byte-order mark"),
        (lambda text: text.encode("utf-16-le"), "not valid JSON"),
    ],
)
def test_a_body_that_is_not_plain_utf8_json_is_a_400(
    model: Model, exported_model: Any, encode: Any, message: str
) -> None:
    """One rule for the server and the capture sidecar (both read with parse_json): UTF-8
    without a byte-order mark, so every body the server scores is one the sidecar can read."""
    app = create_app(model)
    text = json.dumps(records(exported_model.test_frame.iloc[:1], model.contract))

    answer = _post_bytes(app, "/predict", encode(text))

    assert answer.status_code == 400 and message in answer.json()["error"]


def test_the_app_runs_the_model_on_its_example_requests_and_refuses_one_that_fails(
    exported_model: Any,
) -> None:
    """The OpenAPI answers are the model's own, computed before the server starts: that warms
    the model up, and a model that cannot answer the contract's example does not serve."""
    broken = load_model(exported_model.onnx_path, exported_model.contract_path)
    runs: list[list[str]] = []

    class Failing:
        def run(self, names: list[str], feeds: dict[str, Any]) -> list[Any]:
            runs.append(sorted(feeds))
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")

    broken.session = Failing()  # type: ignore[assignment]

    with pytest.raises(ModelLoadError, match=r"fails on the example request infer_v2\.json: \["):
        create_app(broken)
    assert runs == [sorted(broken.contract.onnx_inputs.values())]
