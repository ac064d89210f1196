"""`gitops-ml status` answers "what runs where" from Git alone: pins, version tags, metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from environments_repo import repo
from release_repo import commit_all

from gitops_ml.cli import main
from gitops_ml.release import environments as envs
from gitops_ml.release.environments import Pin
from gitops_ml.release.status import status
from gitops_ml.release.versions import tag_version

DIGEST = "sha256:" + "e" * 64

__all__ = ["repo"]  # the fixture, imported for pytest


def test_status_names_version_digest_commits_and_the_metrics_of_the_build(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tag_version(repo)
    built_at = commit_all(repo, "unrelated later commit")  # the pin commit comes after
    envs.write_pin(repo, "staging", Pin("ghcr.io/acme/churn-model", DIGEST, "0.1.0"))
    pinned_by = envs.commit_pin(repo, "staging", "Pin churn-model 0.1.0 in staging")

    assert main(["status"]) == 0
    out = capsys.readouterr().out

    staging, production = out.split("\n\n")
    assert staging.splitlines()[:3] == [
        "staging:",
        "  version   0.1.0",
        f"  image     ghcr.io/acme/churn-model@{DIGEST}",
    ]
    assert "(churn-model@v0.1.0)" in staging and built_at[:12] not in staging
    assert "ROC AUC 0.8600" in staging  # metrics/evaluate.json at the version's commit
    assert f"pinned by {pinned_by[:12]} Pin churn-model 0.1.0 in staging" in staging
    assert production.splitlines()[:2] == ["production:", "  nothing pinned yet"]


def test_status_reads_what_is_committed_not_the_work_tree(repo: Path) -> None:
    envs.write_pin(repo, "staging", Pin("ghcr.io/acme/churn-model", DIGEST, "0.1.0"))
    assert status(repo)[0].version is None  # an uncommitted pin deploys nothing
    envs.commit_pin(repo, "staging", "pin")
    assert status(repo)[0].version == "0.1.0"
    assert status(repo)[0].release_tag is None  # built from nothing tagged: shown as unknown


def test_status_json_is_one_object_per_environment(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [e["environment"] for e in payload] == ["staging", "production"]
    assert payload[0]["version"] is None and payload[0]["metrics"] == {}


def test_status_without_environments_says_what_it_looked_for(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(repo / "deploy")
    assert main(["status"]) == 2
    assert "error: no environments: expected deploy/<env>/pin/kustomization.yaml" in (
        capsys.readouterr().err
    )
