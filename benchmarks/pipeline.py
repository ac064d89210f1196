"""Pipeline timings on the default data: cold `dvc repro`, no-op `dvc repro`, rerun after a
`model.*` change — measured in one run, in a fresh clone of the committed repository.

Usage: make bench-pipeline  (or .venv/bin/python benchmarks/pipeline.py [--rows N])
Targets on 2 cores: cold ≤ 90 s, no-op ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from gitops_ml import paths
from gitops_ml.params_edit import set_params_file

REPO = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 90.0
NOOP_TARGET_S = 5.0


def timed(repo: Path, *command: str) -> tuple[float, str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "ITERATIVE_DO_NOT_TRACK": "1"}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env['PATH']}"
    started = time.perf_counter()
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="override data.rows")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    repo = scratch / "repo"
    try:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(repo)], check=True)
        params_path = repo / paths.PARAMS
        if args.rows:
            set_params_file(params_path, {"data.rows": args.rows})
        params = yaml.safe_load(params_path.read_text())
        rows = params["data"]["rows"]
        print(
            f"pipeline benchmark: {rows:,} rows, {os.cpu_count()} cores, fresh clone, empty cache"
        )
        # --force: committed metrics of an identical earlier run would otherwise let DVC skip
        # evaluate (correctly, its inputs are unchanged); a cold run should do all the work.
        cold, _ = timed(repo, "dvc", "repro", "--force")
        noop, noop_out = timed(repo, "dvc", "repro")
        max_iter = int(params["model"]["hyperparams"]["max_iter"]) // 2
        set_params_file(params_path, {"model.hyperparams.max_iter": max_iter})
        model_change, out = timed(repo, "dvc", "repro")
        reran = [
            line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")
        ]
        print()
        print(f"{'measurement':<30}{'seconds':>9}{'target':>9}{'ratio':>8}")
        for name, seconds, target in (
            ("cold dvc repro", cold, COLD_TARGET_S),
            ("no-op dvc repro", noop, NOOP_TARGET_S),
            ("rerun after model.* change", model_change, cold),
        ):
            print(f"{name:<30}{seconds:>9.1f}{target:>9.1f}{seconds / target:>8.2f}")
        print("(ratio = seconds / target; for the model change the reference is the cold run)")
        print(f"\nstages rerun after the model change: {', '.join(reran)}")
        ok = cold <= COLD_TARGET_S and noop <= NOOP_TARGET_S and "up to date" in noop_out.lower()
        print("targets met" if ok else "TARGETS MISSED")
        return 0 if ok else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
