"""Drift check on 1 M rows × 25 columns (profile given): wall time and peak extra memory; then
map and merge over 30 M rows of captured prediction logs with 2 workers, with and without
outcomes joined.

Usage: `make bench-drift` (or `.venv/bin/python benchmarks/drift.py [--rows N] [--log-rows N]
[--workers N] [--skip-logs] [--no-single-loop] [--logs DIR]`).
Targets: ≤ 5 s and ≤ 300 MB extra on 2 cores. The check runs in a fresh subprocess that records
its resident memory after imports and profile loading, then its peak after the check, so the
number is what the check itself adds. For scale, the same window goes through Evidently 0.7's
DataDriftPreset when a throwaway environment has it (it needs pandas<3):
    python3 -m venv /tmp/evi && /tmp/evi/bin/pip install 'evidently==0.7.*' 'pandas<3'
Evidently compares raw reference rows in memory rather than a profile; both runs start from
the same Parquet files, and the ratio of wall times is printed.

The map-and-merge part writes `--log-rows` rows of the same contract as the serving capture ships
them (hourly `.jsonl.gz` partitions over 30 days, each line with an id, a time, the features and
a score), plus outcome files (id, timestamp, label) for `--outcome-share` of the predictions.
`gitops-ml drift` runs on them as a fresh process with `--workers N`, then with `--workers 1`
(one process, one accumulator over every file in order: the single loop), with and without
`--labels`. Targets: ≤ 75 s with 2 workers and ≤ 500 MB peak RSS per worker; the two runs'
drift.json equal (numbers within 1e-9 relatively or 1e-12 absolutely: sums added in another
order differ in the last bits). Each process's peak RSS is its kernel high-water mark (VmHWM),
polled while it runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DriftParams, load_params
from gitops_ml.contract import contract_to_dict, load_contract, parse_contract
from gitops_ml.monitor.profile import build_profile, prediction_profile
from gitops_ml.synthetic import generate_churn

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / paths.PARAMS  # the project's drift settings: no defaults in code
EXTRA = 8  # numeric columns added to the 17 churn features: 25 feature columns
EVIDENTLY_PYTHON = os.environ.get("EVIDENTLY_PYTHON", "/tmp/evi/bin/python")

# Peak resident memory of the check alone: note the current RSS, reset the kernel's high-water
# mark (`echo 5 > /proc/self/clear_refs`), run, then read VmHWM. Falls back to ru_maxrss.
MEMORY = textwrap.dedent(
    """
    import resource
    def _status(key):
        try:
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    def start_memory():
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            pass
        return _status("VmRSS")
    def peak_memory():
        return _status("VmHWM")
    """
)

OURS = MEMORY + textwrap.dedent(
    """
    import json, sys, time
    from gitops_ml.contract import load_contract
    from gitops_ml.monitor.drift import check_drift
    from gitops_ml.config import DriftParams, load_params
    from gitops_ml.monitor.profile import load_profile
    from gitops_ml.monitor.readers import expand_sources, iter_chunks
    import scipy.spatial.distance, scipy.stats  # the tests' library: an import, not the check
    work, params = sys.argv[1], sys.argv[2]
    contract = load_contract(work + "/schema.yaml")
    profile = load_profile(work + "/profile.json", contract)
    settings = DriftParams.from_params(load_params(params))
    before = start_memory()
    start = time.perf_counter()
    sources = expand_sources(work + "/current.parquet")
    chunks = iter_chunks(sources, contract, settings.chunk_rows, rows_together=False)
    result = check_drift(profile, contract, chunks, settings)
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": wall, "extra_mb": peak_memory() - before, "rows": result.rows,
                      "verdict": result.verdict, "drifting": result.drifting_features}))
    """
)

PEER = MEMORY + textwrap.dedent(
    """
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    work, numeric, categorical = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    before = start_memory()
    start = time.perf_counter()
    columns = numeric + categorical
    reference = pd.read_parquet(work + "/reference.parquet", columns=columns)
    current = pd.read_parquet(work + "/current.parquet", columns=columns)
    for frame in (reference, current):  # Evidently cannot take bools as numerical columns
        for name in frame.columns[frame.dtypes == bool]:
            frame[name] = frame[name].astype("int8")
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    snapshot.dict()
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": wall, "extra_mb": peak_memory() - before}))
    """
)


def with_extra_columns(frame, seed: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    for i in range(EXTRA):
        frame[f"extra_{i}"] = rng.normal(shift * (i == 0), 1.0, len(frame)).astype(np.float64)
    return frame


def prepare(work: Path, rows: int) -> tuple[list[str], list[str]]:
    """Contract with 25 features, profile of 50,000 reference rows, a drifted 1 M-row window."""
    base = contract_to_dict(load_contract(ROOT / paths.CONTRACT))
    base["columns"] += [
        {"name": f"extra_{i}", "type": "float", "role": "feature", "nullable": False}
        for i in range(EXTRA)
    ]
    contract = parse_contract(base)
    (work / "schema.yaml").write_text(json.dumps(base))  # JSON is valid YAML
    reference = with_extra_columns(generate_churn(50_000, seed=1), seed=1)
    gio.write_parquet(work / "reference.parquet", reference)
    settings = DriftParams.from_params(load_params(PARAMS))
    gio.write_json(work / "profile.json", build_profile(reference, contract, settings))
    current = with_extra_columns(generate_churn(rows, seed=2, scenario="price_increase"), 2, 0.3)
    gio.write_parquet(work / "current.parquet", current)
    return contract.numeric_features, contract.categorical_features


def measure(python: str, script: str, *args: str) -> dict[str, float] | None:
    done = subprocess.run([python, "-c", script, *args], capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


HOURS = 30 * 24  # the capture's hourly partitions over 30 days
FIRST_HOUR = datetime(2026, 11, 1, tzinfo=UTC)
HOUR_MARK = b"2000-01-01T99"  # the template's partition hour, replaced in each file
ID_MARK = b'"id":"PPPPP-'  # the template's id prefix, replaced by the partition's number


def score(frame: Any) -> np.ndarray:
    """A stand-in model's score: the logged prediction and the profile's reference of it."""
    return 1.0 / (1.0 + np.exp(-frame["extra_1"].to_numpy(dtype=np.float64)))


def log_template(rows: int, contract: Any) -> tuple[bytes, np.ndarray]:
    """One hour of prediction-log lines (a drifted window) with marks for the hour and the id
    prefix, and each line's outcome (drawn from its score)."""
    frame = with_extra_columns(generate_churn(rows, seed=2, scenario="price_increase"), 2, 0.3)
    features = frame[contract.feature_names].to_json(orient="records", lines=True).splitlines()
    scores = score(frame)
    lines = [
        f'{{"ts":"{HOUR_MARK.decode()}:{i % 3600 // 60:02d}:{i % 60:02d}Z",'
        f'{ID_MARK.decode()}{i:07d}","features":{line},"prediction":{{"score":{s!r}}}}}'
        for i, (line, s) in enumerate(zip(features, scores.tolist(), strict=True))
    ]
    outcomes = np.random.default_rng(3).random(rows) < scores
    return ("\n".join(lines) + "\n").encode(), outcomes


def write_hour(task: tuple[Path, bytes, int, int, np.ndarray]) -> None:
    """Partition `hour`: the template's lines with this hour's time and ids, gzipped as the
    sidecar ships them; and its outcomes for every `step`-th prediction, a day later."""
    root, template, hour, step, outcomes = task
    start = FIRST_HOUR + timedelta(hours=hour)
    data = template.replace(HOUR_MARK, f"{start:%Y-%m-%dT%H}".encode())
    data = data.replace(ID_MARK, f'"id":"{hour:05d}-'.encode())
    path = root / "captures" / f"date={start:%Y-%m-%d}" / f"hour={start:%H}" / "pod-0.jsonl.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=1, mtime=0))
    known = f"{start + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
    rows = [
        f"{hour:05d}-{i:07d},{known},{'true' if outcomes[i] else 'false'}\n"
        for i in range(0, len(outcomes), step)
    ]
    (root / "outcomes" / f"{start:%Y-%m-%dT%H}.csv").write_text(
        "id,timestamp,label\n" + "".join(rows)
    )


def prepare_logs(work: Path, rows: int, share: float, workers: int) -> None:
    """The captured window and its outcomes (see the module docstring), and the profile's
    reference of the score."""
    per_hour = math.ceil(rows / HOURS)
    contract = parse_contract(json.loads((work / "schema.yaml").read_text()))
    template, outcomes = log_template(per_hour, contract)
    (work / "outcomes").mkdir()
    step = max(1, round(1 / share))
    tasks = [(work, template, hour, step, outcomes) for hour in range(HOURS)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write_hour, tasks))
    profile = json.loads((work / "profile.json").read_text())
    reference = with_extra_columns(generate_churn(50_000, seed=1), seed=1)
    settings = DriftParams.from_params(load_params(PARAMS))
    profile["score"] = prediction_profile(score(reference), contract, settings)
    gio.write_json(work / "profile.json", profile)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _is_worker(pid: int) -> bool:
    """A joblib worker (loky's process), not one of its resource trackers."""
    try:
        return b"popen_loky" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _high_water_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_check(work: Path, workers: int, labels: bool, out: str) -> dict[str, Any]:
    """`gitops-ml drift` as a fresh process: wall time, the peak RSS of the process and of
    each worker it starts, and its drift.json."""
    command = [
        sys.executable, "-m", "gitops_ml.cli", "drift",
        "--current", str(work / "captures"),
        "--profile", str(work / "profile.json"),
        "--contract", str(work / "schema.yaml"),
        "--params", str(PARAMS),
        "--output-dir", str(work / out),
        "--workers", str(workers),
    ]  # fmt: skip
    if labels:
        command += ["--labels", str(work / "outcomes"), "--max-delay", "30d"]
    start = time.perf_counter()
    with open(work / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    peaks: dict[int, float] = {}
    workers: set[int] = set()
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # usage: the whole tree's CPU
        if pid:
            break
        for each in {process.pid} | _descendants(process.pid):
            if each not in workers and _is_worker(each):
                workers.add(each)
            peak = _high_water_mb(each)
            if peak is not None:
                peaks[each] = max(peak, peaks.get(each, 0.0))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"drift failed: {(work / 'stderr.txt').read_text()[-2000:]}")
    result = json.loads((work / out / "drift.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "main_mb": peaks.get(process.pid, 0.0),
        "worker_mb": sorted(peaks[pid] for pid in workers if pid in peaks),
        "result": result,
    }


def same(a: Any, b: Any) -> bool:
    """Two drift.json documents alike: the same keys and text, numbers within 1e-9 of each
    other relatively or 1e-12 absolutely (sums added in another order differ in the last bits,
    and a mean near zero in more of its digits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, int | float) and isinstance(b, int | float)):
            return False
        both_nan = math.isnan(a) and math.isnan(b)
        return both_nan or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def map_and_merge(work: Path, rows: int, workers: int, share: float, single_loop: bool) -> None:
    if (work / "captures").is_dir():
        print(f"reusing the partitions and outcomes in {work}", flush=True)
    else:
        print(
            f"preparing {rows:,} rows of hourly .jsonl.gz partitions and outcomes for "
            f"{share:.0%} of them (not timed)…",
            flush=True,
        )
        prepare(work, 10_000)  # the contract and the profile
        prepare_logs(work, rows, share, workers)
    for labels in (False, True):
        what = "with --labels" if labels else "without labels"
        parallel = run_check(work, workers, labels, f"out-{workers}-{labels}")
        result = parallel["result"]
        print(
            f"{what}: {result['rows']:,} rows, {workers} workers {parallel['wall_s']:.1f} s "
            f"(target ≤ 75 s {'met' if parallel['wall_s'] <= 75 else 'MISSED'}; CPU "
            f"{parallel['cpu_s']:.1f} s, load average {os.getloadavg()[0]:.1f}); peak RSS per "
            f"worker {', '.join(f'{mb:.0f}' for mb in parallel['worker_mb'])} MB (target ≤ 500 "
            f"MB {'met' if max(parallel['worker_mb'], default=0.0) <= 500 else 'MISSED'}), main "
            f"process {parallel['main_mb']:.0f} MB; verdict {result['verdict']}",
            flush=True,
        )
        if labels:
            print(f"  outcomes: {json.dumps(result['outcomes'])}")
        if not single_loop:
            continue
        single = run_check(work, 1, labels, f"out-1-{labels}")
        print(
            f"  single loop: {single['wall_s']:.1f} s (CPU {single['cpu_s']:.1f} s), "
            f"{single['main_mb']:.0f} MB; equal: {same(result, single['result'])}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--log-rows", type=int, default=30_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--outcome-share", type=float, default=0.1)
    parser.add_argument("--skip-logs", action="store_true", help="only the 1 M-row comparison")
    parser.add_argument(
        "--no-single-loop", action="store_true", help="time the workers, skip the single loop"
    )
    parser.add_argument(
        "--logs", type=Path, default=None, help="keep the partitions here (reused when present)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        work = Path(tmp)
        print(f"preparing {args.rows:,} rows × 25 feature columns (not timed)…", flush=True)
        numeric, categorical = prepare(work, args.rows)
        ours = measure(sys.executable, OURS, str(work), str(PARAMS))
        if ours is None:
            return 1
        print(
            f"gitops-ml drift: {ours['wall_s']:.2f} s, peak extra memory {ours['extra_mb']:.0f} MB "
            f"({int(ours['rows']):,} rows; verdict {ours['verdict']}: {ours['drifting']})"
        )
        print(
            f"  targets: ≤ 5 s {'met' if ours['wall_s'] <= 5 else 'MISSED'}, "
            f"≤ 300 MB {'met' if ours['extra_mb'] <= 300 else 'MISSED'}"
        )
        if not args.skip_peer:
            peer_comparison(work, ours, numeric, categorical)
        if not args.skip_logs:
            logs = args.logs or work / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            share, single = args.outcome_share, not args.no_single_loop
            map_and_merge(logs, args.log_rows, args.workers, share, single)
    return 0


def peer_comparison(
    work: Path, ours: dict[str, float], numeric: list[str], categorical: list[str]
) -> None:
    if not Path(EVIDENTLY_PYTHON).exists():
        print(f"Evidently: skipped, {EVIDENTLY_PYTHON} not found (see this file's docstring)")
        return
    peer = measure(EVIDENTLY_PYTHON, PEER, str(work), json.dumps(numeric), json.dumps(categorical))
    if peer is None:
        print("Evidently: failed (stderr above)")
        return
    print(
        f"Evidently 0.7 DataDriftPreset: {peer['wall_s']:.2f} s, peak extra memory "
        f"{peer['extra_mb']:.0f} MB → gitops-ml is {peer['wall_s'] / ours['wall_s']:.1f}× "
        f"faster with {peer['extra_mb'] / max(ours['extra_mb'], 1):.1f}× less memory"
    )


if __name__ == "__main__":
    sys.exit(main())
