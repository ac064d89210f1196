"""The real DVC pipeline in scratch clones: reproducible and incremental (the experiments run
in tests/docs, as docs/pipeline.md writes them)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from object_store import object_store
from release_repo import clone_repo, reproduced_pipeline, reproduction_output
from workflow_harness import SMALL_PIPELINE, scratch_repo, set_params

from gitops_ml import paths

pytestmark = pytest.mark.slow

DATA_STAGES = ("ingest", "validate", "split", "train", "evaluate", "export", "profile")
STAGES = ("generate", *DATA_STAGES)
UP_TO_DATE = "Data and pipelines are up to date.\n"


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/dvc …` from a shell that never activated the environment (no `.venv/bin` on
    PATH, as on a CI runner or a fresh terminal): the stages find the project's tools alone."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "ITERATIVE_DO_NOT_TRACK": "1"}
    entries = env["PATH"].split(os.pathsep)
    env["PATH"] = os.pathsep.join(e for e in entries if Path(e).parts[-2:] != (".venv", "bin"))
    env.pop("VIRTUAL_ENV", None)
    tool = str(repo / ".venv" / "bin" / "dvc")
    result = subprocess.run(
        [tool, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def stages_run(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def output_hashes(repo: Path) -> dict[str, str]:
    """path → md5 of every stage output recorded in dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def file_bytes(path: Path) -> dict[str, bytes]:
    """The bytes of an output, by file (a directory output, such as plots/, holds several)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


def restore_committed_state(repo: Path) -> None:
    subprocess.run(["git", "checkout", "--", "."], cwd=repo, check=True)
    subprocess.run(["git", "clean", "-fdxq", "--", "data"], cwd=repo, check=True)  # a test's data
    (repo / ".dvc" / "config.local").unlink(missing_ok=True)  # a test's remote credentials
    dvc(repo, "checkout", "--force")


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's cold run (`reproduced_pipeline`: a scratch copy on small params,
    `dvc repro`, committed), in which every stage ran; this module's tests change their copy."""
    cold = reproduction_output(tmp_path_factory)
    assert stages_run(cold) == set(STAGES), cold
    template = reproduced_pipeline(tmp_path_factory)
    return clone_repo(template, tmp_path_factory.mktemp("pipeline") / "repo")


def test_cold_repro_writes_every_declared_output(reproduced: Path) -> None:
    for path in (
        "models/model.onnx",
        "models/model.joblib",
        "metrics/evaluate.json",
        "metrics/export.json",
        "metrics/validation.json",
        "metrics/data.json",
        "reports/model_card.md",
        "plots/roc.json",
    ):
        assert (reproduced / path).is_file(), path


def test_an_unchanged_repro_runs_nothing_and_status_says_up_to_date(reproduced: Path) -> None:
    result = dvc(reproduced, "repro")
    assert stages_run(result.stdout) == set()
    assert all(f"Stage '{stage}' didn't change, skipping" in result.stdout for stage in STAGES)
    assert dvc(reproduced, "status").stdout == UP_TO_DATE
    assert not subprocess.run(
        ["git", "status", "--porcelain"], cwd=reproduced, capture_output=True, text=True
    ).stdout.strip()


def test_a_data_file_of_the_projects_own_is_tracked_and_its_change_named_by_status(
    reproduced: Path,
) -> None:
    """The project's own file, tracked by `gitops-ml source --set`: switching to it reruns what
    reads it, and a change to its content is what `dvc status` names, with the stage it makes
    stale. (The fork test reruns the pipeline from ingest after such a change.)"""
    generated = pd.read_parquet(reproduced / paths.SYNTHETIC_DATA)
    own = "data/customers.parquet"
    generated.to_parquet(reproduced / own, index=False)
    tool = str(reproduced / ".venv" / "bin" / "gitops-ml")
    try:
        subprocess.run([tool, "source", "--set", own], cwd=reproduced, check=True)
        switched = dvc(reproduced, "repro")
        # The same rows: only ingest and export (the model card names the data file) rerun.
        assert stages_run(switched.stdout) == {"ingest", "export"}
        assert dvc(reproduced, "status").stdout == UP_TO_DATE

        generated.head(2500).to_parquet(reproduced / own, index=False)
        assert json.loads(dvc(reproduced, "status", "--json").stdout) == {
            "ingest": [{"changed deps": {own: "modified"}}],
            f"{own}.dvc": [{"changed outs": {own: "modified"}}],
        }
    finally:
        restore_committed_state(reproduced)


def test_pipeline_from_scratch_twice_gives_identical_hashes(
    reproduced: Path, tmp_path: Path
) -> None:
    again = scratch_repo(tmp_path / "again", params=SMALL_PIPELINE)
    dvc(again, "repro")
    first, second = output_hashes(reproduced), output_hashes(again)
    assert first == second
    assert {"data/raw/data.parquet", "models/model.joblib", "models/model.onnx"} <= set(first)
    for metrics in ("metrics/evaluate.json", "metrics/export.json", "reports/model_card.md"):
        assert (reproduced / metrics).read_bytes() == (again / metrics).read_bytes(), metrics


def test_changing_a_model_param_reruns_exactly_the_model_stages(reproduced: Path) -> None:
    set_params(reproduced, {"model.hyperparams.max_iter": 25})
    try:
        result = dvc(reproduced, "repro")
        assert stages_run(result.stdout) == {"train", "evaluate", "export", "profile"}
    finally:
        restore_committed_state(reproduced)


@pytest.fixture()
def s3_server() -> Iterator[str]:
    """A real S3-compatible server (moto) on loopback, with one empty bucket."""
    with object_store("team-dvc") as store:
        yield store.endpoint


def configure_s3_remote(repo: Path, endpoint: str) -> None:
    """Exactly the README's commands for an S3-compatible remote (keys stay in config.local)."""
    dvc(repo, "remote", "add", "--force", "--default", "storage", "s3://team-dvc/churn")
    dvc(repo, "remote", "modify", "storage", "endpointurl", endpoint)
    dvc(repo, "remote", "modify", "--local", "storage", "access_key_id", "testing")
    dvc(repo, "remote", "modify", "--local", "storage", "secret_access_key", "testing")


def test_push_and_pull_round_trip_through_an_s3_remote(
    reproduced: Path, s3_server: str, tmp_path: Path
) -> None:
    configure_s3_remote(reproduced, s3_server)
    pushed = dvc(reproduced, "push")
    assert "pushed" in pushed.stdout.lower()

    clone = tmp_path / "teammate"
    subprocess.run(["git", "clone", "--quiet", str(reproduced), str(clone)], check=True)
    (clone / ".venv").symlink_to(reproduced / ".venv")
    configure_s3_remote(clone, s3_server)
    try:
        dvc(clone, "pull")
        for path in output_hashes(reproduced):
            assert file_bytes(clone / path) == file_bytes(reproduced / path), path
        assert dvc(clone, "status").stdout == UP_TO_DATE
    finally:
        restore_committed_state(reproduced)
