"""drift.yml's `run:` steps in a scratch clone, with RECORDERS standing in for `gh`.

A drifted window opens one `model-drift` issue; the next drifted run finds it by label and
updates it instead of opening a duplicate; a clean window touches no issue at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import REPO_ROOT, ExportedModel
from project_fixtures import drift_settings
from workflow_harness import (
    SMALL_PIPELINE,
    JobResult,
    UsesCall,
    recorder_env,
    run_job,
    scratch_repo,
)

from gitops_ml import io as gio
from gitops_ml.monitor.profile import build_model_profile
from gitops_ml.synthetic import generate_churn

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "drift.yml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(exported_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch clone holding the fixture model and its profile where the pipeline puts them."""
    repo = scratch_repo(tmp_path_factory.mktemp("drift_wf") / "repo")
    models = repo / "models"
    models.mkdir(exist_ok=True)
    shutil.copyfile(exported_model.onnx_path, models / "model.onnx")
    profile = build_model_profile(
        exported_model.train_frame, exported_model.contract, drift_settings(), models / "model.onnx"
    )
    gio.write_json(models / "reference_profile.json", profile)
    gio.write_parquet(repo / "data" / "split" / "train.parquet", exported_model.train_frame)
    return repo


def _check(repo: Path, scenario: str, run_id: int, issues: list[dict[str, Any]]) -> JobResult:
    log = repo.parent / f"recorder-{run_id}.jsonl"
    return run_job(
        WORKFLOW,
        "check",
        repo,
        contexts={
            "github": {
                "event_name": "workflow_dispatch",
                "repository": "example/gitops-ml",
                "run_id": run_id,
                "ref": "refs/heads/main",
            },
            "inputs": {"scenario": scenario, "source": "simulate", "retrain": False},
        },
        env=recorder_env(log, gh_issues=issues),
        log=log,
    )


def _gh(result: JobResult, *prefix: str) -> list[dict[str, Any]]:
    return [
        e for e in result.recorded if e["tool"] == "gh" and e["argv"][: len(prefix)] == list(prefix)
    ]


def test_drifted_runs_open_one_issue_then_update_it_and_a_clean_run_opens_nothing(
    repo: Path,
) -> None:
    first = _check(repo, "shift:monthly_charges=+1sd", 1, issues=[])
    assert first.ok, first.explain()
    assert first.outputs["drift"]["drift"] == "true"
    assert first.outputs["drift"]["verdict"] == "drift"
    (created,) = _gh(first, "issue", "create")
    assert created["argv"][created["argv"].index("--label") + 1] == "model-drift"
    assert created["title"] == "Model drift: monthly_charges"
    assert created["body"].startswith("# 🔴 Drift detected")
    assert "actions/runs/1" in created["body"]
    (listed,) = _gh(first, "issue", "list")
    assert listed["argv"][listed["argv"].index("--label") + 1] == "model-drift"
    assert "# 🔴 Drift detected" in first.summary  # the job summary carries the report too

    url = first.step("Open or update the one model-drift issue").stdout.strip().splitlines()[-1]
    number = url.rsplit("/", 1)[1]
    open_issue = {"number": int(number), "title": created["title"], "state": "OPEN"}
    second = _check(repo, "new_category:plan", 2, issues=[open_issue])
    assert second.ok, second.explain()
    assert _gh(second, "issue", "create") == []
    (edited,) = _gh(second, "issue", "edit", number)
    assert "`plan`" in edited["body"] and "actions/runs/2" in edited["body"]
    (comment,) = _gh(second, "issue", "comment", number)
    assert "actions/runs/2" in comment["body"]

    clean = _check(repo, "none", 3, issues=[open_issue])
    assert clean.ok, clean.explain()
    assert clean.outputs["drift"] == {
        "drift": "false",
        "verdict": "no_drift",
        "features": "",
        "report": "reports/drift/drift.md",
    }
    assert [e for e in clean.recorded if e["tool"] == "gh"] == []
    assert clean.step("Open or update the one model-drift issue").status == "skipped"


def test_retraining_mode_opens_one_pull_request_with_the_retrained_pipeline(
    tmp_path: Path,
) -> None:
    repo = scratch_repo(tmp_path / "repo", params=SMALL_PIPELINE)  # retraining reruns it all
    window = generate_churn(800, seed=5, scenario="price_increase", start="2026-01-01", days=30)
    report = "# 🔴 Drift detected\n\n`monthly_charges` moved.\n"

    def download_artifact(call: UsesCall) -> None:
        """The check job's artifact, laid out as upload-artifact roots two paths."""
        root = Path(call.with_["path"])
        (root / "repo" / "reports" / "drift").mkdir(parents=True)
        (root / "repo" / "reports" / "drift" / "drift.md").write_text(report)
        (root / "_temp" / "window").mkdir(parents=True)
        window.to_parquet(root / "_temp" / "window" / "window.parquet")

    log = tmp_path / "recorder.jsonl"
    result = run_job(
        WORKFLOW,
        "retrain",
        repo,
        contexts={
            "github": {
                "event_name": "workflow_dispatch",
                "repository": "example/gitops-ml",
                "run_id": 77,
                "ref": "refs/heads/main",
                "token": "t",
            },
            "inputs": {"scenario": "price_increase", "source": "simulate", "retrain": True},
            "needs": {"check": {"outputs": {"drift": "true"}}},
        },
        uses={"actions/download-artifact": download_artifact},
        env=recorder_env(log),
        log=log,
    )
    assert result.ok, result.explain()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["data"]["source"] == "data/retrain/data.parquet"
    retrained = pd.read_parquet(repo / "data" / "retrain" / "data.parquet")
    assert len(retrained) == 3000 + len(window)
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    ingest_params = lock["stages"]["ingest"]["params"]["params.yaml"]
    assert ingest_params["data.source"] == "data/retrain/data.parquet"
    assert (repo / "models" / "model.onnx").is_file()

    cml = [e for e in result.recorded if e["tool"] == "cml"]
    (created,) = [e for e in cml if e["argv"][:2] == ["pr", "create"]]
    assert "--branch" in created["argv"] and "retrain/drift-77" in created["argv"]
    assert {"params.yaml", "dvc.lock", "data/retrain"} <= set(created["files"])
    (comment,) = [e for e in cml if e["argv"][:2] == ["comment", "create"]]
    assert "--target=pr/42" in comment["argv"]
    assert comment["markdown"] == report
    assert "Retraining pull request: https://github.com/example/gitops-ml/pull/42" in (
        result.summary
    )
