"""Environments in Git: what each one runs is a pin committed under `deploy/<env>/pin/`.

Each environment is a kustomize overlay over `serving/k8s` (`deploy/staging`, `deploy/production`)
whose `pin/` component names the serving image by digest and the bundle version it carries.
Push mode (a workflow runs `kubectl apply`) and pull mode (Argo CD / Flux watch the folder) read
the same files, so the pin is the single answer to "what runs where":

- a merge to main pins staging (deploy.yml, after its smoke test),
- `promote` copies staging's tested pin to production in one commit and tags the GTO stage
  `<model>#production#N`,
- `git revert` of that commit is the rollback.

Only `pin/kustomization.yaml` is machine-written; the overlay around it is the user's to edit.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops_ml.errors import UserError
from gitops_ml.io import read_yaml, write_text
from gitops_ml.release import versions

DEPLOY_DIR = "deploy"
ENVIRONMENTS = ("staging", "production")
BASE_KUSTOMIZATION = "serving/k8s/kustomization.yaml"
VERSION_LABEL = "app.kubernetes.io/version"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*$")
_ENV = re.compile(r"^[a-z][a-z0-9-]*$")

PIN_HEADER = """\
# What {env} runs. Written by `gitops-ml env pin|promote`; do not edit by hand: a change here
# is a deployment (review it), a revert of it is a rollback. `gitops-ml status` reads it.
"""


class EnvironmentError(UserError):
    """An environment's pin is missing, malformed, or does not allow the requested step."""


@dataclass(frozen=True)
class Pin:
    """An image by digest and the bundle version inside it; all None when nothing is pinned."""

    image: str | None = None
    digest: str | None = None
    version: str | None = None

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def reference(self) -> str:
        return f"{self.image}@{self.digest}" if self.pinned else "(nothing pinned)"


def pin_path(env: str) -> str:
    """The pin file of `env`, relative to the repository root."""
    if not _ENV.match(env):
        raise EnvironmentError(f"environment {env!r}: use lower-case letters, digits and '-'")
    return f"{DEPLOY_DIR}/{env}/pin/kustomization.yaml"


def environments(root: str | Path = ".") -> list[str]:
    """Environments with a pin, staging and production first (the order of promotion)."""
    found = {
        p.parent.parent.name for p in Path(root).glob(f"{DEPLOY_DIR}/*/pin/kustomization.yaml")
    }
    return [e for e in ENVIRONMENTS if e in found] + sorted(found - set(ENVIRONMENTS))


# ---------------------------------------------------------------------------------------------
# The pin file: parse and render (pure)
# ---------------------------------------------------------------------------------------------


def parse_pin(text: str, source: str) -> Pin:
    """Read the pin component; every malformed field is named with its file."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EnvironmentError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Component":
        raise EnvironmentError(f"{source}: expected a kustomize `kind: Component`")
    images = doc.get("images") or []
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], dict):
        raise EnvironmentError(f"{source}: 'images' must hold exactly one entry (the model image)")
    image = images[0]
    digest = image.get("digest")
    if digest is None:
        return Pin()
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise EnvironmentError(f"{source}: images[0].digest {digest!r} is not sha256:<64 hex>")
    if "newTag" in image:
        raise EnvironmentError(f"{source}: images[0] has both a digest and newTag; pin one digest")
    labels = doc.get("labels") or []
    pairs = labels[0].get("pairs") if labels and isinstance(labels[0], dict) else None
    version = (pairs or {}).get(VERSION_LABEL)
    if not isinstance(version, str) or not versions.is_semver(version):
        raise EnvironmentError(
            f"{source}: labels[0].pairs.{VERSION_LABEL} {version!r} is not the bundle version "
            "(MAJOR.MINOR.PATCH)"
        )
    return Pin(str(image.get("newName") or image.get("name")), digest, version)


def render_pin(env: str, pin: Pin, base_image: str) -> str:
    """The pin component: the base's image replaced by digest, the version as a label."""
    lines = [
        PIN_HEADER.format(env=env).rstrip("\n"),
        "apiVersion: kustomize.config.k8s.io/v1alpha1",
        "kind: Component",
        "images:",
        f"  - name: {json.dumps(base_image)}",
    ]
    if pin.pinned:
        lines += [
            f"    newName: {json.dumps(pin.image)}",
            f"    digest: {json.dumps(pin.digest)}",
            "labels:",
            "  - pairs:",
            f"      {VERSION_LABEL}: {json.dumps(pin.version)}",
            "    includeTemplates: true",
        ]
    return "\n".join(lines) + "\n"


def check_pin(pin: Pin) -> Pin:
    """Refuse a pin that would not render or would name no exact build."""
    if pin.image is None or not _IMAGE.match(pin.image) or "@" in pin.image:
        raise EnvironmentError(f"image {pin.image!r}: expected a repository such as ghcr.io/o/m")
    if pin.digest is None or not _DIGEST.match(pin.digest):
        raise EnvironmentError(f"digest {pin.digest!r}: expected sha256:<64 hex digits>")
    if pin.version is None or not versions.is_semver(pin.version):
        raise EnvironmentError(f"version {pin.version!r}: expected MAJOR.MINOR.PATCH")
    return pin


# ---------------------------------------------------------------------------------------------
# Files and Git
# ---------------------------------------------------------------------------------------------


def base_image_name(root: str | Path = ".") -> str:
    """The image name the base renders (its own `images:` runs first), which the pin replaces."""
    path = Path(root) / BASE_KUSTOMIZATION
    doc = read_yaml(path, "base kustomization", EnvironmentError, "; the overlays build on it")
    doc = doc if isinstance(doc, dict) else {}
    model = versions.model_name(root)
    for image in doc.get("images") or []:
        if image.get("name") == model:
            return str(image.get("newName") or model)
    return model


def read_pin(root: str | Path, env: str, rev: str | None = None) -> Pin:
    """The pin in the work tree, or as committed at `rev` ("according to Git")."""
    path = pin_path(env)
    if rev is None:
        file = Path(root) / path
        if not file.is_file():
            raise EnvironmentError(f"{file}: not found; is {env!r} an environment under deploy/?")
        return parse_pin(file.read_text(), str(file))
    text = versions.git(root, "show", f"{rev}:{path}", check=False)
    if not text:
        raise EnvironmentError(f"{path}: not committed at {rev}")
    return parse_pin(text, f"{rev}:{path}")


def write_pin(root: str | Path, env: str, pin: Pin) -> Path:
    path = Path(root) / pin_path(env)
    if not path.parent.parent.is_dir():
        raise EnvironmentError(f"{path.parent.parent}: no such environment overlay")
    write_text(path, render_pin(env, check_pin(pin), base_image_name(root)))
    return path


def namespace(root: str | Path, env: str) -> str:
    """The namespace the overlay deploys into (push mode waits for its rollout there)."""
    path = Path(root) / DEPLOY_DIR / env / "kustomization.yaml"
    doc = read_yaml(path, f"kustomization of environment {env!r}", EnvironmentError)
    if not isinstance(doc, dict) or not doc.get("namespace"):
        raise EnvironmentError(f"{path}: no 'namespace:' for environment {env!r}")
    return str(doc["namespace"])


def commit_pin(root: str | Path, env: str, message: str) -> str:
    """Commit only the pin file (other staged work stays out of a deployment commit)."""
    path = pin_path(env)
    versions.git(root, "add", "--", path)
    versions.git(root, "commit", "--quiet", "--message", message, "--only", "--", path)
    return versions.head_revision(root)


def _pin_is_clean(root: str | Path, env: str) -> None:
    if versions.git(root, "status", "--porcelain", "--", pin_path(env)):
        raise EnvironmentError(
            f"{pin_path(env)} has uncommitted changes; commit or discard them before a promotion"
        )


def latest_stage_tag(root: str | Path, name: str, env: str) -> tuple[str | None, str | None]:
    """The newest stage tag of `env` and the version whose commit it points at."""
    tags = versions.stage_tags(root, name, env)
    if not tags:
        return None, None
    tag = tags[-1]
    commit = versions.git(root, "rev-list", "-n", "1", tag)
    for version, release in versions.release_tags(root, name).items():
        if versions.git(root, "rev-list", "-n", "1", release) == commit:
            return tag, str(version)
    return tag, None


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    pin: Pin
    previous: Pin
    commit: str | None  # None: the target already ran this pin, nothing changed
    stage_tag: str | None


def promote(
    root: str | Path,
    source: str = "staging",
    target: str = "production",
    expect_version: str | None = None,
    name: str | None = None,
) -> Promotion:
    """Copy `source`'s committed pin to `target` in one commit, then tag the GTO stage."""
    if source == target:
        raise EnvironmentError(f"cannot promote {source} to itself")
    name = name or versions.model_name(root)
    pin = read_pin(root, source, rev="HEAD")
    if not pin.pinned or pin.version is None:
        raise EnvironmentError(
            f"{source} has nothing pinned ({pin_path(source)}); nothing to promote"
        )
    if expect_version is not None and pin.version != expect_version.removeprefix("v"):
        raise EnvironmentError(
            f"{source} runs {pin.version}, not {expect_version}; promote what staging tested"
        )
    if versions.release_version(pin.version) not in versions.release_tags(root, name):
        raise EnvironmentError(
            f"{source} pins version {pin.version} but there is no tag "
            f"{versions.version_tag(name, pin.version)}; cannot promote an untagged build"
        )
    _pin_is_clean(root, target)
    previous = read_pin(root, target)
    if previous == pin:
        return Promotion(source, target, pin, previous, None, None)
    write_pin(root, target, pin)
    commit = commit_pin(
        root,
        target,
        f"Promote {name} {pin.version} from {source} to {target}\n\n"
        f"{target} now runs {pin.reference} (was {previous.version or 'nothing'}).\n"
        "Roll back with `git revert` of this commit.",
    )
    tag = versions.promote(root, target, pin.version, name)
    return Promotion(source, target, pin, previous, commit, tag)


# ---------------------------------------------------------------------------------------------
# CLI: gitops-ml env show ENV | pin ENV --image --digest --version | promote
# ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print an environment's pin")
    show.add_argument("env")
    pin = sub.add_parser("pin", help="pin an image digest and bundle version (deploy.yml)")
    pin.add_argument("env")
    pin.add_argument("--image", required=True, help="repository, e.g. ghcr.io/acme/model")
    pin.add_argument("--digest", required=True, help="sha256:… of the pushed image")
    pin.add_argument("--version", required=True, help="the bundle version inside the image")
    pin.add_argument("--commit", action="store_true", help="commit the pin file")
    prom = sub.add_parser("promote", help="copy staging's pin to production, commit, stage tag")
    prom.add_argument("--from", dest="source", default="staging")
    prom.add_argument("--to", dest="target", default="production")
    prom.add_argument("--expect-version", help="refuse unless the source runs this version")
    for sub_parser in (show, pin, prom):
        sub_parser.add_argument(
            "--github-output", type=Path, help="append key=value lines (the job's $GITHUB_OUTPUT)"
        )


def _outputs(root: str | Path, env: str, pin: Pin, **extra: Any) -> dict[str, str]:
    """What a workflow step needs to deliver the pin: image, namespace, the release to fetch."""
    name = versions.model_name(root)
    stage_tag, stage_version = latest_stage_tag(root, name, env)
    values = {
        "environment": env,
        "model_name": name,
        "image": pin.image or "",
        "digest": pin.digest or "",
        "version": pin.version or "",
        "reference": pin.reference if pin.pinned else "",
        "release_tag": versions.version_tag(name, pin.version) if pin.version else "",
        "namespace": namespace(root, env),
        "stage_tag": stage_tag or "",
        "stage_version": stage_version or "",
        **{k: "" if v is None else str(v) for k, v in extra.items()},
    }
    return values


def run(args: argparse.Namespace) -> int:
    root = Path(".")
    if args.action == "show":
        pin = read_pin(root, args.env)
        outputs = _outputs(root, args.env, pin)
        print(f"{args.env}: {pin.version or '-'} {pin.reference}")
    elif args.action == "pin":
        pin = Pin(args.image, args.digest, args.version.removeprefix("v"))
        changed = read_pin(root, args.env) != pin  # a re-run of the same deploy changes nothing
        write_pin(root, args.env, pin)
        commit = None
        if args.commit and changed:
            name = versions.model_name(root)
            commit = commit_pin(
                root, args.env, f"Pin {name} {pin.version} in {args.env}\n\n{pin.reference}"
            )
        outputs = _outputs(root, args.env, pin, commit=commit)
        outputs["changed"] = "true" if changed else "false"
        print(
            f"{args.env}: pinned {pin.version} {pin.reference}"
            + ("" if changed else " (as before)")
        )
    else:
        done = promote(root, args.source, args.target, args.expect_version)
        outputs = _outputs(root, done.target, done.pin, commit=done.commit)
        outputs["changed"] = "true" if done.commit else "false"
        if done.commit is None:
            print(f"{done.target} already runs {done.pin.version} {done.pin.reference}")
        else:
            print(
                f"promoted {done.pin.version} from {done.source} to {done.target} "
                f"(was {done.previous.version or 'nothing'}): commit {done.commit[:12]}, "
                f"tag {done.stage_tag}; roll back with `git revert {done.commit[:12]}`"
            )
    if args.github_output:
        with open(args.github_output, "a") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in outputs.items())
    return 0
