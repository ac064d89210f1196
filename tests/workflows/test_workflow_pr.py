"""pr.yml's `run:` steps in a scratch clone: a real base branch, a real PR branch, real DVC.

`cml` and `npm` are RECORDERS (tests/support/recorders/): the test reads the markdown the workflow
handed to `cml comment update` and checks it says what the pipeline actually measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from report_checks import assert_valid_markdown
from workflow_harness import (
    REPO_ROOT,
    JobResult,
    UsesCall,
    commit_all,
    git,
    run_job,
    scratch_repo,
    set_params,
)

from gitops_ml.review.report import fmt

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "pr.yml"
REPO_NAME = "example/gitops-ml"
# Small and single-threaded: the pipeline's cost here is process start-up, not fitting.
SMALL = {
    "data.rows": 3000,
    "model.hyperparams.max_iter": 40,
    "evaluate.bootstrap_samples": 50,
    "evaluate.cv_folds": 2,
}
pytestmark = pytest.mark.slow


def pipeline_env(repo: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{repo / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{repo / 'src'}{os.pathsep}{repo}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`main` with the pipeline reproduced and its lock, metrics and plots committed."""
    repo = scratch_repo(tmp_path_factory.mktemp("pr_base") / "repo", params=SMALL)
    subprocess.run(
        [str(repo / ".venv" / "bin" / "dvc"), "repro", "--quiet"],
        cwd=repo,
        env=pipeline_env(repo),
        check=True,
    )
    commit_all(repo, "main: pipeline reproduced")
    git(repo, "fetch", "--quiet", "origin")
    return repo


def pr_branch(base: Path, dest: Path, params: dict[str, Any]) -> Path:
    """A copy of `main` (DVC cache included) with a PR commit changing params only."""
    repo = dest / "repo"
    shutil.copytree(base, repo, symlinks=True)
    git(repo, "remote", "set-url", "origin", str(base))
    git(repo, "checkout", "--quiet", "-b", "pr")
    set_params(repo, params)
    commit_all(repo, "pr: change params (dvc.lock not updated)")
    return repo


def run_pr_job(repo: Path, head_repo: str = REPO_NAME) -> tuple[JobResult, list[str]]:
    """The `review` job, then (same-repo PRs) the `comment` job in a workdir of its own: it
    checks nothing out and gets the report only through the artifact, as on GitHub."""
    uploaded: list[str] = []
    store = repo.parent / "artifacts"

    def upload(call: UsesCall) -> None:
        shutil.rmtree(store, ignore_errors=True)
        for line in call.with_["path"].split():
            if (call.workdir / line).exists():
                uploaded.append(line)
                source = call.workdir / line
                target = store / Path(line).relative_to("reports")
                if source.is_dir():
                    shutil.copytree(source, target)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)

    def download(call: UsesCall) -> None:
        shutil.copytree(store, call.workdir / call.with_["path"], dirs_exist_ok=True)

    log = repo.parent / "recorder.jsonl"
    contexts = {
        "github": {
            "event_name": "pull_request",
            "repository": REPO_NAME,
            "base_ref": "main",
            "head_ref": "pr",
            "token": "ghs_recorded_not_real",
            "event": {"pull_request": {"number": 7, "head": {"repo": {"full_name": head_repo}}}},
        },
        "vars": {},
    }
    result = run_job(
        WORKFLOW,
        "review",
        repo,
        contexts=contexts,
        uses={
            "actions/checkout": lambda call: None,  # the scratch clone is the checkout
            "actions/upload-artifact": upload,
        },
        env={"OMP_NUM_THREADS": "1"},
        log=log,
    )
    if head_repo == REPO_NAME:  # the comment job's `if:` (the harness ignores job-level ifs)
        workdir = repo.parent / "comment-job"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir()
        comment = run_job(
            WORKFLOW,
            "comment",
            workdir,
            contexts=contexts,
            uses={"actions/download-artifact": download},
            log=log,
        )
        assert comment.ok, comment.explain()
    return result, uploaded


def comments(result: JobResult) -> list[dict[str, Any]]:
    return [e for e in result.recorded if e["tool"] == "cml"]


def metric_row(markdown: str, metric: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {metric} "))
    return [c.strip() for c in line.strip("|").split("|")]


def evaluation(repo: Path, rev: str | None) -> dict[str, Any]:
    path = "metrics/evaluate.json"
    text = git(repo, "show", f"{rev}:{path}") if rev else (repo / path).read_text()
    return json.loads(text)["test"]


@pytest.fixture(scope="module")
def fewer_trees(base: Path, tmp_path_factory: pytest.TempPathFactory):
    dest = tmp_path_factory.mktemp("pr_fewer")
    repo = pr_branch(base, dest, {"model.hyperparams.max_iter": 20})
    result, uploaded = run_pr_job(repo)
    return repo, result, uploaded


def test_same_repo_pr_posts_one_sticky_comment_with_the_measured_changes(fewer_trees) -> None:
    repo, result, uploaded = fewer_trees
    assert result.ok, result.explain()
    posted = comments(result)
    assert len(posted) == 1
    argv = posted[0]["argv"]
    assert argv[:2] == ["comment", "update"]
    assert "--target=pr/7" in argv and "--publish=false" in argv
    assert "--watermark-title=gitops-ml model report" in argv
    assert posted[0]["step"].startswith("Post or update")
    (npm,) = [e for e in result.recorded if e["tool"] == "npm"]
    assert npm["packages"] == ["@dvcorg/cml@0.20.6"] and "--ignore-scripts" in npm["argv"]
    assert not npm["token_in_env"]  # only the posting step holds the token
    assert posted[0]["token_in_env"]

    md = posted[0]["markdown"]
    assert_valid_markdown(md)
    assert md.startswith("## ✅ All")
    assert "| `model.hyperparams.max_iter` | 40 | 20 |" in md
    old, new = evaluation(repo, "origin/main"), evaluation(repo, None)
    for metric, lower_better in (("roc_auc", False), ("log_loss", True)):
        row = metric_row(md, f"{metric} {'↓' if lower_better else '↑'}")
        assert row[1:3] == [fmt(old[metric]), fmt(new[metric])]
        assert new[metric] != old[metric], "fewer trees should move the metric"
        better = (new[metric] < old[metric]) == lower_better
        assert row[5].startswith("🟢 better" if better else "🔴 worse")
    assert "**Paired comparison**" in md  # the base's model came from the scratch DVC cache
    assert "- **train**: params `model`" in md
    assert "⚠️ **Stale committed outputs**" in md and "`dvc.lock`" in md  # lock not committed
    assert sorted(uploaded) == ["reports/plots_diff/", "reports/pr_report.md"]
    assert result.step(
        "Gates — the report against the base branch (fails when a gate fails)"
    ).status == ("success")


def test_fork_pr_gets_the_report_in_the_job_summary_and_no_comment(fewer_trees) -> None:
    repo, _, _ = fewer_trees  # already reproduced: this run only re-renders
    (repo.parent / "recorder.jsonl").unlink(missing_ok=True)
    result, _ = run_pr_job(repo, head_repo="someone/fork")
    assert result.ok, result.explain()
    assert comments(result) == []
    assert result.summary.startswith("## ✅ All")
    assert "| `model.hyperparams.max_iter` | 40 | 20 |" in result.summary


def test_pr_breaking_a_gate_fails_at_the_gate_step_and_is_still_commented(fewer_trees) -> None:
    """A follow-up commit raises the ROC AUC floor above what the model reaches."""
    repo, _, _ = fewer_trees
    (repo.parent / "recorder.jsonl").unlink(missing_ok=True)
    set_params(repo, {"gates.binary.min.roc_auc": 0.99})
    commit_all(repo, "pr: demand ROC AUC 0.99")
    try:
        result, _ = run_pr_job(repo)
    finally:
        git(repo, "reset", "--quiet", "--hard", "HEAD~1")
    failed = result.failed_step
    assert failed is not None, result.explain()
    assert failed.name.startswith("Gates")
    assert "gate failed: min roc_auc: roc_auc 0." in failed.stderr
    assert "< 0.99" in failed.stderr
    posted = comments(result)
    assert len(posted) == 1  # the comment job runs after a failed review job too
    verdict = posted[0]["markdown"].splitlines()[0]
    assert verdict.startswith("## ❌ 1 of ") and "**min roc_auc**" in verdict
    assert "⚠️ **This PR changes the gates themselves**" in posted[0]["markdown"]
