"""drift.yml's `run:` steps in a scratch clone, with RECORDERS standing in for `gh`.

A drifted window opens one `model-drift` issue; the next drifted run finds it by label and
updates it instead of opening a duplicate; a clean window touches no issue at all.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
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
from gitops_ml.monitor.readers import ModelScorer
from gitops_ml.monitor.simulate import Window, prediction_log_lines
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


def _check(
    repo: Path,
    scenario: str,
    run_id: int,
    issues: list[dict[str, Any]],
    variables: dict[str, str] | None = None,
) -> JobResult:
    log = repo.parent / f"recorder-{run_id}.jsonl"
    source = "" if variables else "simulate"  # a schedule passes no inputs: vars decide
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
            "inputs": {"scenario": scenario, "source": source, "retrain": False},
            "vars": variables or {},
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
            "needs": {"check": {"outputs": {"drift": "true", "retrain": "true"}}},
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
    ingest_deps = {dep["path"] for dep in lock["stages"]["ingest"]["deps"]}
    assert "data/retrain/data.parquet" in ingest_deps  # DVC tracks the new data as ingest's input
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


CAPTURED_ROWS = 600  # per captured hour


def _captured_hour(
    exported_model: ExportedModel, when: datetime, scenario: str, n: int, rows: int
) -> tuple[bytes, pd.DataFrame]:
    """One shipped capture file (the serving format, gzipped, as the sidecar writes it) and
    the outcomes of its predictions, as the team's systems record them a day later."""
    contract = exported_model.contract
    start = when.date().isoformat()
    frame = generate_churn(rows, 300 + n, scenario, start=start, days=1)
    truth = frame[contract.target].to_numpy(dtype=bool)
    frame = frame.drop(columns=[contract.target])
    scores = ModelScorer(exported_model.onnx_path, contract).score(frame)
    stamps = pd.Series([when.replace(tzinfo=None) + timedelta(seconds=i) for i in range(rows)])
    lines = []
    for line in prediction_log_lines(Window(frame, scores, [], stamps), contract, "churn-model"):
        record = json.loads(line)
        record["id"] = record["request_id"]  # the server echoes the contract's id column
        lines.append(json.dumps(record))
    outcomes = pd.DataFrame(
        {
            "id": frame[contract.id_column].astype(str),
            "timestamp": f"{when + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
            "label": np.where(truth, "true", "false"),
        }
    )
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), outcomes


def _capture_store(
    root: Path, exported_model: ExportedModel, hours: dict[datetime, tuple[str, int]]
) -> pd.DataFrame:
    """Captured hours (when → scenario, rows) under root/predictions; their outcomes."""
    outcomes = []
    for n, (when, (scenario, rows)) in enumerate(hours.items()):
        part = root / "predictions" / f"date={when:%Y-%m-%d}" / f"hour={when:%H}"
        part.mkdir(parents=True)
        shipped, known = _captured_hour(exported_model, when, scenario, n, rows)
        (part / f"pod-a-1795000000000-{n:06d}.jsonl.gz").write_bytes(shipped)
        outcomes.append(known)
    return pd.concat(outcomes, ignore_index=True)


def test_with_capture_url_set_a_scheduled_run_reads_the_last_seven_days_of_captures(
    repo: Path, exported_model: ExportedModel
) -> None:
    """The real-deployment default: vars.CAPTURE_URL set, no inputs → `--since 7d` over the
    shipped partitions. A price increase captured 10 days ago lies outside the window (read
    with `CAPTURE_SINCE=30d` it turns the verdict to a warning)."""
    store = repo.parent / "captures"
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    _capture_store(
        store,
        exported_model,
        {  # when → (scenario, rows)
            now - timedelta(days=1): ("none", CAPTURED_ROWS),
            now - timedelta(days=3): ("none", CAPTURED_ROWS),
            now - timedelta(days=10): ("price_increase", 4 * CAPTURED_ROWS),
        },
    )

    result = _check(repo, "", 4, issues=[], variables={"CAPTURE_URL": str(store / "predictions")})

    assert result.ok, result.explain()
    assert result.step("Get the current window").outputs["current"] == str(store / "predictions")
    assert result.outputs["drift"]["verdict"] == "no_drift"
    drift = gio.read_json(repo / "reports" / "drift" / "drift.json")
    assert drift["rows"] == 2 * CAPTURED_ROWS
    assert all("date=" in source for source in drift["sources"])
    assert _gh(result, "issue", "create") == []


def test_capture_mode_retraining_trains_on_the_window_the_check_read_with_its_outcomes(
    repo: Path, exported_model: ExportedModel, tmp_path: Path
) -> None:
    """The production default end to end: the check reads the last 7 days of captures joined
    with their outcomes and, retraining being on, writes that labelled window to WINDOW_DIR
    (the captures themselves stay in the store); the retraining job, given the check's
    artifact, appends exactly those rows to the training data and retrains."""
    contract = exported_model.contract
    store = tmp_path / "store"
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    outcomes = _capture_store(
        store,
        exported_model,
        {
            now - timedelta(days=2): ("price_increase", CAPTURED_ROWS),
            now - timedelta(days=12): ("none", CAPTURED_ROWS),  # before the 7 days
        },
    )
    (store / "outcomes").mkdir()
    outcomes.to_csv(store / "outcomes" / "known.csv", index=False)
    variables = {
        "CAPTURE_URL": str(store / "predictions"),
        "OUTCOMES_URL": str(store / "outcomes"),
        "DRIFT_RETRAIN": "true",
    }

    check = _check(repo, "", 5, issues=[], variables=variables)

    assert check.ok, check.explain()
    saved = Path(check.env["WINDOW_DIR"]) / "window.parquet"
    window = pd.read_parquet(saved)
    assert len(window) == CAPTURED_ROWS
    assert list(window.columns) == contract.names
    assert window[contract.target].notna().all()  # every prediction's outcome joined
    assert window[contract.timestamp].notna().all() and window[contract.id_column].is_unique

    def download_artifact(call: UsesCall) -> None:
        """upload-artifact roots reports/drift/ and the window at their common ancestor."""
        root = Path(call.with_["path"])
        shutil.copytree(repo / "reports" / "drift", root / "repo" / "reports" / "drift")
        shutil.copytree(saved.parent, root / "_temp" / "window")

    retrain_repo = scratch_repo(tmp_path / "repo", params=SMALL_PIPELINE)
    log = tmp_path / "recorder.jsonl"
    result = run_job(
        WORKFLOW,
        "retrain",
        retrain_repo,
        contexts={
            "github": {"event_name": "schedule", "repository": "example/gitops-ml", "run_id": 78},
            "vars": variables,
            "needs": {"check": {"outputs": check.outputs["drift"] | {"retrain": "true"}}},
        },
        uses={"actions/download-artifact": download_artifact},
        env=recorder_env(log),
        log=log,
    )

    assert result.ok, result.explain()
    retrained = pd.read_parquet(retrain_repo / "data" / "retrain" / "data.parquet")
    assert len(retrained) == 3000 + CAPTURED_ROWS
    assert set(window[contract.id_column]) <= set(retrained[contract.id_column])
    assert (retrain_repo / "models" / "model.onnx").is_file()
