"""Helpers for the serving tests: a real server in a subprocess on a free loopback port,
and request bodies built from raw rows of the test frame."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from gitops_ml.contract import Contract, parse_contract
from gitops_ml.model_view import model_frame, onnx_feeds
from gitops_ml.onnx_model import onnx_session
from gitops_ml.release.deploy import free_port
from gitops_ml.v2_request import v2_request
from serving.capture.segments import Segments
from serving.capture.shipper import Shipper
from serving.capture.writer import PredictionLog
from serving.settings import Settings
from serving.validation import dump_json

REPO_ROOT = Path(__file__).resolve().parents[2]
CAPTURE_CONTRACT = Path(__file__).with_name("capture_schema.yaml")


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVING_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])
    env.update(extra or {})
    return env


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def wait_ready(
    url: str, process: subprocess.Popen[bytes], stderr_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {stderr_path.read_text()}"
            )
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s: {stderr_path.read_text()}")


@contextmanager
def running_server(
    command: Sequence[str], tmp_dir: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[RunningServer]:
    """Start `command` on a free loopback port (SERVING_PORT/HOST), wait until ready, stop it."""
    port = free_port()
    stderr_path = tmp_dir / f"server-{port}.log"
    full_env = server_env({**(env or {}), "SERVING_PORT": str(port), "SERVING_HOST": "127.0.0.1"})
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            list(command), stdout=stderr, stderr=stderr, env=full_env, cwd=REPO_ROOT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, stderr_path, timeout)
        yield RunningServer(url, process, stderr_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def sidecar(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m serving.capture` (the capture sidecar) with the server's settings; SIGTERM
    on leaving: it must exit 0 (or from a SIGKILL the test sent)."""
    log = tmp_path / f"sidecar-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving.capture"],
            stdout=out,
            stderr=out,
            env=server_env(env),
            cwd=REPO_ROOT,
        )
    try:
        yield process
    finally:
        process.terminate()
        assert process.wait(timeout=30) in (0, -signal.SIGKILL), log.read_text()


def capture_log(
    tmp_dir: Path,
    sample_rate: float = 1.0,
    model: str = "m",
    version: str = "1",
    contract: Path = CAPTURE_CONTRACT,
    **options: Any,
) -> PredictionLog:
    """A capture to the local store `tmp_dir/store` (spool `tmp_dir/spool`) of requests to a
    server of `contract`: after closing it, `ship(log)` ships every line (read them with
    `captured_lines(tmp_dir / "store")`)."""
    settings = Settings(
        contract=str(contract),
        capture_url=str(tmp_dir / "store"),
        capture_dir=tmp_dir / "spool",
    )
    return PredictionLog(Segments(settings), sample_rate, model, version, **options)


def ship(log: PredictionLog) -> None:
    """Ship what a closed capture left in its spool, as the sidecar does."""
    shipper = Shipper(log.segments.config)
    shipper.start()
    shipper.drain()


def capture_body(ids: Iterable[int]) -> bytes:
    """A `/predict` body for CAPTURE_CONTRACT as a client sends it: one record per id."""
    return dump_json([{"id": str(n), "age": n, "plan": "basic", "charges": 1.5} for n in ids])


def shipped(store: Path) -> dict[str, list[dict[str, Any]]]:
    """The captured lines in a local store, by file (relative path)."""
    return {
        path.relative_to(store).as_posix(): [
            json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()
        ]
        for path in sorted(store.rglob("*.jsonl.gz"))
    }


def captured_lines(store: Path) -> list[dict[str, Any]]:
    """Every captured line in a local store, in file order."""
    return [line for lines in shipped(store).values() for line in lines]


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "serving", *args]


@contextmanager
def serving_exported(
    exported: Any, tmp_dir: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """The conftest's exported model served bare, with its contract and any extra options."""
    command = serve_command(
        "--model",
        str(exported.onnx_path),
        "--contract",
        str(exported.contract_path),
        "--model-name",
        "churn-model",
        *args,
    )
    with running_server(command, tmp_dir, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def bare_server(
    exported_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One server per test module with the default options (import it into the module)."""
    with serving_exported(exported_model, tmp_path_factory.mktemp("bare-server")) as running:
        yield running


def run_server_expecting_failure(
    args: Sequence[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the server with arguments that must make it refuse to start."""
    env = server_env({"SERVING_PORT": str(free_port())})
    return subprocess.run(
        serve_command(*args),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )


# ------------------------------------------------------------------------ request bodies


def v2_body(rows: list[dict[str, Any]], contract: Contract) -> dict[str, Any]:
    """A V2 inference request for `/predict`-style records (the shared builder's tensors)."""
    return v2_request(pd.DataFrame(rows), contract)


def fork_contract() -> Contract:
    """A fork-shaped contract: Yes/No booleans, blank numerics, an id, no timestamp."""
    return parse_contract(
        {
            "name": "telco",
            "encoding": {
                "true_values": ["Yes"],
                "false_values": ["No"],
                "missing_values": ["", " "],
            },
            "columns": [
                {"name": "customerID", "type": "category", "role": "id"},
                {"name": "SeniorCitizen", "type": "bool"},
                {"name": "Partner", "type": "bool", "nullable": True},
                {"name": "TotalCharges", "type": "float", "nullable": True, "checks": {"min": 0}},
                {"name": "tenure", "type": "int", "checks": {"min": 0, "max": 72}},
                {
                    "name": "Contract",
                    "type": "category",
                    "nullable": True,
                    "checks": {"allowed": ["Month-to-month", "One year", "Two year"]},
                },
                {"name": "Churn", "type": "bool", "role": "target", "positive": "Yes"},
            ],
        }
    )


def onnx_direct(
    onnx_path: Path, frame: pd.DataFrame, contract: Contract
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities from onnxruntime called directly (the pipeline's own feeds).

    Same session options as the server: a tree ensemble summed over several threads can differ
    in the last float32 bit from the single-threaded sum.
    """
    session = onnx_session(onnx_path.read_bytes())
    labels, probabilities = session.run(
        ["label", "probabilities"], onnx_feeds(model_frame(frame, contract), contract)
    )
    return np.asarray(labels), np.asarray(probabilities)
