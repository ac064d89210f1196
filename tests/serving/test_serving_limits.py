"""Hostile input has a budget: the attacks of issue 9 against a real server on loopback get a
4xx each, and the server's resident memory stays within 50 MB of where it started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_support import RunningServer, bare_server, free_port, serving_exported, v2_body

from gitops_ml.v2_request import records

pytestmark = pytest.mark.slow
__all__ = ["bare_server"]  # the fixture, imported for pytest

INFER = "/v2/models/churn-model/infer"
MAX_BODY = 8 * 1024 * 1024  # the server's default body limit


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (what the kernel's OOM killer weighs)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _wide_v2_attack(rows: list[dict[str, Any]], contract: Any) -> bytes:
    """10,000 rows with one multi-million-character `plan`, just under the body limit."""
    many = (rows * (10_000 // len(rows) + 1))[:10_000]
    body = v2_body(many, contract)
    plan = next(t for t in body["inputs"] if t["name"] == "plan")
    room = MAX_BODY - len(json.dumps(body).encode()) - 1024
    plan["data"][0] = "x" * room
    encoded = json.dumps(body).encode()
    assert room > 6_000_000 and len(encoded) < MAX_BODY
    return encoded


def test_oversized_category_values_are_refused_and_memory_stays_bounded(
    bare_server: RunningServer, exported_model: Any
) -> None:
    rows = records(exported_model.test_frame, exported_model.contract)
    wide = _wide_v2_attack(rows, exported_model.contract)
    long_record = json.dumps([dict(rows[0], region="y" * 6_500_000)]).encode()
    with httpx.Client(base_url=bare_server.url, timeout=60) as client:
        for _ in range(3):  # warm up the allocator with ordinary traffic
            assert client.post("/predict", json=rows[:100]).status_code == 200
        before = rss_mb(bare_server.process.pid)

        answers = []
        for _ in range(3):
            answers.append(client.post(INFER, content=wide))
            answers.append(client.post("/predict", content=long_record))
        after = rss_mb(bare_server.process.pid)
        still_serving = client.post("/predict", json=rows[:2])

    assert [a.status_code for a in answers] == [400, 422] * 3
    assert "input 'plan': row 0 has " in answers[0].json()["error"]
    assert "takes at most 256 (the contract's checks.max_length)" in answers[0].json()["error"]
    assert "field 'region': row 0 has 6,500,000 characters" in answers[1].json()["error"]
    assert after - before < 50, f"RSS grew from {before:.0f} MB to {after:.0f} MB"
    assert still_serving.status_code == 200


def test_metrics_and_docs_move_to_their_own_port_when_one_is_given(
    exported_model: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {"SERVING_METRICS_PORT": str(port)}
    with serving_exported(exported_model, tmp_path, env=env) as running:
        operations = f"http://127.0.0.1:{port}"
        public = {path: httpx.get(running.url + path) for path in ("/metrics", "/docs")}
        apart = {
            path: httpx.get(operations + path) for path in ("/metrics", "/docs", "/openapi.json")
        }
        infer_documented = "/predict" in apart["/openapi.json"].json()["paths"]
        ready = httpx.get(running.url + "/v2/health/ready")
        running.process.terminate()
        code = running.process.wait(timeout=20)

    assert {path: r.status_code for path, r in public.items()} == {"/metrics": 404, "/docs": 404}
    assert public["/metrics"].json() == {"error": "Not Found"}
    assert {path: r.status_code for path, r in apart.items()} == {
        "/metrics": 200,
        "/docs": 200,
        "/openapi.json": 200,
    }
    assert "serving_requests_total" in apart["/metrics"].text and infer_documented
    assert ready.status_code == 200
    assert code in (0, -15), "SIGTERM stops both servers"
