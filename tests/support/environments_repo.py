"""A release repo that also holds this project's environment overlays (deploy/) and their base
(serving/k8s), for the environment, status, promotion and demo tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from release_repo import GIT_ENV, commit_all, make_release_repo

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_environments_repo(repo: Path, onnx_bytes: bytes = b"model-1") -> Path:
    make_release_repo(repo, onnx_bytes)
    shutil.copytree(REPO_ROOT / "deploy", repo / "deploy")
    shutil.copytree(REPO_ROOT / "serving/k8s", repo / "serving/k8s")
    commit_all(repo, "environments")
    return repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A release repo with this project's deploy/ overlays and serving/k8s base, committed, as
    the working directory (import it into a test module to use it)."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    repo = make_environments_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    return repo
