"""A fork switched to data shaped nothing like the generator keeps the whole loop working.

The scratch clone follows the README's "bring your own data" steps with a foreign-shaped CSV
(CamelCase names, Yes/No strings, 0/1 integers, blank numerics, an id, no timestamp): `schema
infer`, `data.source`, `dvc add`, `dvc repro`; then the project-check group and the fast
template tests pass there unchanged, a data change reruns from `ingest` and shows in the PR
report, a bundle is served and smoke-tested, and the drift check reads the raw CSV.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from doc_blocks import block_containing
from foreign_data import write_foreign_csv
from workflow_harness import GIT_IDENTITY, commit_all, git, scratch_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = REPO_ROOT / ".venv" / "bin"
DATA = "data/customers.csv"
# The stages downstream of the data (source runs on every repro: it hashes the data).
DATA_STAGES = ("ingest", "validate", "split", "train", "evaluate", "export", "profile")


def sh(repo: Path, *argv: str, check: bool = True, timeout: float = 600) -> str:
    env = {**os.environ, **GIT_IDENTITY, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        list(argv), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = done.stdout + done.stderr
    if check:
        assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template switched to the foreign CSV by running the README's block, as written."""
    repo = scratch_repo(tmp_path_factory.mktemp("fork") / "repo", project=None)
    write_foreign_csv(repo / DATA)
    block = block_containing(REPO_ROOT / "README.md", "schema infer")
    assert DATA in block
    sh(repo, "bash", "-euo", "pipefail", "-c", block)
    assert not git(repo, "status", "--porcelain").strip(), "the README's block left changes"
    return repo


@pytest.mark.slow
def test_the_fork_reproduces_and_reaches_a_useful_model(fork: Path) -> None:
    evaluation = json.loads((fork / "metrics/evaluate.json").read_text())
    split = json.loads((fork / "metrics/data.json").read_text())
    assert split["split"]["method"] == "stratified"  # no timestamp in the data
    assert evaluation["test"]["roc_auc"] > 0.75
    card = (fork / "reports/model_card.md").read_text()
    assert "Churn" in card and "later time window" not in card


@pytest.mark.slow
def test_project_checks_and_fast_template_tests_pass_in_the_fork(fork: Path) -> None:
    output = sh(
        fork,
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        "tests",
        timeout=900,
    )
    assert " passed" in output and " failed" not in output


def stages_run(output: str) -> list[str]:
    return [stage for stage in DATA_STAGES if f"Running stage '{stage}'" in output]


@pytest.mark.slow
def test_unchanged_data_reruns_nothing(fork: Path) -> None:
    output = sh(fork, "dvc", "repro")
    assert "Running stage 'source'" in output and stages_run(output) == []


@pytest.mark.slow
def test_a_data_change_reruns_from_ingest_and_shows_in_the_report(fork: Path) -> None:
    git(fork, "checkout", "--quiet", "-b", "smaller-data")
    frame = pd.read_csv(fork / DATA, dtype=str, keep_default_na=False)
    frame.head(6000).to_csv(fork / DATA, index=False)
    sh(fork, "dvc", "add", DATA)
    output = sh(fork, "dvc", "repro")
    assert stages_run(output) == list(DATA_STAGES)
    commit_all(fork, "Use the first 6,000 rows")
    sh(fork, "gitops-ml", "report", "--base", "main", "--output", "reports/pr_report.md")
    report = (fork / "reports/pr_report.md").read_text()
    assert "Nothing changed" not in report
    assert "7,000" in report and "6,000" in report  # rows base → PR
    git(fork, "checkout", "--quiet", "main")
    sh(fork, "dvc", "checkout", "--force")


@pytest.mark.slow
def test_the_fork_is_bundled_served_and_smoke_tested(fork: Path) -> None:
    try:
        output = sh(fork, "gitops-ml", "deploy-local", "--ready-timeout", "120")
        assert "deployed" in output and "smoke test" in output
    finally:
        sh(fork, "gitops-ml", "deploy-local", "--stop", check=False)


@pytest.mark.slow
def test_drift_reads_the_raw_csv_the_pipeline_trains_on(fork: Path) -> None:
    sh(
        fork,
        "gitops-ml",
        "drift",
        "--current",
        DATA,
        "--model",
        "models/model.onnx",
        "--output-dir",
        "reports/drift",
    )
    result = json.loads((fork / "reports/drift/drift.json").read_text())
    assert result["verdict"] in ("no_drift", "warn")
    assert result["performance"] is not None and result["performance"]["rows"] > 0
