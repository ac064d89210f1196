"""`gitops-ml report` against real git history and real DVC diffs (no pipeline run needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from dvc.repo import Repo
from project_fixtures import CONTRACT_PATH
from report_checks import assert_valid_markdown
from test_report import EXPORT, ROC, evaluate_doc
from workflow_harness import commit_all, git

from gitops_ml.cli import main

DVC_YAML = {
    "stages": {
        "evaluate": {
            "cmd": "true",  # the files are written by the test; DVC only records them
            "params": ["model"],
            "metrics": [
                {"metrics/evaluate.json": {"cache": False, "persist": True}},
                {"metrics/export.json": {"cache": False, "persist": True}},
            ],
            "plots": [{"plots/roc.json": {"cache": False, "persist": True}}],
        }
    }
}
GATES = {
    "binary": {"min": {"roc_auc": 0.7}, "max_regression": {"roc_auc": 0.01}, "max_label_flips": 0}
}


def write_state(repo: Path, max_iter: int, evaluation: dict[str, Any]) -> None:
    (repo / "params.yaml").write_text(
        yaml.safe_dump({"model": {"max_iter": max_iter}, "gates": GATES})
    )
    for name, doc in (
        ("metrics/evaluate.json", evaluation),
        ("metrics/export.json", EXPORT),
        ("plots/roc.json", ROC),
    ):
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text(json.dumps(doc))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (repo / "data").mkdir(exist_ok=True)
    shutil.copyfile(CONTRACT_PATH, repo / "data" / "schema.yaml")  # the task of the review


def repro(repo: Path) -> None:
    """`dvc repro`, in process: the interpreter is already warm."""
    with Repo(str(repo)) as dvc_repo:
        dvc_repo.reproduce()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    Repo.init(str(root)).close()
    monkeypatch.chdir(root)
    return root


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_param_change_report_from_real_dvc_diffs_and_check_exit_code(repo, capsys) -> None:
    write_state(repo, 250, evaluate_doc(roc=0.86))
    repro(repo)
    commit_all(repo, "base")
    git(repo, "checkout", "--quiet", "-b", "pr")
    write_state(repo, 20, evaluate_doc(roc=0.82, log_loss=0.41))
    repro(repo)  # dvc.lock updated in the workspace but not committed: stale

    code, out, err = report(capsys, "--base", "main", "--output", "out.md", "--check")
    md = (repo / "out.md").read_text()
    assert code == 1
    assert "gate failed: roc_auc regression: roc_auc worse by 0.0400, allowed 0.01" in err
    assert md.startswith("## ❌ 1 of 3 gates failed: **roc_auc regression**")
    assert "| `model.max_iter` | 250 | 20 |" in md
    assert "| roc_auc ↑ | 0.8600 | 0.8200 | -0.0400 (-4.7%) |" in md
    assert "⚠️ **Stale committed outputs**" in md and "`dvc.lock`" in md
    assert "- **evaluate**: params `model`; outputs `metrics/evaluate.json`" in md
    assert "**Unpaired comparison** (the base records no `models/model.onnx` in its" in md
    assert_valid_markdown(md)

    commit_all(repo, "pr: fewer trees, lock committed")
    code, out, _ = report(capsys, "--base", "main")
    assert code == 0  # without --check a failing gate is reported, not an exit status
    assert "Stale" not in out and "Workspace not reproduced" not in out


def test_nothing_changed_against_itself(repo, capsys) -> None:
    write_state(repo, 250, evaluate_doc())
    repro(repo)
    commit_all(repo, "base")
    code, out, _ = report(capsys, "--base", "main", "--check")
    assert code == 0
    assert "**Nothing changed** compared with `main`" in out


def test_first_pr_against_a_base_without_metrics(repo, capsys) -> None:
    (repo / "README.md").write_text("empty project\n")
    commit_all(repo, "base without a pipeline")
    write_state(repo, 250, evaluate_doc())
    repro(repo)
    code, out, _ = report(capsys, "--base", "main", "--check")
    assert code == 0
    assert "| roc_auc ↑ | — | 0.8600 | new (no base value) |" in out
    assert "The base has no `dvc.lock`" in out
    assert_valid_markdown(out)


def test_unknown_base_revision_is_a_clear_error_with_exit_2(repo, capsys) -> None:
    commit_all(repo, "init")
    code, _, err = report(capsys, "--base", "origin/nope")
    assert code == 2
    assert err.startswith("error: unknown base revision 'origin/nope'")
    assert "Traceback" not in err


def test_regression_test_none_says_the_comparison_is_unpaired(repo, capsys) -> None:
    write_state(repo, 250, evaluate_doc())
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["gates"]["regression_test"] = "none"
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    repro(repo)
    commit_all(repo, "base")
    code, out, _ = report(capsys, "--base", "main")
    assert code == 0
    assert "**Unpaired comparison** (`gates.regression_test: none`)" in out
