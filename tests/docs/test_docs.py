"""The README is a front door and the docs hold the rest; every link and command works."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from doc_blocks import REPO_ROOT, bash_blocks, block_containing, doc_files
from release_repo import clone_repo, reproduced_pipeline
from workflow_harness import configure_identity

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
README = REPO_ROOT / "README.md"
PIPELINE_DOC = REPO_ROOT / "docs" / "pipeline.md"
# Every bash block, and the test that runs it.
EXECUTED = {
    (README, "make test"): "test_quick_start_and_experiments_run_as_written",
    (README, "schema infer"): "tests/fork (the fork fixture runs this block)",
    (PIPELINE_DOC, "dvc exp run"): "test_quick_start_and_experiments_run_as_written",
    (REPO_ROOT / "docs" / "monitoring.md", "make drift-demo"): "tests/monitor/test_drift_demo.py",
}


def test_the_readme_is_a_front_door_of_at_most_12000_characters() -> None:
    assert len(README.read_text()) <= 12_000


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for path in doc_files():
        for target in LINK.findall(path.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{path.relative_to(REPO_ROOT)} → {target}")
    assert not broken, broken


def test_every_bash_block_is_run_by_a_test() -> None:
    unrun = []
    for path in doc_files():
        for block in bash_blocks(path):
            if not any(p == path and marker in block for p, marker in EXECUTED):
                unrun.append(f"{path.relative_to(REPO_ROOT)}: {block.splitlines()[0]}")
    assert not unrun, f"bash blocks no test runs (make them ```text if illustrative): {unrun}"


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    assert "make test" in block_containing(README, "make test")
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().endswith("make test")


@pytest.mark.slow
def test_quick_start_and_experiments_run_as_written(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """In a copy of the session's cold run on small params (`reproduced_pipeline`, which
    tests/pipeline checks stage by stage): `make run` finds the pipeline up to date and prints
    its summary, then each experiment runs the model stages on its params."""
    repo = clone_repo(reproduced_pipeline(tmp_path_factory), tmp_path / "repo")
    configure_identity(repo)  # `dvc exp run` commits; a GitHub-hosted runner has no identity
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env.pop("VIRTUAL_ENV", None)
    quick = block_containing(README, "make test").replace("make test", "true  # CI runs make test")
    for block in (quick, block_containing(PIPELINE_DOC, "dvc exp run")):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{block}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    shown = subprocess.run(
        [".venv/bin/dvc", "exp", "show", "--json"], cwd=repo, capture_output=True, text=True
    )
    experiments = {
        exp.get("name"): exp["data"]
        for commit in json.loads(shown.stdout)
        for group in commit.get("experiments") or []
        for exp in group.get("revs", [])
    }
    assert {"more-trees", "forest"} <= set(experiments), shown.stdout[-3000:]
    forest = experiments["forest"]  # listed with the params it ran with and their metrics
    assert forest["params"]["params.yaml"]["data"]["model"]["type"] == "random_forest"
    metrics = forest["metrics"]["metrics/evaluate.json"]["data"]["test"]
    assert 0.5 < metrics["roc_auc"] <= 1.0
