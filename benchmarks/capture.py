"""Production data capture (issue 13), measured in one run on this machine:

(a) serving throughput with capture off vs capture on at sample rate 1.0 (every row written,
    rotated every 5 s and shipped to a local S3-compatible server), V2 infer with 1-row and
    100-row requests, alternating runs so background load hits both alike; capture on is
    shipped by the sidecar process (the manifest's setup). Servers pinned to core 0, wrk and
    the sidecar to core 1; the sidecar is paused while wrk runs and ships between runs (in a
    pod it has a CPU of its own; here it would slow wrk). Besides requests/s, which move with
    whatever else the shared machine runs, the server's CPU per request (from /proc) and an
    in-process timing of the capture work per request (goal: capture costs ≤ 5 % of the
    serving core);
(b) `gitops-ml drift --current s3://…/predictions/ --window` over a 7-day window of shipped
    files (gzipped capture files, one per hour), wall time in a fresh process, with the rows read.

Usage: .venv/bin/python benchmarks/capture.py [--duration S] [--rows-per-day N]
The store is moto on loopback (no cloud here): its PUTs cost the benchmark process, not the server.
Reuses benchmarks/serving.py for the model, the server and the load generator (wrk when
installed).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import signal
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
# The servers on core 0; this process, wrk, moto and the sidecar on core 1: a pod's sidecar
# has a CPU of its own. (Other work on the machine still shares both cores.)
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
SERVER_CORE = ["taskset", "-c", "0"] if PINNED else []


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


SETTINGS = ("off", "sidecar")
# What capture adds to the serving process per request, timed in-process (no HTTP, no other
# process on the clock): record() on the event loop plus the writer thread's record and write,
# until the rows are counted written. Run in a fresh interpreter from the repository root: this
# folder's serving.py would shadow the serving package here.
SERVER_SIDE = """
import json, sys, tempfile, time
from pathlib import Path
import numpy as np
import orjson
from serving.settings import Settings
from serving.capture.segments import Segments
from serving.capture.writer import PredictionLog
out = {}
for body, requests in ((Path(sys.argv[1]), 20000), (Path(sys.argv[2]), 1000)):
    raw = body.read_bytes()
    rows = len(orjson.loads(raw)["inputs"][0]["data"])
    with tempfile.TemporaryDirectory() as tmp:
        config = Settings(capture_url=tmp + "/store", capture_dir=Path(tmp) / "spool")
        done = [0]  # rows written or dropped
        count = lambda n: done.__setitem__(0, done[0] + n)
        log = PredictionLog(Segments(config), 1.0, "m", "1", 10**9, count, count)
        log.start()
        predicted = {
            "label": np.zeros(rows, dtype=np.int64),
            "score": np.random.default_rng(0).random(rows, dtype=np.float32),
        }
        started = time.process_time()
        for n in range(requests):
            log.record(str(n), "v2", raw, predicted)
        log.close()  # the writer has written every record
        out[rows] = (time.process_time() - started) / requests * 1e6
        assert done[0] == rows * requests
print(json.dumps(out))
"""


def throughput(
    bench: Any,
    onnx_path: Path,
    test: pd.DataFrame,
    contract: Any,
    args: Any,
    work: Path,
    store: dict[str, str],
) -> dict[str, dict[str, float]]:
    """Medians per setting and body of alternating runs: capture off, and on with the sidecar
    shipping (on the other core)."""
    one, hundred = work / "one.json", work / "hundred.json"
    one.write_bytes(bench.v2_body(test.iloc[:1], contract))
    hundred.write_bytes(bench.v2_body(test.iloc[:100], contract))
    base = [*SERVER_CORE, sys.executable, "-m", "serving", "--model", str(onnx_path)]
    base += ["--contract", str(ROOT / paths.CONTRACT), "--log-level", "warning"]
    ports = {name: free_port() for name in SETTINGS}

    def capture(name: str) -> list[str]:
        if name == "off":
            return []
        options = ["--capture-url", f"s3://{BUCKET}/{name}", "--capture-dir"]
        options += [str(work / f"spool-{name}"), "--capture-max-seconds", "5"]
        return [*options, "--log-sample-rate", "1.0"]

    os.environ.update(store)  # the server subprocesses inherit the store's endpoint
    samples: dict[str, list[dict[str, float]]] = {
        f"{name}{rows}": [] for name in SETTINGS for rows in (1, 100)
    }
    with contextlib.ExitStack() as stack:
        sidecar = stack.enter_context(shipper(capture("sidecar"), work / "sidecar.log"))
        urls = {
            name: stack.enter_context(
                bench.server(
                    [*base, "--port", str(ports[name]), *capture(name)],
                    ports[name],
                    work / f"{name}.log",
                )
            )
            for name in SETTINGS
        }
        path = "/v2/models/churn-model/infer"
        for name, url in urls.items():
            bench.load(url + path, one, 16, 2, work)  # warm-up
            shipped_all(work / f"spool-{name}")
        pids = {name: pid_listening(port) for name, port in ports.items()}
        busy = {f"{name}{rows}": 0.0 for name in SETTINGS for rows in (1, 100)}
        served = dict.fromkeys(busy, 0.0)
        # A server's CPU from the start of one of its runs to the start of its next one goes
        # to that run: its writer finishes a run's last files while others are measured.
        marks = {name: (cpu_seconds(pids[name]), "") for name in SETTINGS}

        def attribute(name: str, key: str) -> None:
            now, previous = cpu_seconds(pids[name]), marks[name]
            if previous[1]:
                busy[previous[1]] += now - previous[0]
            marks[name] = (now, key)

        for _ in range(args.rounds):
            for name, url in urls.items():
                for rows, body, connections in ((1, one, 16), (100, hundred, 8)):
                    attribute(name, f"{name}{rows}")
                    # Paused while wrk runs (they would share core 1; in a pod the sidecar has
                    # its own CPU), it ships between the runs: its CPU is reported apart.
                    sidecar.send_signal(signal.SIGSTOP)
                    run = bench.load(url + path, body, connections, args.duration, work)
                    sidecar.send_signal(signal.SIGCONT)
                    samples[f"{name}{rows}"].append(run)
                    served[f"{name}{rows}"] += run["requests_per_s"] * round(args.duration)
                    shipped_all(work / f"spool-{name}")  # no shipping left over for the next run
        for name in SETTINGS:
            attribute(name, "")
    medians = {
        k: {m: statistics.median(r[m] for r in runs) for m in runs[0]}
        for k, runs in samples.items()
    }
    for key, runs in medians.items():
        runs["cpu_us"] = busy[key] / served[key] * 1e6
    return medians


def server_side_us(work: Path) -> dict[str, float]:
    """CPU µs per request that capture costs the serving process, 1-row and 100-row."""
    out = subprocess.run(
        [sys.executable, "-c", SERVER_SIDE, str(work / "one.json"), str(work / "hundred.json")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"},
    ).stdout
    return {str(k): float(v) for k, v in json.loads(out).items()}


def shipped_all(spool: Path, timeout: float = 30.0) -> None:
    """Wait until a capture's spool holds no segment (open, closed or being shipped)."""
    deadline = time.monotonic() + timeout
    while any(spool.rglob("*.rec*")) and time.monotonic() < deadline:
        time.sleep(0.2)


def pid_listening(port: int) -> int:
    """The server process started with `--port PORT` (this benchmark's own subprocesses)."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serving" in argv and str(port).encode() in argv and b"taskset" not in argv[0]:
            return int(proc.name)
    raise SystemExit(f"no server process on port {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: what a request costs the serving core,
    whatever else the machine runs meanwhile (requests/s moves with the machine's load)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def shipper(options: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m serving.capture` on this process's core (the other one), stopped
    with SIGTERM after the servers (it drains their last files)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving.capture", *options],
            stdout=handle,
            stderr=handle,
            env=env,
            cwd=ROOT,
        )
    try:
        yield process
    finally:
        process.terminate()
        # Its CPU over its whole life, the drain included (the wait's rusage).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        (log.parent / "sidecar.cpu").write_text(str(usage.ru_utime + usage.ru_stime))


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
    parser.add_argument("--only", choices=("serving", "drift"), help="run one part")
    args = parser.parse_args()
    bench = serving_bench()
    print(f"capture benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if PINNED:
        os.sched_setaffinity(0, {1})  # wrk, moto and the sidecar inherit core 1
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp, object_store() as store:
        work = Path(tmp)
        onnx_path, _, test, contract = bench.model_and_rows(work, 20_000, None)
        if args.only != "drift":
            http = throughput(bench, onnx_path, test, contract, args, work, store)
            report_throughput(http, args, work, server_side_us(work))
        if args.only != "serving":
            written = week_of_captures(onnx_path, contract, args.rows_per_day, store, work / "l")
            remote = f"s3://{BUCKET}/predictions/"
            seconds = drift_window(onnx_path, test, contract, work, store, remote)
            local = drift_window(
                onnx_path, test, contract, work, store, str(work / "l/predictions")
            )
            result = json.loads((work / "drift/drift.json").read_text())
            print(
                f"\n(b) drift --window 2026-11-01..2026-11-07 on s3:// ({result['rows']:,} of "
                f"{written:,} rows in {len(result['sources'])} shipped files): {seconds:.1f} s "
                "wall, fresh process"
            )
            print(f"    the same files in a local directory: {local:.1f} s (the rest: moto)")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


def report_throughput(
    http: dict[str, dict[str, float]], args: Any, work: Path, in_process: dict[str, float]
) -> None:
    waiting = sum(1 for _ in work.glob("spool-*/**/*.rec"))
    # serving.capture.segments.COUNTERS (this folder's serving.py shadows the package here)
    counts = json.loads((work / "spool-sidecar/.shipper.json").read_text())
    sidecar_cpu = float((work / "sidecar.cpu").read_text())
    print(f"\n(a) V2 infer, one worker, median of {args.rounds} × {args.duration:g} s runs")
    where = "server on core 0, wrk on core 1" if PINNED else "not pinned"
    print(f"    {where}; capture at sample rate 1.0, files closed every 5 s, shipped to moto")
    print("    (the sidecar ships between runs, on core 1: paused while wrk holds that core)")
    print(
        f"{'request':<22} {'setting':<9} {'req/s':>8} {'cost':>7} {'p99 ms':>8} "
        f"{'server CPU µs/req':>18} {'cost':>7}"
    )
    for label, key in (("1 row, 16 conns", "1"), ("100 rows, 8 conns", "100")):
        off = http[f"off{key}"]
        for name in SETTINGS:
            run = http[f"{name}{key}"]
            cost = 1 - run["requests_per_s"] / off["requests_per_s"]
            cpu = run["cpu_us"] / off["cpu_us"] - 1
            goal = "" if name == "off" else f"  goal ≤ 5 %: {'PASS' if cpu <= 0.05 else 'MISS'}"
            print(
                f"{label:<22} {name:<9} {run['requests_per_s']:>8.0f} "
                f"{'' if name == 'off' else f'{cost:.1%}':>7} {run['p99_ms']:>8.1f} "
                f"{run['cpu_us']:>18.0f} {'' if name == 'off' else f'{cpu:.1%}':>7}{goal}"
            )
    print("    (goal judged on the server's CPU per request: its throughput on a core of its own;")
    print("    requests/s here also move with whatever else the shared machine runs)")
    for label, key in (("1-row", "1"), ("100-row", "100")):
        share = in_process[key] / http[f"off{key}"]["cpu_us"]
        print(
            f"    in-process: capture costs the server {in_process[key]:.1f} CPU µs "
            f"a {label} request = {share:.1%} of its CPU with capture off"
        )
    per_row = sidecar_cpu / max(counts["shipped"], 1) * 1e6
    print(f"    sidecar: {counts}, {sidecar_cpu:.1f} CPU s = {per_row:.1f} µs a shipped row")
    print(f"    closed files still waiting in the spool at shutdown: {waiting}")


if __name__ == "__main__":
    sys.exit(main())
