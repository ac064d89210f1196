"""The inference server, over real HTTP on loopback: every endpoint, predictions equal to
onnxruntime called directly, and every kind of bad request answered with a 4xx naming the
field and the rule."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from serving_support import (
    RunningServer,
    captured_lines,
    onnx_direct,
    serving_exported,
    sidecar,
    v2_body,
)

from gitops_ml.v2_request import records

pytestmark = pytest.mark.slow

INFER = "/v2/models/churn-model/infer"


@pytest.fixture(scope="module")
def server(
    exported_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The bare exported model, its export metrics as metadata, and every row captured to a
    local store by its sidecar (a segment closes within a fraction of a second)."""
    tmp = tmp_path_factory.mktemp("serving")
    capture = {
        "SERVING_CAPTURE_URL": str(tmp / "store"),
        "SERVING_CAPTURE_DIR": str(tmp / "spool"),
        "SERVING_CAPTURE_MAX_SECONDS": "0.2",
        "SERVING_CONTRACT": str(exported_model.contract_path),
    }
    with (
        sidecar(capture, tmp),
        serving_exported(
            exported_model,
            tmp,
            "--metadata",
            str(exported_model.export_metrics_path),
            "--log-sample-rate",
            "1.0",
            "--max-rows",
            "2000",
            env={**capture, "GIT_REVISION": "abc123"},
        ) as running,
    ):
        running.store = tmp / "store"  # type: ignore[attr-defined]
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def rows(exported_model: Any) -> list[dict[str, Any]]:
    return records(exported_model.test_frame, exported_model.contract)


def test_health_and_server_metadata_endpoints_answer(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    server = client.get("/v2").json()
    assert server["name"] == "gitops-ml-serving" and server["extensions"] == []
    assert client.get("/v2/models/churn-model/ready").json() == {
        "name": "churn-model",
        "ready": True,
    }
    assert client.get("/v2/models/churn-model/versions/dev/ready").status_code == 200


def test_model_metadata_lists_contract_inputs_sha256_and_revision(
    client: httpx.Client, exported_model: Any
) -> None:
    response = client.get("/v2/models/churn-model")
    meta = response.json()

    assert response.status_code == 200
    assert meta["name"] == "churn-model" and meta["versions"] == ["dev"]
    assert [i["name"] for i in meta["inputs"]] == exported_model.contract.feature_names
    datatypes = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert datatypes["tenure_months"] == "INT64"
    assert datatypes["monthly_charges"] == "FP32"
    assert datatypes["contract"] == "BYTES"
    assert datatypes["paperless_billing"] == "BOOL"
    assert all(i["shape"] == [-1, 1] for i in meta["inputs"])
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    recorded = json.loads(exported_model.export_metrics_path.read_text())["onnx"]["sha256"]
    assert meta["parameters"]["onnx_sha256"] == recorded
    assert meta["parameters"]["sha256_verified"] is True
    assert meta["parameters"]["git_revision"] == "abc123"
    assert meta["parameters"]["positive_label"] == exported_model.contract.positive_label
    assert meta["parameters"]["id_input"] == "customer_id"
    assert client.get("/v2/models/churn-model/versions/dev").json() == meta


def test_every_response_carries_model_headers_and_echoes_the_request_id(
    client: httpx.Client, exported_model: Any
) -> None:
    response = client.get("/v2/health/live", headers={"X-Request-ID": "req-42"})
    recorded = json.loads(exported_model.export_metrics_path.read_text())["onnx"]["sha256"]

    assert response.headers["x-model-name"] == "churn-model"
    assert response.headers["x-model-version"] == "dev"
    assert response.headers["x-model-sha256"] == recorded
    assert response.headers["x-git-revision"] == "abc123"
    assert response.headers["x-request-id"] == "req-42"
    assert len(client.get("/nowhere").headers["x-request-id"]) == 32


def test_v2_infer_equals_onnxruntime_called_directly_on_every_test_row(
    client: httpx.Client, exported_model: Any, rows: list[dict[str, Any]]
) -> None:
    labels, probabilities = onnx_direct(
        exported_model.onnx_path, exported_model.test_frame, exported_model.contract
    )
    body = v2_body(rows, exported_model.contract)
    body["id"] = "batch-1"

    response = client.post(INFER, json=body)

    assert response.status_code == 200, response.text
    out = response.json()
    assert out["model_name"] == "churn-model" and out["id"] == "batch-1"
    tensors = {t["name"]: t for t in out["outputs"]}
    assert tensors["label"]["shape"] == [len(rows)] and tensors["label"]["datatype"] == "INT64"
    assert tensors["probabilities"]["shape"] == [len(rows), 2]
    assert tensors["label"]["data"] == labels.tolist()
    served = np.array(tensors["probabilities"]["data"], dtype=np.float32).reshape(-1, 2)
    np.testing.assert_array_equal(served, probabilities)
    assert exported_model.test_frame["total_charges"].isna().any(), "rows with nulls are covered"


def test_v2_infer_answers_one_row_with_nested_data_versioned_path_and_requested_output(
    client: httpx.Client, exported_model: Any, rows: list[dict[str, Any]]
) -> None:
    _, probabilities = onnx_direct(
        exported_model.onnx_path, exported_model.test_frame.iloc[:1], exported_model.contract
    )
    body = v2_body(rows[:1], exported_model.contract)
    for tensor in body["inputs"]:
        tensor["data"] = [[value] for value in tensor["data"]]
    body["outputs"] = [{"name": "probabilities"}]

    response = client.post("/v2/models/churn-model/versions/dev/infer", json=body)

    assert response.status_code == 200, response.text
    (tensor,) = response.json()["outputs"]
    assert tensor["name"] == "probabilities"
    assert np.float32(tensor["data"][1]) == probabilities[0, 1]


def test_predict_records_equal_onnxruntime_called_directly(
    client: httpx.Client, exported_model: Any, rows: list[dict[str, Any]]
) -> None:
    labels, probabilities = onnx_direct(
        exported_model.onnx_path, exported_model.test_frame, exported_model.contract
    )

    response = client.post("/predict", json=rows)

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == labels.tolist()
    served = np.array([p["probability"] for p in predictions], dtype=np.float32)
    np.testing.assert_array_equal(served, probabilities[:, 1])
    assert [p["customer_id"] for p in predictions] == [r["customer_id"] for r in rows]


def test_json_body_is_accepted_whatever_the_content_type(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    for content_type in (
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
    ):
        response = client.post(
            "/predict", content=json.dumps(rows[:2]), headers={"content-type": content_type}
        )
        assert response.status_code == 200, (content_type, response.text)


def test_nan_literal_from_python_clients_counts_as_missing_in_a_nullable_feature(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    row = dict(rows[0], total_charges=float("nan"))
    response = client.post("/predict", content=json.dumps([row]))  # json.dumps writes NaN
    as_null = client.post("/predict", content=json.dumps([dict(row, total_charges=None)]))

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == as_null.json()["predictions"]


def test_v2_infer_rejects_invalid_json_and_binary_header_with_400(client: httpx.Client) -> None:
    invalid = client.post(INFER, content=b'{"inputs": [')
    binary = client.post(
        INFER, content=b"\x00\x01", headers={"Inference-Header-Content-Length": "2"}
    )

    assert invalid.status_code == 400 and "not valid JSON" in invalid.json()["error"]
    assert binary.status_code == 400 and "binary tensor extension" in binary.json()["error"]


def test_unknown_model_or_version_is_404(client: httpx.Client, rows: list[dict[str, Any]]) -> None:
    for method, path in (
        ("GET", "/v2/models/other-model"),
        ("GET", "/v2/models/other-model/ready"),
        ("GET", "/v2/models/churn-model/versions/9.9.9"),
        ("POST", "/v2/models/other-model/infer"),
        ("POST", "/v2/models/churn-model/versions/9.9.9/infer"),
    ):
        response = client.request(method, path, json={})
        assert response.status_code == 404, path
        assert (
            "not served here" in response.json()["error"]
            or "no version" in response.json()["error"]
        )


def test_predict_rejects_contract_violations_with_422_naming_record_field_and_rule(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    cases = [
        ([{k: v for k, v in rows[0].items() if k != "age"}], "record 0: missing feature(s) age"),
        ([rows[0], dict(rows[1], shoe_size=44)], "record 1: unknown field(s) 'shoe_size'"),
        ([dict(rows[0], age="old")], "field 'age': row 0 is \"old\""),
        ([rows[0], dict(rows[1], contract=None)], "field 'contract': row 1 missing"),
        ([dict(rows[0], satisfaction_score=7.5)], "above the contract maximum 5"),
        ([rows[0], "not a record"], 'record 1 is "not a record", not an object'),
    ]
    for body, expected in cases:
        response = client.post("/predict", json=body)
        assert response.status_code == 422, (expected, response.text)
        assert expected in response.json()["error"], response.json()
    not_array = client.post("/predict", json={"tenure_months": 3})
    assert not_array.status_code == 400 and "JSON array of records" in not_array.json()["error"]


def test_body_size_and_rows_per_request_are_limited_with_413(
    client: httpx.Client, exported_model: Any, rows: list[dict[str, Any]]
) -> None:
    too_many = (rows * 3)[:2001]
    too_big = b"[" + b" " * (9 * 1024 * 1024) + b"]"

    rows_response = client.post("/predict", json=too_many)
    v2_response = client.post(INFER, json=v2_body(too_many, exported_model.contract))
    size_response = client.post("/predict", content=too_big)

    assert rows_response.status_code == 413
    assert "2001 rows; the limit is 2000" in rows_response.json()["error"]
    assert v2_response.status_code == 413
    assert size_response.status_code == 413 and "limit" in size_response.json()["error"]
    assert client.get("/v2/health/live").status_code == 200


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head = line.split(" ")[0]
            if head == name or head.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_unknown_categories_are_scored_and_counted(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    before = _metric(
        client.get("/metrics").text, "serving_unknown_category_values_total", feature="plan"
    )
    body = [dict(rows[0], plan="ultimate"), dict(rows[1], plan="ultimate"), rows[2]]

    response = client.post("/predict", json=body)

    assert response.status_code == 200
    after = _metric(
        client.get("/metrics").text, "serving_unknown_category_values_total", feature="plan"
    )
    assert after - before == 2


def test_metrics_count_requests_by_status_latency_rows_scores_and_model(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    client.post("/predict", json=rows[:7])
    client.post("/predict", json=[{"nope": 1}])

    text = client.get("/metrics").text

    assert _metric(text, "serving_requests_total", route="/predict", status="200") >= 1
    assert _metric(text, "serving_requests_total", route="/predict", status="422") >= 1
    assert _metric(text, "serving_request_duration_seconds_count", route="/predict") >= 2
    assert _metric(text, "serving_rows_per_request_bucket", api="predict", le="10.0") >= 1
    assert _metric(text, "serving_prediction_score_count") >= 7
    assert _metric(text, "serving_model_info", model="churn-model", git_revision="abc123") == 1
    assert _metric(text, "serving_prediction_log_lines_dropped_total") == 0


def test_capture_ships_one_json_line_per_row_in_the_drift_format(
    server: RunningServer, client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    store: Path = server.store  # type: ignore[attr-defined]
    body = [dict(rows[0], total_charges=None), rows[1]]

    response = client.post("/predict", json=body, headers={"X-Request-ID": "log-check-1"})

    deadline = time.monotonic() + 10
    logged: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(logged) < 2:
        logged = [line for line in captured_lines(store) if line["request_id"] == "log-check-1"]
        time.sleep(0.05)
    assert len(logged) == 2
    first = logged[0]
    assert list(first) == [
        "ts",
        "request_id",
        "id",
        "model",
        "model_version",
        "features",
        "prediction",
    ]
    assert first["id"] == rows[0]["customer_id"]
    assert first["model"] == "churn-model" and first["model_version"] == "dev"
    assert first["ts"].endswith("Z") and first["features"]["total_charges"] is None
    assert first["features"]["tenure_months"] == rows[0]["tenure_months"]
    predicted = response.json()["predictions"][0]
    assert first["prediction"] == {  # the model's float32 score, spelt as shortly as it reads
        "label": predicted["label"],
        "score": pytest.approx(predicted["probability"], rel=1e-6),
    }


def test_openapi_documents_predict_records_from_the_data_contract(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    components = spec["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return schema if ref is None else resolve(components[ref.rsplit("/", 1)[1]])

    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    record = resolve(resolve(body["schema"])["items"])

    assert record["additionalProperties"] is False
    assert record["properties"]["tenure_months"]["maximum"] == 120
    assert record["properties"]["tenure_months"]["type"] == "integer"
    assert "month-to-month" in record["properties"]["contract"]["examples"]
    assert {"type": "null"} in record["properties"]["total_charges"]["anyOf"]
    assert "/v2/models/{model_name}/infer" in spec["paths"]


def test_the_request_examples_are_answered_and_agree_with_each_other(
    client: httpx.Client, exported_model: Any
) -> None:
    """The request examples (serving/examples/*.json, what the README's curl commands send) are
    drawn from the contract by `example_payloads`: the same two rows, once as V2
    tensors and once as records. Drawn here from the model's own fixture contract; that the
    committed files match the live contract is a project check (tests/project)."""
    from gitops_ml.pipeline.examples import render
    from gitops_ml.v2_request import INFER_FILE, PREDICT_FILE, example_payloads

    bodies = {
        name: render(body) for name, body in example_payloads(exported_model.contract).items()
    }

    v2 = client.post(INFER, content=bodies[INFER_FILE])
    plain = client.post("/predict", content=bodies[PREDICT_FILE])

    assert v2.status_code == 200 and plain.status_code == 200
    probabilities = v2.json()["outputs"][1]["data"]
    assert [p["probability"] for p in plain.json()["predictions"]] == probabilities[1::2]
