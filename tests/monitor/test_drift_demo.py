"""docs/monitoring.md's commands run as written: `make drift-demo`, then a check of a rotated log.

In a scratch clone holding the template's fixture project, and again holding a fork's foreign-
shaped project (contract, model, profile and training split), so the commands are shown to work
on any contract and the test does not depend on the live data.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ExportedModel
from doc_blocks import REPO_ROOT, block_containing
from monitor_support import ForeignProject, foreign, write_fixture_profile
from project_fixtures import CONTRACT_PATH, PARAMS_PATH
from workflow_harness import scratch_repo

from gitops_ml import io as gio
from gitops_ml import paths

MONITORING_DOC = REPO_ROOT / "docs" / "monitoring.md"
__all__ = ["foreign"]  # the session fixture, imported for pytest


def _run(repo: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{repo / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _fixture_project(repo: Path, exported_model: ExportedModel) -> None:
    shutil.copyfile(CONTRACT_PATH, repo / paths.CONTRACT)
    shutil.copyfile(exported_model.onnx_path, repo / paths.MODEL_ONNX)
    write_fixture_profile(exported_model, repo / paths.PROFILE)
    gio.write_parquet(repo / paths.TRAIN, exported_model.train_frame)


def _fork_project(repo: Path, project: ForeignProject) -> None:
    shutil.copyfile(project.contract_path, repo / paths.CONTRACT)
    shutil.copyfile(project.onnx_path, repo / paths.MODEL_ONNX)
    shutil.copyfile(project.profile_path, repo / paths.PROFILE)
    gio.write_parquet(repo / paths.TRAIN, project.train_frame)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fixture", "fork"])
def test_the_monitoring_docs_commands_run_as_written(
    exported_model: ExportedModel, foreign: ForeignProject, tmp_path: Path, kind: str
) -> None:
    """The same commands on the template's fixture project and on a fork's foreign data."""
    repo = scratch_repo(tmp_path / "repo", origin=False)
    shutil.copyfile(PARAMS_PATH, repo / paths.PARAMS)
    if kind == "fixture":
        _fixture_project(repo, exported_model)
    else:
        _fork_project(repo, foreign)
    # A day of serving logs, rotated and gzipped: unchanged traffic, scored by the model.
    simulated = _run(
        repo,
        "gitops-ml simulate --rows 2000 --train data/split/train.parquet "
        "--model models/model.onnx --output logs/predictions-0.jsonl",
    )
    assert simulated.returncode == 0, simulated.stderr
    log = repo / "logs" / "predictions-0.jsonl"
    with gzip.open(log.with_suffix(".jsonl.gz"), "wt") as handle:
        handle.write(log.read_text())
    log.unlink()

    done = _run(repo, block_containing(MONITORING_DOC, "make drift-demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    demo, logged = [line for line in done.stdout.splitlines() if "drift verdict:" in line]
    assert demo.startswith("drift verdict: drift (features at alert: ")  # the shifted feature
    assert logged.startswith("drift verdict: no_drift")
    result = json.loads((repo / "reports" / "drift" / "drift.json").read_text())
    assert result["sources"] == ["logs/predictions-0.jsonl.gz"] and result["rows"] == 2000
    assert result["prediction"]["level"] == "ok"  # the logged scores were used
