"""Serving performance, measured side by side in one run on this machine:

(a) onnxruntime vs scikit-learn `predict_proba` latency for 1 row and 1,000 rows
    (target: onnxruntime ≥ 50× faster for 1 row);
(b) V2 infer requests/s with 1-row requests vs a bare endpoint in the same Starlette/uvicorn
    stack (target ≥ 0.5× the bare endpoint), with p50/p99 latency (target p99 ≤ 25 ms at 16
    concurrent connections);
(c) rows/s with 100-row V2 requests on one worker (target ≥ 40,000 rows/s).

Usage: make bench-serving  (or .venv/bin/python benchmarks/serving.py [--duration S])
Uses models/model.onnx + models/model.joblib when `make run` produced them, else trains the
configured model on generated data. Load comes from wrk (apt-get install wrk) when it is on
PATH, else from `python -m serving.loadgen` in a separate process.
"""

# ruff: noqa: E402 - imports follow the sys.path fix below
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the `serving` package it measures: keep its own folder off the
# import path so `import serving` finds the package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import joblib
import onnxruntime as ort
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gitops_ml.config import ModelParams, load_params
from gitops_ml.contract import Contract, load_contract, model_frame, onnx_feeds
from gitops_ml.io import read_table
from gitops_ml.release.deploy import free_port
from gitops_ml.synthetic import generate_churn
from gitops_ml.v2_request import v2_request
from serving.model import session_options

REPO = Path(__file__).resolve().parents[1]

WRK_LUA = """
local f = io.open(os.getenv("BENCH_BODY"), "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "application/json"
"""


# ------------------------------------------------------------------------------- the model


def model_and_rows(
    work: Path, rows: int, model_dir: Path | None
) -> tuple[Path, Any, pd.DataFrame, Contract]:
    """The pipeline's ONNX and sklearn models when present, else a freshly trained pair."""
    contract = load_contract(REPO / "data" / "schema.yaml")
    onnx_path, joblib_path = REPO / "models/model.onnx", REPO / "models/model.joblib"
    test_path = REPO / "data/split/test.parquet"
    if model_dir is not None:
        onnx_path, joblib_path = model_dir / "model.onnx", model_dir / "model.joblib"
        test_path = model_dir / "test.parquet"
    if onnx_path.exists() and joblib_path.exists() and test_path.exists():
        print(f"model: {onnx_path} with {joblib_path.name} and {test_path.name}")
        return onnx_path, joblib.load(joblib_path), read_table(test_path), contract
    from gitops_ml.pipeline.export import export_onnx
    from gitops_ml.pipeline.train import fit_model

    params = load_params(REPO / "params.yaml")
    frame = generate_churn(rows, seed=42)
    cut = int(rows * 0.8)
    print(f"model: training the configured model on {cut:,} generated rows (no `make run` yet)")
    model = fit_model(frame.iloc[:cut], contract, ModelParams.from_params(params))
    onnx_path = work / "model.onnx"
    onnx_path.write_bytes(export_onnx(model, contract, int(params["export"]["opset"])))
    return onnx_path, model, frame.iloc[cut:].reset_index(drop=True), contract


def per_call_seconds(call: Callable[[], object], min_seconds: float = 1.0) -> float:
    """Median over 5 batches of the time per call, each batch at least min_seconds / 5."""
    call()
    started, n = time.perf_counter(), 0
    while time.perf_counter() - started < min_seconds / 5:
        call()
        n += 1
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        batches.append((time.perf_counter() - t0) / n)
    return statistics.median(batches)


def compare_runtimes(onnx_path: Path, model: Any, test: pd.DataFrame, contract: Contract) -> dict:
    session = ort.InferenceSession(
        str(onnx_path), sess_options=session_options(), providers=["CPUExecutionProvider"]
    )
    out: dict[str, dict[str, float]] = {}
    for rows in (1, 1000):
        frame = model_frame(test.iloc[:rows], contract)
        feeds = onnx_feeds(frame, contract)
        ort_s = per_call_seconds(functools.partial(session.run, None, feeds))
        sk_s = per_call_seconds(functools.partial(model.predict_proba, frame))
        out[f"{rows}"] = {"onnxruntime_ms": ort_s * 1e3, "sklearn_ms": sk_s * 1e3}
    return out


# ------------------------------------------------------------------------------- HTTP load


def bare_app() -> Any:
    """The same Starlette/uvicorn stack with a handler that only reads the body."""

    async def bare(request: Request) -> Response:
        await request.body()
        return Response(b'{"ok": true}', media_type="application/json")

    async def ready(_: Request) -> Response:
        return Response(b'{"ready": true}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/bare", bare, methods=["POST"]),
            Route("/v2/health/ready", ready, methods=["GET"]),
        ]
    )


@contextmanager
def server(command: list[str], port: int, log: Path) -> Iterator[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}:{REPO / 'src'}"}
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=handle, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1)
                break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {log.read_text()}") from exc
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def load(url: str, body: Path, connections: int, seconds: float, work: Path) -> dict[str, float]:
    """requests/s, p50 and p99 in ms, errors: wrk when installed, else serving.loadgen."""
    wrk = shutil.which("wrk")
    if wrk:
        script = work / "post.lua"
        script.write_text(WRK_LUA)
        result = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "BENCH_BODY": str(body)},
            check=True,
        ).stdout
        latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", result, re.M))
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result)
        return {
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", result).group(1)),  # type: ignore[union-attr]
            "p50_ms": _wrk_ms(latency["50"]),
            "p99_ms": _wrk_ms(latency["99"]),
            "errors": float(errors.group(1)) if errors else 0.0,
        }
    command = [sys.executable, "-m", "serving.loadgen", "--url", url, "--body", str(body)]
    command += ["--concurrency", str(connections), "--duration", str(seconds)]
    summary = json.loads(subprocess.run(command, capture_output=True, text=True, cwd=REPO).stdout)
    return {k: float(summary[k]) for k in ("requests_per_s", "p50_ms", "p99_ms", "errors")}


def v2_body(frame: pd.DataFrame, contract: Contract) -> bytes:
    return json.dumps(v2_request(frame, contract)).encode()


def http_benchmarks(
    onnx_path: Path, test: pd.DataFrame, contract: Contract, seconds: float, rounds: int, work: Path
) -> dict[str, Any]:
    one, hundred = work / "one.json", work / "hundred.json"
    one.write_bytes(v2_body(test.iloc[:1], contract))
    hundred.write_bytes(v2_body(test.iloc[:100], contract))
    serve_port, bare_port = free_port(), free_port()
    serve_cmd = [
        sys.executable,
        "-m",
        "serving",
        "--model",
        str(onnx_path),
        "--contract",
        str(REPO / "data/schema.yaml"),
        "--port",
        str(serve_port),
        "--log-level",
        "warning",
    ]
    bare_cmd = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(bare_port)]
    samples: dict[str, list[dict[str, float]]] = {"bare": [], "infer": [], "rows100": []}
    with (
        server(serve_cmd, serve_port, work / "serve.log") as serve_url,
        server(bare_cmd, bare_port, work / "bare.log") as bare_url,
    ):
        infer_url = f"{serve_url}/v2/models/churn-model/infer"
        load(infer_url, one, 16, 2, work)  # warm-up
        for _ in range(rounds):  # alternate, so background load on the machine hits both
            samples["bare"].append(load(f"{bare_url}/bare", one, 16, seconds, work))
            samples["infer"].append(load(infer_url, one, 16, seconds, work))
            samples["rows100"].append(load(infer_url, hundred, 8, seconds, work))
    return {name: _median(runs) for name, runs in samples.items()}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


# ------------------------------------------------------------------------------- report


def report(runtimes: dict, http: dict, generator: str, seconds: float, rounds: int) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print(f"\n(a) single-process latency per call (median of 5 batches), {os.cpu_count()} cores")
    print(f"{'rows':>6} {'onnxruntime':>14} {'sklearn':>12} {'speed-up':>10}")
    for rows, r in runtimes.items():
        ratio = r["sklearn_ms"] / r["onnxruntime_ms"]
        target = f"  target ≥ 50×: {verdict(ratio >= 50)}" if rows == "1" else ""
        print(
            f"{rows:>6} {r['onnxruntime_ms']:>11.3f} ms {r['sklearn_ms']:>9.3f} ms "
            f"{ratio:>9.1f}×{target}"
        )
    bare, infer, rows100 = http["bare"], http["infer"], http["rows100"]
    ratio = infer["requests_per_s"] / bare["requests_per_s"]
    print(f"\n(b) HTTP, one uvicorn worker, {generator}, median of {rounds} × {seconds:g} s runs")
    print(f"{'endpoint':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in (
        ("bare POST (same stack), 16 conns", bare),
        ("V2 infer 1 row, 16 conns", infer),
    ):
        print(
            f"{name:<34} {r['requests_per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['errors']:>7.0f}"
        )
    print(
        f"infer / bare = {ratio:.2f}×  target ≥ 0.5×: {verdict(ratio >= 0.5)};  "
        f"p99 {infer['p99_ms']:.1f} ms  target ≤ 25 ms: {verdict(infer['p99_ms'] <= 25)}"
    )
    rows_per_s = rows100["requests_per_s"] * 100
    print(
        f"\n(c) V2 infer with 100-row requests, 8 conns: {rows100['requests_per_s']:.0f} req/s = "
        f"{rows_per_s:,.0f} rows/s (p99 {rows100['p99_ms']:.1f} ms)  "
        f"target ≥ 40,000 rows/s: {verdict(rows_per_s >= 40_000)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per endpoint")
    parser.add_argument("--rows", type=int, default=20_000, help="generated rows if no model")
    parser.add_argument(
        "--model-dir", type=Path, help="directory with model.onnx, model.joblib, test.parquet"
    )
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        import uvicorn

        uvicorn.run(
            bare_app(),
            host="127.0.0.1",
            port=args.bare_server,
            workers=1,
            log_level="warning",
            access_log=False,
        )
        return 0
    load_avg = os.getloadavg()[0]
    print(f"serving benchmark: {os.cpu_count()} cores, load average {load_avg:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        onnx_path, model, test, contract = model_and_rows(work, args.rows, args.model_dir)
        runtimes = compare_runtimes(onnx_path, model, test, contract)
        http = http_benchmarks(onnx_path, test, contract, args.duration, args.rounds, work)
    generator = "wrk -t1" if shutil.which("wrk") else "serving.loadgen (asyncio, separate process)"
    report(runtimes, http, generator, args.duration, args.rounds)
    print(
        f"\nload average {os.getloadavg()[0]:.1f} at the end (other work on the machine "
        "lowers every number above alike)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
