"""Ordinary traffic while an outsider attacks the server, before and after the hardening
(issue 9), measured side by side in one run on this machine.

For each server (this checkout, and with --before REV the serving code of that revision, run
from a temporary git worktree against the same ONNX model and this environment's packages):
1-row V2 infer at 16 connections for S seconds alone, then the same load while one attacker
repeats the issue's attacks — 10,000 rows with one ~7M-character category value (just under
the 8 MB body limit), /predict with one 6.5 MB value, 200 requests with made-up 1–4k-character
HTTP methods, and 200 idle connections held open. It prints the ordinary traffic's req/s, p99
and errors in both phases, the attacks' status codes, the server's peak resident memory
(sampled every 50 ms from /proc) and whether it still answers afterwards.

Usage: .venv/bin/python benchmarks/attacks.py [--before aec2828] [--duration S]
Needs `make run` (models/model.onnx) and wrk on PATH (else tests/support/loadgen.py generates
the load).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_support import serving_bench

from gitops_ml import paths
from gitops_ml.release.deploy import free_port
from gitops_ml.v2_request import records

ROOT = Path(__file__).resolve().parents[1]
MAX_BODY = 8 * 1024 * 1024  # the server's default body limit, both before and after
PRE_HARDENING = "aec2828"  # main just before "Serving: bounded cost per request (issue 9)"


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Attack:
    """What the attacker sent and got back, and the server's peak memory meanwhile."""

    statuses: Counter[str] = field(default_factory=Counter)
    peak_rss_mb: float = 0.0
    rounds: int = 0


def _post(url: str, body: bytes, timeout: float = 60) -> str:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except OSError as error:
        return f"connection error ({type(error).__name__})"


def _made_up_method(port: int, length: int) -> str:
    """One request whose method is `length` letters, over a raw socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"X" * length + b" /predict HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        try:
            head = sock.recv(64)
        except OSError as error:
            return f"connection error ({type(error).__name__})"
    parts = head.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "closed"


def attack_bodies(frame: Any, contract: Any, bench: Any) -> tuple[bytes, bytes]:
    """The issue's two oversized-value attacks: a V2 body of 10,000 rows whose first category
    value fills the body up to the limit, and /predict with one 6.5 MB value."""
    wide = json.loads(bench.v2_body(frame.iloc[[i % len(frame) for i in range(10_000)]], contract))
    category = next(c.name for c in contract.features if c.is_categorical)
    column = next(t for t in wide["inputs"] if t["name"] == category)
    column["data"][0] = "x" * (MAX_BODY - len(json.dumps(wide).encode()) - 1024)
    first = records(frame.iloc[:1], contract)[0]
    long_record = json.dumps([dict(first, **{category: "y" * 6_500_000})]).encode()
    return json.dumps(wide).encode(), long_record


def attacker(
    url: str, port: int, pid: int, bodies: tuple[bytes, bytes], infer: str, stop: threading.Event
) -> Attack:
    """Repeat the attacks until `stop`, sampling the server's RSS in a second thread."""
    result = Attack()

    def sample() -> None:
        while not stop.is_set():
            result.peak_rss_mb = max(result.peak_rss_mb, rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    idle = []
    for _ in range(200):
        try:
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            result.statuses["idle connection refused"] += 1
    wide, long_record = bodies
    while not stop.is_set():
        result.statuses[f"wide V2 → {_post(url + infer, wide)}"] += 1
        result.statuses[f"long /predict → {_post(url + '/predict', long_record)}"] += 1
        for i in range(200):
            if stop.is_set():
                break
            result.statuses[f"made-up method → {_made_up_method(port, 1000 + i * 15)}"] += 1
        result.rounds += 1
    for sock in idle:
        sock.close()
    sampler.join()
    return result


@dataclass
class Measured:
    quiet: list[dict[str, float]] = field(default_factory=list)
    attacked: list[dict[str, float]] = field(default_factory=list)
    attack: Attack = field(default_factory=Attack)
    rss_start_mb: float = 0.0
    answers_after: bool = True


@dataclass
class Target:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    infer: str
    measured: Measured = field(default_factory=Measured)


def under_attack(
    bench: Any, target: Target, bodies: tuple[bytes, bytes], one: Path, seconds: float, work: Path
) -> None:
    """One run of ordinary load while the attacker repeats the attacks."""
    stop = threading.Event()
    outcome: list[Attack] = []
    pid = target.process.pid
    thread = threading.Thread(
        target=lambda: outcome.append(
            attacker(target.url, target.port, pid, bodies, target.infer, stop)
        ),
        daemon=True,
    )
    thread.start()
    time.sleep(0.5)  # the idle connections are open before the load starts
    target.measured.attacked.append(bench.load(target.url + target.infer, one, 16, seconds, work))
    stop.set()
    thread.join(120)
    if outcome:
        attack = target.measured.attack
        attack.statuses.update(outcome[0].statuses)
        attack.rounds += outcome[0].rounds
        attack.peak_rss_mb = max(attack.peak_rss_mb, outcome[0].peak_rss_mb)


def measure_all(
    bench: Any,
    servers: dict[str, tuple[Path, Path]],
    onnx_path: Path,
    bodies: tuple[bytes, bytes],
    one: Path,
    seconds: float,
    rounds: int,
    work: Path,
) -> dict[str, Measured]:
    """Every server up at once; runs alternate between them (background load hits all alike):
    per round, each server alone, then each server under attack."""
    infer = f"/v2/models/{bench.default_model_name(ROOT)}/infer"
    with ExitStack() as stack:
        targets: dict[str, Target] = {}
        for name, (code, contract_path) in servers.items():
            port = free_port()
            command = [sys.executable, "-m", "serving", "--model", str(onnx_path)]
            command += ["--contract", str(contract_path), "--port", str(port)]
            command += ["--log-level", "warning"]
            url, process = stack.enter_context(
                bench.server_process(command, port, work / f"{len(targets)}.log", code)
            )
            targets[name] = Target(url, port, process, infer)
        for target in targets.values():
            bench.load(target.url + infer, one, 16, 2, work)  # warm-up
            target.measured.rss_start_mb = rss_mb(target.process.pid)
        for _ in range(rounds):
            for target in targets.values():
                target.measured.quiet.append(bench.load(target.url + infer, one, 16, seconds, work))
            for target in targets.values():
                under_attack(bench, target, bodies, one, seconds, work)
        for target in targets.values():
            try:
                urllib.request.urlopen(f"{target.url}/v2/health/ready", timeout=10)
                target.measured.answers_after = target.process.poll() is None
            except OSError:
                target.measured.answers_after = False
    return {name: target.measured for name, target in targets.items()}


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The repository at `revision` in a temporary worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        path = Path(tmp) / "code"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(path), revision],
            cwd=ROOT,
            check=True,
        )
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)


def bench_median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def row(label: str, values: list[str]) -> str:
    return f"| {label} | " + " | ".join(values) + " |"


def report(results: dict[str, Measured], seconds: float, rounds: int) -> None:
    names = list(results)
    print(
        f"\n| 1-row V2 infer, 16 connections, median of {rounds} × {seconds:g} s | "
        + " | ".join(names)
        + " |"
    )
    print("|---|" + "---:|" * len(names))
    m = list(results.values())
    quiet = [bench_median(r.quiet) for r in m]
    attacked = [bench_median(r.attacked) for r in m]
    print(row("req/s alone", [f"{q['requests_per_s']:,.0f}" for q in quiet]))
    print(row("p99 alone", [f"{q['p99_ms']:.1f} ms" for q in quiet]))
    print(row("req/s under attack", [f"{a['requests_per_s']:,.0f}" for a in attacked]))
    print(row("p99 under attack", [f"{a['p99_ms']:.1f} ms" for a in attacked]))
    print(row("errors under attack", [f"{sum(a['errors'] for a in r.attacked):.0f}" for r in m]))
    print(
        row(
            "RSS before → peak",
            [f"{r.rss_start_mb:.0f} → {r.attack.peak_rss_mb:.0f} MB" for r in m],
        )
    )
    print(row("answers afterwards", ["yes" if r.answers_after else "**no**" for r in m]))
    print()
    for name, r in results.items():
        print(
            f"{name}: {r.attack.rounds} attack rounds; "
            + ", ".join(f"{what} ×{n}" for what, n in sorted(r.attack.statuses.items()))
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=PRE_HARDENING, help="revision to compare, or ''")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bench = serving_bench()
    print(f"attacks benchmark: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-attacks-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        onnx_path, _, test, contract = bench.model_and_rows(work, 20_000, None)
        # Bodies both servers accept: the pre-hardening server did not know id columns yet.
        test = test.drop(columns=[c for c in [contract.id_column] if c in test.columns])
        one = work / "one.json"
        one.write_bytes(bench.v2_body(test.iloc[:1], contract))
        bodies = attack_bodies(test.iloc[:50].reset_index(drop=True), contract, bench)
        servers: dict[str, tuple[Path, Path]] = {}
        if args.before:
            old = stack.enter_context(checkout(args.before))
            servers[f"before ({args.before})"] = (old, old / paths.CONTRACT)
        servers[f"after ({head})"] = (ROOT, ROOT / paths.CONTRACT)
        results = measure_all(
            bench, servers, onnx_path, bodies, one, args.duration, args.rounds, work
        )
    report(results, args.duration, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
