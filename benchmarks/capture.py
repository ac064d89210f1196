"""Production data capture (issue 13), measured in one run on this machine:

(a) serving throughput with capture off vs capture on at sample rate 1.0 (every row written,
    rotated every 5 s and shipped to a local S3-compatible server), V2 infer with 1-row and
    100-row requests, alternating runs so background load hits both alike
    (goal: capture costs ≤ 5 % of requests/s);
(b) `gitops-ml drift --current s3://…/predictions/ --window` over a 7-day window of shipped
    files (gzipped capture files, one per hour), wall time in a fresh process, with the rows read.

Usage: .venv/bin/python benchmarks/capture.py [--duration S] [--rows-per-day N]
The store is moto on loopback (no cloud here): its PUTs cost the benchmark process, not the server.
Reuses benchmarks/serving.py for the model, the server and the load generator (wrk when
installed).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from bench_support import serving_bench

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DriftParams, load_params
from gitops_ml.monitor.profile import build_model_profile
from gitops_ml.monitor.readers import ModelScorer
from gitops_ml.monitor.simulate import Window, prediction_log_lines
from gitops_ml.release.deploy import free_port
from gitops_ml.synthetic import generate_churn

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "captures"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


@contextmanager
def object_store() -> Iterator[dict[str, str]]:
    """moto on loopback with one bucket; yields the environment a process needs to reach it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        **CREDENTIALS,
    }
    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        server.stop()


def throughput(
    bench: Any,
    onnx_path: Path,
    test: pd.DataFrame,
    contract: Any,
    args: Any,
    work: Path,
    store: dict[str, str],
) -> dict[str, dict[str, float]]:
    one, hundred = work / "one.json", work / "hundred.json"
    one.write_bytes(bench.v2_body(test.iloc[:1], contract))
    hundred.write_bytes(bench.v2_body(test.iloc[:100], contract))
    base = [sys.executable, "-m", "serving", "--model", str(onnx_path)]
    base += ["--contract", str(ROOT / paths.CONTRACT), "--log-level", "warning"]
    off_port, on_port = free_port(), free_port()
    capture = [
        "--capture-url",
        f"s3://{BUCKET}/predictions",
        "--capture-dir",
        str(work / "spool"),
        "--capture-max-seconds",
        "5",
        "--log-sample-rate",
        "1.0",
    ]
    os.environ.update(store)  # the server subprocesses inherit the store's endpoint
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in ("off1", "on1", "off100", "on100")}
    with (
        bench.server([*base, "--port", str(off_port)], off_port, work / "off.log") as off,
        bench.server([*base, "--port", str(on_port), *capture], on_port, work / "on.log") as on,
    ):
        path = "/v2/models/churn-model/infer"
        for url in (off, on):
            bench.load(url + path, one, 16, 2, work)  # warm-up
        for _ in range(args.rounds):
            for name, url in (("off", off), ("on", on)):
                samples[f"{name}1"].append(bench.load(url + path, one, 16, args.duration, work))
                samples[f"{name}100"].append(
                    bench.load(url + path, hundred, 8, args.duration, work)
                )
    return {
        k: {m: statistics.median(r[m] for r in runs) for m in runs[0]}
        for k, runs in samples.items()
    }


def week_of_captures(
    onnx_path: Path, contract: Any, rows_per_day: int, env: dict[str, str], local: Path
) -> int:
    """Seven days of capture files (one per hour, as pods ship them) in the store, and the
    same files in a local directory."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    scorer = ModelScorer(onnx_path, contract)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    total = 0
    for day in range(7):
        frame = generate_churn(rows_per_day, 1000 + day, "none", start="2026-11-01", days=1)
        frame = frame.drop(columns=[contract.target])
        lines = prediction_log_lines(Window(frame, scorer.score(frame), []), contract, "bench")
        per_hour = -(-len(lines) // 24)
        for hour in range(24):
            part = lines[hour * per_hour : (hour + 1) * per_hour]
            moment = start + timedelta(days=day, hours=hour)
            key = f"predictions/date={moment:%Y-%m-%d}/hour={moment:%H}/pod-a-0-{hour:06d}.jsonl.gz"
            body = gzip.compress(("\n".join(part) + "\n").encode(), compresslevel=1)
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            (local / key).parent.mkdir(parents=True, exist_ok=True)
            (local / key).write_bytes(body)
            total += len(part)
    return total


def drift_window(
    onnx_path: Path,
    test: pd.DataFrame,
    contract: Any,
    work: Path,
    env: dict[str, str],
    current: str,
) -> float:
    settings = DriftParams.from_params(load_params(ROOT / paths.PARAMS))
    profile = build_model_profile(test, contract, settings, onnx_path)
    gio.write_json(work / "profile.json", profile)
    command = [
        sys.executable,
        "-m",
        "gitops_ml.cli",
        "drift",
        "--profile",
        str(work / "profile.json"),
    ]
    command += ["--current", current, "--window", "2026-11-01..2026-11-07"]
    command += ["--contract", str(ROOT / paths.CONTRACT), "--output-dir", str(work / "drift")]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, **env}, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per setting")
    parser.add_argument("--rows-per-day", type=int, default=100_000, help="drift window rows/day")
    args = parser.parse_args()
    bench = serving_bench()
    print(f"capture benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp, object_store() as store:
        work = Path(tmp)
        onnx_path, _, test, contract = bench.model_and_rows(work, 20_000, None)
        http = throughput(bench, onnx_path, test, contract, args, work, store)
        shipped = sum(1 for _ in (work / "spool").rglob("*.jsonl"))
        written = week_of_captures(onnx_path, contract, args.rows_per_day, store, work / "local")
        remote = f"s3://{BUCKET}/predictions/"
        seconds = drift_window(onnx_path, test, contract, work, store, remote)
        local = drift_window(
            onnx_path, test, contract, work, store, str(work / "local/predictions")
        )
        result = json.loads((work / "drift/drift.json").read_text())
    print(f"\n(a) V2 infer, one worker, median of {args.rounds} × {args.duration:g} s runs")
    print(f"{'request':<22} {'off req/s':>10} {'on req/s':>10} {'cost':>7} {'p99 off/on ms':>15}")
    for label, key in (("1 row, 16 conns", "1"), ("100 rows, 8 conns", "100")):
        off, on = http[f"off{key}"], http[f"on{key}"]
        cost = 1 - on["requests_per_s"] / off["requests_per_s"]
        print(
            f"{label:<22} {off['requests_per_s']:>10.0f} {on['requests_per_s']:>10.0f} "
            f"{cost:>6.1%} {off['p99_ms']:>7.1f}/{on['p99_ms']:<7.1f}"
            f"  goal ≤ 5 %: {'PASS' if cost <= 0.05 else 'MISS'}"
        )
    print(f"    closed files still waiting in the spool at shutdown: {shipped}")
    print(
        f"\n(b) drift --window 2026-11-01..2026-11-07 on s3:// ({result['rows']:,} of "
        f"{written:,} rows in {len(result['sources'])} shipped files): {seconds:.1f} s wall, "
        "fresh process"
    )
    print(f"    the same files in a local directory: {local:.1f} s (the rest is moto's transfer)")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
