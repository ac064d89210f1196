"""Pipeline benchmark: each stage's time and peak memory at two table sizes, the slope per
million rows and the largest table a runner's memory takes; or (`--repro`) DVC's cold, no-op
and model-change timings on the default data. Both in a fresh clone of the committed repository.

Usage: make bench-pipeline  (or .venv/bin/python benchmarks/pipeline.py [--rows N N]
                                 [--stages evaluate ...] [--set evaluate.jobs=1 ...])
       .venv/bin/python benchmarks/pipeline.py --repro [--rows N]
Targets: every stage's peak ≤ 1.2 GB per million rows; on 2 cores cold repro ≤ 90 s, no-op ≤ 5 s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_ml import paths
from gitops_ml.params_edit import set_params_file

REPO = Path(__file__).resolve().parents[1]
COLD_TARGET_S = 90.0
NOOP_TARGET_S = 5.0
SIZES = (1_000_000, 3_000_000)  # generator rows (data.rows) of the two measured tables
PEAK_TARGET_GB_PER_M = 1.2  # every stage's peak RSS per million table rows
RUNNER_GB = 16.0  # a standard hosted runner: 4 cores, 16 GB
GB = 1e9


def clone(scratch: Path) -> Path:
    """A fresh clone of the committed repository that runs this checkout's environment."""
    repo = scratch / "repo"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(repo)], check=True)
    (repo / ".venv").symlink_to(REPO / ".venv")
    return repo


def environment(repo: Path) -> dict[str, str]:
    """The commands' environment: the clone's own code ahead of the checkout's (an edit made
    while a long run goes on does not leak into it), the checkout's tools on PATH."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "ITERATIVE_DO_NOT_TRACK": "1"}
    env["PYTHONPATH"] = str(repo / "src")
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env['PATH']}"
    return env


def set_params(repo: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Set `changes` ({"data.rows": …}) in the clone's params.yaml; returns the params."""
    params_path = repo / paths.PARAMS
    set_params_file(params_path, changes)
    params: dict[str, Any] = yaml.safe_load(params_path.read_text())
    return params


# ------------------------------------------------------------------------ per-stage memory


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_bytes: int


def measured(repo: Path, command: Sequence[str], log: Path) -> Measured:
    """Wall time and peak resident memory of `command` run in `repo` (its own rusage, from
    wait4: what `/usr/bin/time -v` calls the maximum resident set size)."""
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=repo, env=environment(repo), stdout=out, stderr=out)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed:\n{log.read_text()}")
    per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return Measured(seconds, usage.ru_maxrss * per_unit)


def table_stages(repo: Path) -> list[tuple[str, list[str]]]:
    """(name, command) of every dvc.yaml stage that reads or writes a table, in file order."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]

    def touches_table(stage: dict[str, Any]) -> bool:
        entries = [*stage.get("deps", []), *stage.get("outs", [])]
        names = [e if isinstance(e, str) else next(iter(e)) for e in entries]
        return any(name.endswith(".parquet") for name in names)

    return [
        (name, shlex.split(stage["cmd"])) for name, stage in stages.items() if touches_table(stage)
    ]


def stage_run(
    repo: Path, rows: int, logs: Path, only: Sequence[str] | None = None
) -> dict[str, Measured]:
    """The table stages in order on `rows` generated rows, up to the last of `only` (every
    stage when None); those before run for their outputs, only the named ones are reported."""
    set_params(repo, {"data.rows": rows})
    stages = table_stages(repo)
    if only is not None:
        last = max(i for i, (name, _) in enumerate(stages) if name in only)
        stages = stages[: last + 1]
    out = {}
    for name, command in stages:
        result = measured(repo, command, logs / f"{rows}-{name}.log")
        if only is not None and name not in only:
            continue
        out[name] = result
        print(
            f"  {rows:>12,} rows  {name:<10}{out[name].seconds:>8.1f} s"
            f"{out[name].peak_bytes / GB:>8.2f} GB",
            flush=True,
        )
    return out


def slopes(
    small: int, large: int, a: dict[str, Measured], b: dict[str, Measured]
) -> dict[str, tuple[float, float, float]]:
    """Per stage: seconds and peak GB per million rows between the two sizes, and the peak's
    intercept (GB at zero rows: the interpreter, libraries, models)."""
    millions = (large - small) / 1e6
    out = {}
    for name in a:
        seconds = (b[name].seconds - a[name].seconds) / millions
        gb = (b[name].peak_bytes - a[name].peak_bytes) / GB / millions
        out[name] = (seconds, gb, a[name].peak_bytes / GB - gb * small / 1e6)
    return out


def stages_main(
    sizes: Sequence[int], changes: dict[str, Any], only: Sequence[str] | None = None
) -> int:
    small, large = sorted(sizes)
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        repo = clone(scratch)
        params = set_params(repo, changes)
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
        changed = ", ".join(f"{k}={v}" for k, v in changes.items()) or "none"
        print(
            f"pipeline stages: {os.cpu_count()} cores, {memory:.1f} GB, evaluate.jobs "
            f"{params['evaluate']['jobs']}, params changed: {changed}; generator data at "
            f"{small:,} and {large:,} rows; each stage is its dvc.yaml command",
            flush=True,
        )
        logs = scratch / "logs"
        logs.mkdir()
        known = [name for name, _ in table_stages(repo)]
        unknown = sorted(set(only or ()) - set(known))
        if unknown:
            sys.exit(f"--stages: {unknown} are not table stages of dvc.yaml; choose from {known}")
        runs = {rows: stage_run(repo, rows, logs, only) for rows in (small, large)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    per = slopes(small, large, runs[small], runs[large])
    head = f"{'stage':<10}"
    for rows in (small, large):
        head += f"{f'{rows / 1e6:g}M s':>10}{f'{rows / 1e6:g}M GB':>9}{'GB/M':>7}"
    print(f"\n{head}{'s per M':>10}{'GB per M':>10}")
    ok = True
    largest: list[tuple[float, str]] = []
    for name, (seconds, gb, intercept) in per.items():
        line = f"{name:<10}"
        for rows in (small, large):
            m = runs[rows][name]
            ratio = m.peak_bytes / GB / (rows / 1e6)
            ok = ok and ratio <= PEAK_TARGET_GB_PER_M
            line += f"{m.seconds:>10.1f}{m.peak_bytes / GB:>9.2f}{ratio:>7.2f}"
        print(f"{line}{seconds:>10.1f}{gb:>10.3f}")
        if gb > 0:
            largest.append(((RUNNER_GB - intercept) / gb, name))
    print(
        f"(GB/M = peak / million rows, target ≤ {PEAK_TARGET_GB_PER_M}; per M = the slope "
        f"between the two sizes)"
    )
    rows_m, stage = min(largest)
    total = sum(runs[large][name].seconds for name in per) / 60  # of the reported stages
    print(
        f"\nextrapolated from the slopes (intercept + slope × rows ≤ {RUNNER_GB:g} GB): the "
        f"largest table a {RUNNER_GB:g} GB machine takes at these evaluate.jobs is "
        f"~{rows_m:.0f}M rows, set by {stage}; the {large / 1e6:g}M run took {total:.0f} min"
    )
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


# ------------------------------------------------------------------------ dvc repro timings


def timed(repo: Path, *command: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=repo, env=environment(repo), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def repro_main(rows: int | None) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        repo = clone(scratch)
        params = set_params(repo, {"data.rows": rows} if rows else {})
        print(
            f"pipeline benchmark: {params['data']['rows']:,} rows, {os.cpu_count()} cores, "
            "fresh clone, empty cache"
        )
        # --force: committed metrics of an identical earlier run would otherwise let DVC skip
        # evaluate (correctly, its inputs are unchanged); a cold run should do all the work.
        cold, _ = timed(repo, "dvc", "repro", "--force")
        noop, noop_out = timed(repo, "dvc", "repro")
        max_iter = int(params["model"]["hyperparams"].get("max_iter", 100)) // 2
        set_params(repo, {"model.hyperparams.max_iter": max_iter})
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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repro", action="store_true", help="DVC timings instead of stages")
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=None,
        help=f"table sizes (default {SIZES[0]:,} and {SIZES[1]:,}); with --repro one size "
        "(default: params.yaml's data.rows)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        default=None,
        metavar="STAGE",
        help="report only these table stages (e.g. evaluate); the stages before them run "
        "unreported for their outputs, the ones after not at all",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="change a param of the clone (a YAML value), e.g. evaluate.jobs=1",
    )
    args = parser.parse_args()
    changes = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            parser.error(f"--set {item!r}: expected SECTION.KEY=VALUE")
        changes[key] = yaml.safe_load(value)
    if args.repro:
        if args.rows and len(args.rows) != 1:
            parser.error("--repro takes one --rows")
        return repro_main(args.rows[0] if args.rows else None)
    sizes = args.rows or list(SIZES)
    if len(sizes) != 2 or len(set(sizes)) != 2:
        parser.error("--rows takes two different table sizes")
    return stages_main(sizes, changes, args.stages)


if __name__ == "__main__":
    sys.exit(main())
