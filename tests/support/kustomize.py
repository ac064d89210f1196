"""Kustomize folders rendered the way a cluster would see them, for the manifest tests.

A real `kubectl kustomize` when kubectl is installed; without it the callers decide: skip, check
the recorder's calls only, or read a base's resources directly (labels are then not merged).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


def kustomize(folder: Path) -> str | None:
    """What `kubectl kustomize folder` prints, or None when kubectl is not installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, f"kubectl kustomize {folder}: {done.stderr}"
    return done.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def base_documents(folder: Path) -> list[dict[str, Any]]:
    """A base's documents: rendered when kubectl is installed, else its resources as written."""
    rendered = kustomize(folder)
    if rendered is not None:
        return documents(rendered)
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [yaml.safe_load((folder / name).read_text()) for name in kustomization["resources"]]
