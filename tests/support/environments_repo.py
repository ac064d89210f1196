"""A release repo that also holds this project's environment overlays (deploy/) and their base
(serving/k8s), for the environment, status, promotion and demo tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from release_repo import commit_all, make_release_repo

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_environments_repo(repo: Path, onnx_bytes: bytes = b"model-1") -> Path:
    make_release_repo(repo, onnx_bytes)
    shutil.copytree(REPO_ROOT / "deploy", repo / "deploy")
    shutil.copytree(REPO_ROOT / "serving/k8s", repo / "serving/k8s")
    commit_all(repo, "environments")
    return repo
