"""Drift check on 1 M rows × 25 columns (profile given): wall time and peak extra memory.

Usage: `make bench-drift` (or `.venv/bin/python benchmarks/drift.py [--rows N]`).
Targets: ≤ 5 s and ≤ 300 MB extra on 2 cores. The check runs in a fresh subprocess that records
its resident memory after imports and profile loading, then its peak after the check, so the
number is what the check itself adds. For scale, the same window goes through Evidently 0.7's
DataDriftPreset when a throwaway environment has it (it needs pandas<3):
    python3 -m venv /tmp/evi && /tmp/evi/bin/pip install 'evidently==0.7.*' 'pandas<3'
Evidently compares raw reference rows in memory rather than a profile; both runs start from
the same Parquet files, and the ratio of wall times is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DriftParams, load_params
from gitops_ml.contract import contract_to_dict, load_contract, parse_contract
from gitops_ml.monitor.profile import build_profile
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-peer", action="store_true")
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
        if args.skip_peer:
            return 0
        if not Path(EVIDENTLY_PYTHON).exists():
            print(f"Evidently: skipped, {EVIDENTLY_PYTHON} not found (see this file's docstring)")
            return 0
        peer = measure(
            EVIDENTLY_PYTHON, PEER, str(work), json.dumps(numeric), json.dumps(categorical)
        )
        if peer is None:
            print("Evidently: failed (stderr above)")
            return 0
        print(
            f"Evidently 0.7 DataDriftPreset: {peer['wall_s']:.2f} s, peak extra memory "
            f"{peer['extra_mb']:.0f} MB → gitops-ml is {peer['wall_s'] / ours['wall_s']:.1f}× "
            f"faster with {peer['extra_mb'] / max(ours['extra_mb'], 1):.1f}× less memory"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
