"""Environments live in Git: overlays pin an image digest and a bundle version; a promotion copies
staging's pin to production in one commit with a GTO stage tag; a revert rolls it back."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from environments_repo import REPO_ROOT, repo
from kustomize import documents, kustomize
from release_repo import commit_all, git, write_model

from gitops_ml.cli import main
from gitops_ml.release import environments as envs
from gitops_ml.release.environments import EnvironmentError, Pin
from gitops_ml.release.status import render, status
from gitops_ml.release.versions import tag_version

IMAGE = "ghcr.io/acme/churn-model"
BASE_IMAGE = "ghcr.io/example/churn-model"  # what serving/k8s renders before an overlay

__all__ = ["repo"]  # the fixture, imported for pytest


def digest(char: str) -> str:
    return "sha256:" + char * 64


def release(repo: Path, model: bytes) -> str:
    """A new model merged and tagged, as deploy.yml's publish job leaves it; returns the version."""
    write_model(repo, model)
    commit_all(repo, f"merge: model {model!r}")
    return tag_version(repo).split("@v", 1)[1]


def pin_staging(repo: Path, version: str, char: str) -> Pin:
    pin = Pin(IMAGE, digest(char), version)
    envs.write_pin(repo, "staging", pin)
    envs.commit_pin(repo, "staging", f"pin staging {version}")
    return pin


def render_overlay(repo: Path, env: str) -> list[dict]:
    """`kubectl kustomize` when kubectl is installed; the documents it printed, parsed."""
    folder = repo / (
        envs.BASE_KUSTOMIZATION.rsplit("/", 1)[0] if env == "base" else f"deploy/{env}"
    )
    rendered = kustomize(folder)
    if rendered is None:
        pytest.skip("kubectl is not installed; the structural tests below still run")
    return documents(rendered)


# ---------------------------------------------------------------------------------- the pin file


def test_a_pin_round_trips_through_its_file() -> None:
    pin = Pin(IMAGE, digest("a"), "1.2.3")
    text = envs.render_pin("staging", pin, BASE_IMAGE)
    assert envs.parse_pin(text, "pin.yaml") == pin
    doc = yaml.safe_load(text)
    assert doc["kind"] == "Component"
    assert doc["images"] == [{"name": BASE_IMAGE, "newName": IMAGE, "digest": digest("a")}]
    assert doc["labels"][0]["pairs"] == {"app.kubernetes.io/version": "1.2.3"}


def test_the_committed_overlays_pin_nothing_until_the_first_merge() -> None:
    for env in ("staging", "production"):
        path = REPO_ROOT / envs.pin_path(env)
        assert envs.parse_pin(path.read_text(), str(path)) == Pin()
    assert envs.environments(REPO_ROOT) == ["staging", "production"]


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        ([{"name": "x", "digest": "sha256:abc"}], [], "images[0].digest 'sha256:abc'"),
        ([{"name": "x", "digest": digest("a"), "newTag": "1"}], [], "both a digest and newTag"),
        ([{"name": "x"}, {"name": "y"}], [], "exactly one entry"),
        ([{"name": "x", "digest": digest("a")}], [], "app.kubernetes.io/version None"),
    ],
)
def test_a_malformed_pin_is_named_with_its_file_and_field(
    images: list, labels: list, message: str
) -> None:
    doc = {"kind": "Component", "images": images, "labels": labels}
    with pytest.raises(EnvironmentError, match="deploy/x/pin") as caught:
        envs.parse_pin(yaml.safe_dump(doc), "deploy/x/pin/kustomization.yaml")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        (Pin(IMAGE, "latest", "0.1.0"), "digest 'latest'"),
        (Pin(f"{IMAGE}@{digest('a')}", digest("a"), "0.1.0"), "expected a repository"),
        (Pin(IMAGE, digest("a"), "main"), "version 'main'"),
    ],
)
def test_writing_a_pin_refuses_what_names_no_exact_build(
    repo: Path, pin: Pin, message: str
) -> None:
    with pytest.raises(EnvironmentError, match=message):
        envs.write_pin(repo, "staging", pin)
    assert envs.read_pin(repo, "staging") == Pin()


# ---------------------------------------------------------------------------------- rendering


def test_each_overlay_renders_the_image_by_digest_and_the_version_on_every_pod(repo: Path) -> None:
    pin_staging(repo, "0.1.0", "a")
    documents = render_overlay(repo, "staging")
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == sorted(["Namespace", *(d["kind"] for d in render_overlay(repo, "base"))])
    assert {d["metadata"].get("namespace") for d in documents if d["kind"] != "Namespace"} == {
        "churn-model-staging"
    }
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == f"{IMAGE}@{digest('a')}"
    assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "0.1.0"
    # The version is no selector: changing it rolls pods, it does not orphan them.
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]
    hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)

    production = render_overlay(repo, "production")
    deployment = next(d for d in production if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "churn-model-production"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"{BASE_IMAGE}:0.1.0"  # unpinned: the base's placeholder, never a guessed digest
    )


def test_the_pin_replaces_the_image_name_the_base_renders(repo: Path) -> None:
    """Kustomize runs the base's `images:` first, so the pin must match what the base emits."""
    base = yaml.safe_load((repo / envs.BASE_KUSTOMIZATION).read_text())
    entry = next(i for i in base["images"] if i["name"] == "churn-model")
    assert envs.base_image_name(repo) == entry["newName"]
    pin_staging(repo, "0.1.0", "a")
    written = yaml.safe_load((repo / envs.pin_path("staging")).read_text())
    assert written["images"][0]["name"] == entry["newName"]


def test_argo_cd_and_flux_watch_the_same_overlays() -> None:
    for env in ("staging", "production"):
        app = yaml.safe_load((REPO_ROOT / f"deploy/argocd/{env}.yaml").read_text())
        assert app["kind"] == "Application"
        assert app["spec"]["source"]["path"] == f"deploy/{env}"
        assert app["spec"]["destination"]["namespace"] == envs.namespace(REPO_ROOT, env)
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        flux = yaml.safe_load((REPO_ROOT / f"deploy/flux/{env}.yaml").read_text())
        assert flux["kind"] == "Kustomization"
        assert flux["spec"]["path"] == f"./deploy/{env}"
        assert flux["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "churn-model"}
    for folder in ("argocd", "flux"):
        listed = yaml.safe_load((REPO_ROOT / f"deploy/{folder}/kustomization.yaml").read_text())
        assert all((REPO_ROOT / "deploy" / folder / r).is_file() for r in listed["resources"])


# ---------------------------------------------------------------------------------- promotion


def test_promotion_copies_stagings_pin_in_one_commit_and_tags_the_stage(repo: Path) -> None:
    version = release(repo, b"model-2")
    pin = pin_staging(repo, version, "b")
    before = git(repo, "rev-parse", "HEAD")

    done = envs.promote(repo)

    assert envs.read_pin(repo, "production") == pin
    assert envs.read_pin(repo, "production", rev="HEAD") == pin
    assert done.commit == git(repo, "rev-parse", "HEAD") and done.previous == Pin()
    changed = git(repo, "diff", "--name-only", before, "HEAD").splitlines()
    assert changed == [envs.pin_path("production")]
    assert "Roll back with `git revert`" in git(repo, "log", "-1", "--format=%B")
    assert done.stage_tag == "churn-model#production#1"
    assert git(repo, "rev-list", "-n", "1", done.stage_tag) == git(
        repo, "rev-list", "-n", "1", f"churn-model@v{version}"
    )


def test_promotion_commits_only_the_pin_even_with_other_work_staged(repo: Path) -> None:
    pin_staging(repo, release(repo, b"model-2"), "b")
    (repo / "notes.txt").write_text("work in progress\n")
    git(repo, "add", "notes.txt")

    envs.promote(repo)

    assert git(repo, "show", "--name-only", "--format=", "HEAD") == envs.pin_path("production")
    assert git(repo, "diff", "--cached", "--name-only") == "notes.txt"


def test_rollback_is_a_revert_and_status_then_names_the_previous_version(repo: Path) -> None:
    first = release(repo, b"model-2")
    pin_staging(repo, first, "b")
    envs.promote(repo)
    second = release(repo, b"model-3")
    pin_staging(repo, second, "c")
    promotion = envs.promote(repo)
    assert status(repo)[1].version == second

    git(repo, "revert", "--no-edit", str(promotion.commit))

    production = status(repo)[1]
    assert (production.environment, production.version) == ("production", first)
    assert production.digest == digest("b")
    assert production.pin_subject is not None and production.pin_subject.startswith("Revert")
    assert production.stage_tag == "churn-model#production#2"
    text = render(status(repo))
    assert f"Git now pins {first}: the pin was reverted" in text


def test_promoting_what_production_already_runs_changes_nothing(repo: Path) -> None:
    pin_staging(repo, release(repo, b"model-2"), "b")
    envs.promote(repo)
    head = git(repo, "rev-parse", "HEAD")

    again = envs.promote(repo)

    assert (again.commit, again.stage_tag) == (None, None)
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "tag", "--list", "churn-model#production#*") == "churn-model#production#1"


def test_promotion_refuses_an_empty_staging(repo: Path) -> None:
    with pytest.raises(EnvironmentError, match="staging has nothing pinned"):
        envs.promote(repo)


def test_promotion_refuses_a_version_staging_does_not_run(repo: Path) -> None:
    version = release(repo, b"model-2")
    pin_staging(repo, version, "b")
    with pytest.raises(EnvironmentError, match=f"staging runs {version}, not 9.0.0"):
        envs.promote(repo, expect_version="9.0.0")
    assert envs.read_pin(repo, "production") == Pin()


def test_promotion_refuses_an_untagged_build(repo: Path) -> None:
    pin_staging(repo, "9.9.9", "b")
    with pytest.raises(EnvironmentError, match=r"no tag churn-model@v9\.9\.9"):
        envs.promote(repo)
    assert git(repo, "tag", "--list", "churn-model#*") == ""


def test_promotion_refuses_uncommitted_edits_to_the_production_pin(repo: Path) -> None:
    pin_staging(repo, release(repo, b"model-2"), "b")
    path = repo / envs.pin_path("production")
    path.write_text(path.read_text() + "# hand edit\n")
    with pytest.raises(EnvironmentError, match="uncommitted changes"):
        envs.promote(repo)


def test_the_cli_promotes_and_reports_a_refusal_as_an_error(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["env", "promote"]) == 2
    assert "error: staging has nothing pinned" in capsys.readouterr().err

    version = release(repo, b"model-2")
    outputs = tmp_path / "github_output"
    argv = ["env", "pin", "staging", "--image", IMAGE, "--digest", digest("d")]
    assert main([*argv, "--version", version, "--commit"]) == 0
    assert (
        main(["env", "promote", "--expect-version", version, "--github-output", str(outputs)]) == 0
    )
    printed = capsys.readouterr().out
    assert f"promoted {version} from staging to production (was nothing)" in printed
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert lines["reference"] == f"{IMAGE}@{digest('d')}"
    assert lines["stage_tag"] == "churn-model#production#1"
    assert lines["namespace"] == "churn-model-production"
    assert lines["changed"] == "true"


def test_pinning_what_is_already_pinned_commits_nothing(repo: Path, tmp_path: Path) -> None:
    """A re-run of the same deploy job must not fail on an empty commit."""
    version = release(repo, b"model-2")
    argv = ["env", "pin", "staging", "--image", IMAGE, "--digest", digest("d")]
    argv += ["--version", version, "--commit"]
    assert main(argv) == 0
    head = git(repo, "rev-parse", "HEAD")
    outputs = tmp_path / "github_output"

    assert main([*argv, "--github-output", str(outputs)]) == 0

    assert git(repo, "rev-parse", "HEAD") == head
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert (lines["changed"], lines["commit"]) == ("false", "")


def test_a_missing_or_malformed_kustomization_is_an_error_naming_the_file(repo: Path) -> None:
    (repo / "deploy/staging/kustomization.yaml").write_text("namespace: [\n")
    with pytest.raises(EnvironmentError, match=r"deploy/staging/kustomization\.yaml: not valid"):
        envs.namespace(repo, "staging")
    with pytest.raises(EnvironmentError, match="kustomization of environment 'qa' not found"):
        envs.namespace(repo, "qa")
    (repo / envs.BASE_KUSTOMIZATION).unlink()
    with pytest.raises(EnvironmentError, match=r"not found: .*; the overlays build on it$"):
        envs.base_image_name(repo)
