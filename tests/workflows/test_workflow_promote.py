"""promote.yml's `run:` steps, executed in a scratch clone with recorders for gh and kubectl.

Git, gitops-ml and (for the push-mode smoke test) a real server from a real bundle are real; the
recorders stand in for GitHub (`gh attestation verify`, `gh release download`) and the cluster
(`kubectl`). A bare repository beside the clone is `origin`, so each test tells what was pushed
(the promotion is recorded in Git) from what only happened in the runner's checkout.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kustomize import kustomize
from release_repo import GIT_ENV, clone_repo, reproduced_pipeline
from workflow_harness import (
    JobResult,
    commit_all,
    git,
    recorder_env,
    run_job,
    scratch_repo,
)

from gitops_ml.release import environments as envs
from gitops_ml.release.bundle import build_bundle
from gitops_ml.release.deploy import free_port, start_server, stop_process, wait_ready
from gitops_ml.release.environments import Pin
from gitops_ml.release.status import status
from gitops_ml.release.versions import tag_version

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDERS = REPO_ROOT / "tests/support/recorders"
WORKFLOW = REPO_ROOT / ".github/workflows/promote.yml"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
IMAGE = "ghcr.io/acme/churn-model"
STAGE_TAG = "churn-model#production#1"


def digest(char: str) -> str:
    return "sha256:" + char * 64


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():  # tags and commits made in-process need one too
        monkeypatch.setenv(key, value)


def with_bare_origin(repo: Path) -> Path:
    origin = repo.parent / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "--quiet", "origin", "main", "--tags")
    return repo


def release_to_staging(repo: Path, char: str = "a") -> str:
    """What a merge leaves behind: a version tag and staging pinned to its image, pushed."""
    commit_all(repo, f"merge {char}")
    version = tag_version(repo).split("@v", 1)[1]
    envs.write_pin(repo, "staging", Pin(IMAGE, digest(char), version))
    envs.commit_pin(repo, "staging", f"Pin churn-model {version} in staging")
    git(repo, "push", "--quiet", "origin", "main", "--tags")
    return version


def run(
    repo: Path,
    *,
    event: str = "workflow_dispatch",
    version: str | None = None,
    vars: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> JobResult:
    contexts = {
        "github": {
            "repository": "Acme/churn-gitops",
            "sha": git(repo, "rev-parse", "HEAD").strip(),
            "ref": "refs/heads/main",
            "event_name": event,
            "actor": "octocat",
            "token": "ghs_recorded_not_real",
        },
        "inputs": {"version": version} if version else {},
        "vars": dict(vars or {}),
        "secrets": dict(secrets or {}),
    }
    return run_job(WORKFLOW, "promote", repo, contexts=contexts, env=env)


def calls(result: JobResult, tool: str) -> list[list[str]]:
    """The job's calls of `tool` (not the test's own set-up calls, which ran outside a step)."""
    return [e["argv"] for e in result.recorded if e["tool"] == tool and e.get("step")]


def origin_pin(repo: Path) -> Pin:
    return envs.read_pin(repo, "production", rev="origin/main")


def fetch(repo: Path) -> None:
    git(repo, "fetch", "--quiet", "--tags", "origin")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The project's files (no pipeline run) with a bare origin: enough for Git-only paths."""
    return with_bare_origin(scratch_repo(tmp_path / "repo", origin=False))


# ------------------------------------------------------------------------------- the triggers


def test_promotion_is_a_dispatch_behind_production_or_a_merged_change_to_its_overlay() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    on = doc[True]  # YAML 1.1 reads `on` as true
    assert on["workflow_dispatch"]["inputs"]["version"]["required"] is True
    assert on["push"] == {"branches": ["main"], "paths": ["deploy/production/**"]}
    assert doc["jobs"]["promote"]["environment"] == "production"
    assert doc["env"]["DELIVERY_MODE"] == "${{ vars.DELIVERY_MODE || 'push' }}"


# ------------------------------------------------------------------------------- pull mode


def test_pull_mode_commits_the_tested_digest_and_tag_and_applies_nothing(repo: Path) -> None:
    version = release_to_staging(repo)

    result = run(repo, version=version, vars={"DELIVERY_MODE": "pull"})

    assert result.ok, result.explain()
    assert calls(result, "kubectl") == []  # Argo CD / Flux roll it out from Git
    verify = calls(result, "gh")[0]
    assert verify[:3] == ["attestation", "verify", f"oci://{IMAGE}@{digest('a')}"]
    assert verify[3:] == [
        "--repo",
        "Acme/churn-gitops",
        "--signer-workflow",
        "Acme/churn-gitops/.github/workflows/deploy.yml",  # built by our deploy.yml, nothing else
    ]
    fetch(repo)
    assert origin_pin(repo) == Pin(IMAGE, digest("a"), version)
    assert git(repo, "ls-remote", "--tags", "origin", STAGE_TAG)
    assert "Argo CD / Flux roll out deploy/production" in result.summary
    changed = git(repo, "show", "--name-only", "--format=", "origin/main").split()
    assert changed == [envs.pin_path("production")]


def test_a_version_staging_does_not_run_is_refused_and_nothing_is_pushed(repo: Path) -> None:
    release_to_staging(repo)
    before = git(repo, "ls-remote", "origin", "main")

    result = run(repo, version="9.9.9", vars={"DELIVERY_MODE": "pull"})

    assert result.failed_step is not None and result.failed_step.id == "pin"
    assert "staging runs 0.1.0, not 9.9.9" in result.failed_step.stderr
    assert git(repo, "ls-remote", "origin", "main") == before
    assert calls(result, "gh") == []


def test_an_unknown_delivery_mode_stops_before_anything_happens(repo: Path) -> None:
    version = release_to_staging(repo)
    result = run(repo, version=version, vars={"DELIVERY_MODE": "sideways"})
    assert result.failed_step is not None
    assert "set it to push or pull" in result.failed_step.stdout
    assert result.step("pin").status == "skipped"


def test_a_merged_revert_is_the_rollback_and_is_tagged_gto_style(repo: Path) -> None:
    first = release_to_staging(repo, "a")
    envs.promote(repo)
    second = release_to_staging(repo, "b")
    promotion = envs.promote(repo)
    git(repo, "revert", "--no-edit", str(promotion.commit))
    git(repo, "push", "--quiet", "origin", "main", "--tags")
    assert second != first

    result = run(repo, event="push", vars={"DELIVERY_MODE": "pull"})

    assert result.ok, result.explain()
    fetch(repo)
    assert origin_pin(repo).version == first
    assert git(repo, "ls-remote", "--tags", "origin", "churn-model#production#3")
    production = status(repo)[1]
    assert (production.version, production.stage_version) == (first, first)
    assert f"production runs {first}" in result.summary


def test_a_merged_overlay_edit_redelivers_without_a_new_stage_tag(repo: Path) -> None:
    release_to_staging(repo)
    envs.promote(repo)
    overlay = repo / "deploy/production/kustomization.yaml"
    overlay.write_text(overlay.read_text() + "# reviewed: more replicas next quarter\n")
    commit_all(repo, "Note on the production overlay")
    git(repo, "push", "--quiet", "origin", "main", "--tags")

    result = run(repo, event="push", vars={"DELIVERY_MODE": "pull"})

    assert result.ok, result.explain()
    assert git(repo, "ls-remote", "--tags", "--refs", "origin").count("#production#") == 1
    assert f"stage tag `{STAGE_TAG}`" in result.summary


# ------------------------------------------------------------------------------- push mode


def test_push_mode_without_a_cluster_fails_and_pushes_nothing(repo: Path) -> None:
    version = release_to_staging(repo)

    result = run(repo, version=version)  # DELIVERY_MODE defaults to push

    assert result.failed_step is not None and result.failed_step.id == "cluster"
    assert "DELIVERY_MODE is push but the production environment has no cluster" in (
        result.failed_step.stdout
    )
    fetch(repo)
    assert origin_pin(repo) == Pin()
    assert not git(repo, "ls-remote", "--tags", "origin", STAGE_TAG)


def test_push_mode_rolls_back_a_failed_rollout_and_leaves_git_unchanged(repo: Path) -> None:
    version = release_to_staging(repo)

    result = run(
        repo,
        version=version,
        secrets={"KUBECONFIG": KUBECONFIG},
        env=recorder_env(repo.parent / "recorder.jsonl", fail=["kubectl apply"]),
    )

    assert result.failed_step is not None and result.failed_step.id == "apply"
    kubectl = [c[:2] for c in calls(result, "kubectl")]
    assert kubectl[-2:] == [["rollout", "undo"], ["rollout", "status"]]
    assert "The promotion commit and stage tag were not pushed" in result.summary
    assert result.step("smoke").status == "skipped"
    fetch(repo)
    assert origin_pin(repo) == Pin()
    assert not git(repo, "ls-remote", "--tags", "origin", STAGE_TAG)


@pytest.fixture
def served_release(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Iterator[Any]:
    """A reproduced pipeline, tagged 0.1.0 and pinned in staging; its bundle as a release
    asset (what `gh release download` fetches) and a real server from it standing in for the
    pods behind `kubectl port-forward`."""
    repo = clone_repo(reproduced_pipeline(tmp_path_factory), tmp_path / "repo")
    version = release_to_staging(repo)
    bundle = build_bundle(tmp_path / "release" / "bundle", version, root=repo)
    archive_path = tmp_path / f"churn-model-{version}.bundle.tar.gz"
    with tarfile.open(archive_path, "w:gz") as archive:
        archive.add(bundle.path, arcname="bundle")
    # The GitHub Release deploy.yml created, held by the gh recorder for `gh release download`.
    subprocess.run(
        [str(RECORDERS / "gh"), "release", "create", f"churn-model@v{version}", str(archive_path)],
        env={**os.environ, "RECORDER_LOG": str(repo.parent / "recorder.jsonl")},
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = tmp_path / "server.log"
    process = start_server(bundle.path, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", 60, process, log)
        yield repo, version, port
    finally:
        stop_process(process.pid)


@pytest.mark.slow
def test_push_mode_applies_the_overlay_smoke_tests_then_records_the_promotion(
    served_release: Any,
) -> None:
    repo, version, port = served_release

    result = run(
        repo,
        version=version,
        vars={"SMOKE_LOCAL_PORT": str(port)},
        secrets={"KUBECONFIG": KUBECONFIG},
    )

    assert result.ok, result.explain()
    kubectl = calls(result, "kubectl")
    assert [c[:2] for c in kubectl] == [
        ["kustomize", "deploy/production"],
        ["apply", "--filename"],
        ["rollout", "status"],
        ["port-forward", "deployment/churn-model"],
    ]
    assert kubectl[2][-3:-1] == ["--namespace", "churn-model-production"]
    gh = calls(result, "gh")
    assert gh[0][:2] == ["attestation", "verify"]
    assert gh[1][:3] == ["release", "download", f"churn-model@v{version}"]
    assert gh[2][:3] == ["attestation", "verify", f"dist/churn-model-{version}.bundle.tar.gz"]
    assert f"smoke test passed: churn-model {version}" in result.step("smoke").stdout
    fetch(repo)
    assert origin_pin(repo) == Pin(IMAGE, digest("a"), version)
    assert git(repo, "ls-remote", "--tags", "origin", STAGE_TAG)
    rendered = kustomize(repo / "deploy/production")  # what the recorder was asked to apply
    if rendered is not None:
        assert f"image: {IMAGE}@{digest('a')}" in rendered
