"""Every stage declares every file it reads: a change to any of them reruns the stage.

Each stage of dvc.yaml runs once, in order, on small fixture data under an audit hook
(tests/support/stage_audit.py); any project file it read that dvc.yaml does not list as one of
its deps fails the test — data, the contract, params.yaml (through its `params:`) and each
source module of gitops_ml it imports (the CLI dispatcher and package `__init__` files aside).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from project_fixtures import FIXTURES, dvc_stages
from workflow_harness import set_params

from gitops_ml import paths

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
SERVING = REPO_ROOT / "serving"
AUDIT = REPO_ROOT / "tests" / "support" / "stage_audit.py"
SMALL = {
    "data.rows": 1500,
    "evaluate.bootstrap_samples": 20,
    "evaluate.refits": 2,  # the fewest that run the refit path, whose reads are audited too
    "evaluate.cv_folds": 2,
    "model.hyperparams.max_iter": 15,
}
NOT_DEPENDENCIES = ("src/gitops_ml/cli.py",)


def _relative(path: str, workdir: Path) -> str | None:
    """A project file as dvc.yaml names it, or None for files outside the project."""
    real = Path(path)
    if "__pycache__" in real.parts:  # a compiled module stands for its source file
        real = real.parent.parent / (real.name.split(".")[0] + ".py")
    for root, prefix in ((SRC, "src/"), (SERVING, "serving/"), (workdir.resolve(), "")):
        try:
            name = real.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if prefix != "" and (name.endswith("__init__.py") or not name.endswith(".py")):
            return None
        return prefix + name
    return None


@pytest.mark.slow
def test_each_stage_reads_only_files_it_declares(tmp_path: Path) -> None:
    shutil.copyfile(REPO_ROOT / paths.DVC_YAML, tmp_path / "dvc.yaml")
    (tmp_path / "data").mkdir()
    shutil.copyfile(FIXTURES / "churn" / "schema.yaml", tmp_path / paths.CONTRACT)
    shutil.copyfile(FIXTURES / "churn" / "params.yaml", tmp_path / paths.PARAMS)
    set_params(tmp_path, SMALL)
    stages = dvc_stages(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests" / "support")}
    undeclared: dict[str, list[str]] = {}
    for name, spec in stages.items():
        record = tmp_path / f".{name}.audit.json"
        argv = [sys.executable, str(AUDIT), str(record), *spec["cmd"].split()]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
        declared = {next(iter(d)) if isinstance(d, dict) else d for d in spec.get("deps", [])}
        if spec.get("params"):
            declared.add(paths.PARAMS)
        opened = {_relative(p, tmp_path) for p in json.loads(record.read_text())}
        read = {p for p in opened if p and not p.startswith(".") and p not in NOT_DEPENDENCIES}
        missing = sorted(read - declared)
        if missing:
            undeclared[name] = missing
    assert not undeclared, f"files read but not declared in dvc.yaml: {undeclared}"


def test_the_committed_lock_records_every_committed_dependency_as_it_is() -> None:
    """dvc.lock is committed with the code: a change to a stage's module (or the contract)
    without `dvc repro` would leave a fresh clone's `dvc status` naming that stage as changed,
    though every output is as the lock says."""
    lock = yaml.safe_load((REPO_ROOT / "dvc.lock").read_text())
    committed = set(
        subprocess.run(
            ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    stale = [
        f"{stage}: {dep['path']}"
        for stage, body in lock["stages"].items()
        for dep in body.get("deps", [])
        if dep["path"] in committed
        and hashlib.md5((REPO_ROOT / dep["path"]).read_bytes()).hexdigest() != dep["md5"]
    ]

    assert not stale, f"dvc.lock is behind the code; run `dvc repro` and commit it: {stale}"
