"""`gitops-ml check-committed`: after a repro, every changed or new output Git would carry is
named, and a clean tree passes; the PR report and the merge job quote the same message."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_repo import git

from gitops_ml.cli import main
from gitops_ml.errors import UserError
from gitops_ml.repo_state import changed_files, stale_message


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    (repo / "metrics" / "evaluate.json").write_text("{}\n")
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    (repo / ".gitignore").write_text("/data/\n")
    git(repo.parent, "init", "--quiet", "--initial-branch=main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "pipeline run")
    return repo


def test_a_clean_tree_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert changed_files(repo) == []
    assert main(["check-committed", "--root", str(repo)]) == 0
    assert "committed outputs match" in capsys.readouterr().out


def test_changed_new_and_renamed_outputs_are_named_once_each_ignored_files_never(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / "plots").mkdir()
    (repo / "plots" / "roc.json").write_text("{}\n")
    (repo / "data").mkdir()
    (repo / "data" / "raw.parquet").write_bytes(b"ignored")
    git(repo, "mv", "metrics/evaluate.json", "metrics/scores.json")

    assert changed_files(repo) == ["dvc.lock", "metrics/scores.json", "plots/roc.json"]
    assert main(["check-committed", "--root", str(repo)]) == 1
    assert capsys.readouterr().err == (
        "error: reproducing the pipeline changed 3 committed file(s): `dvc.lock`, "
        "`metrics/scores.json`, `plots/roc.json`. Run `make run` and commit these.\n"
    )


def test_a_long_list_is_cut_at_twenty_with_the_count() -> None:
    message = stale_message([f"plots/{i:02d}.json" for i in range(23)])

    assert "changed 23 committed file(s)" in message
    assert "`plots/19.json` and 3 more." in message and "plots/20.json" not in message


def test_outside_a_repository_it_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="git status failed in"):
        changed_files(tmp_path)
