"""Concurrency: 50 clients sending 5,000 requests to one server get 5,000 correct answers
(each response checked against onnxruntime for the row that request sent)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest
from loadgen import run_load
from serving_support import RunningServer, bare_server, onnx_direct, v2_body

from gitops_ml.v2_request import records

pytestmark = pytest.mark.slow
__all__ = ["bare_server"]  # the fixture, imported for pytest

CLIENTS = 50
REQUESTS = 5_000


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def test_fifty_concurrent_clients_get_5000_correct_answers_and_no_errors(
    bare_server: RunningServer, exported_model: Any
) -> None:
    frame = exported_model.test_frame
    contract = exported_model.contract
    _, probabilities = onnx_direct(exported_model.onnx_path, frame, contract)
    rows = records(frame, contract)
    bodies: list[tuple[str, bytes]] = []
    for i in range(REQUESTS):
        row = i % len(rows)
        if i % 2:
            bodies.append(("/v2/models/churn-model/infer", _json(v2_body([rows[row]], contract))))
        else:
            bodies.append(("/predict", _json([rows[row]])))

    result = asyncio.run(run_load(bare_server.url, bodies, concurrency=CLIENTS, keep_bodies=True))

    assert result.statuses == {200: REQUESTS}
    for index, raw in result.bodies.items():
        body = json.loads(raw)
        if index % 2:
            served = np.float32(body["outputs"][1]["data"][1])
        else:
            served = np.float32(body["predictions"][0]["probability"])
        assert served == probabilities[index % len(rows), 1], index
    metrics = httpx.get(f"{bare_server.url}/metrics").text
    ok = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("serving_requests_total{") and 'status="200"' in line and "POST" in line
    )
    assert ok == REQUESTS
