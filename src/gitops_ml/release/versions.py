"""Model versions as annotated Git tags in GTO's format, and the rule that picks the next one.

A version is `<model>@vMAJOR.MINOR.PATCH` on the commit it was built from; a deployment to a
stage is `<model>#<stage>#N`. GTO writes and parses both (its Python API), so `gto show` reads
the registry straight from Git; what is ours is the rule that picks the next version, from what
changed since the last version tag:

- major: the data contract (`data/schema.yaml`) changed — clients must change their requests;
- minor: the model changed — `params.yaml` or the hash of any pipeline output in `dvc.lock`;
- patch: anything else (serving code, docs): same model, new release.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver
import yaml

from gitops_ml import paths
from gitops_ml.errors import UserError
from gitops_ml.io import read_yaml

FIRST_VERSION = "0.1.0"


class VersionError(UserError):
    """A version string, a tag or the Git state does not allow the requested version step."""


def release_version(text: str) -> semver.Version:
    """MAJOR.MINOR.PATCH, a leading `v` allowed; a pre-release or anything else is refused."""
    try:
        version = semver.Version.parse(text.removeprefix("v"))
    except (TypeError, ValueError):
        version = None
    if version is None or version.prerelease or version.build:
        raise VersionError(f"{text!r} is not a release version (expected MAJOR.MINOR.PATCH)")
    return version


def is_semver(text: str) -> bool:
    """True for any semantic version, pre-releases such as `0.2.0-dev.ab12cd34` included."""
    return semver.Version.is_valid(text)


def version_tag(model_name: str, version: str | semver.Version) -> str:
    return f"{model_name}@v{version}"


# ---------------------------------------------------------------------------------------------
# Git access: every call names the repository, so tests drive scratch repos in-process.
# ---------------------------------------------------------------------------------------------


def git(root: str | Path, *args: str, check: bool = True) -> str:
    """Run git in `root` and return stdout; a failure becomes a VersionError with git's words."""
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise VersionError("git is not installed") from None
    if check and proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        raise VersionError(f"git {' '.join(args)} failed in {root}: {message}")
    return proc.stdout.strip()


def head_revision(root: str | Path) -> str:
    return git(root, "rev-parse", "HEAD")


def is_dirty(root: str | Path) -> bool:
    """Tracked files differ from HEAD: a bundle built now is not the committed state."""
    return bool(git(root, "status", "--porcelain", "--untracked-files=no"))


_MODEL_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")


def model_name_of(contract_name: str, source: str = paths.CONTRACT) -> str:
    """The model is named after its data: the contract's `name` (dvc.yaml's model artifact
    reads it too). It prefixes the version tags and names the image, hence the rule."""
    if not _MODEL_NAME.match(contract_name):
        raise VersionError(
            f"{source}: name {contract_name!r} names the model (its version tags and image): "
            "use lowercase letters, digits, '-' and '_', starting and ending with a letter or "
            "a digit"
        )
    return contract_name


def model_name(root: str | Path) -> str:
    return model_name_in(Path(root) / paths.CONTRACT)


def model_name_in(contract: str | Path) -> str:
    """The model name in the data contract at `contract` (a missing or broken file is named)."""
    hint = "; the model is named after the contract's 'name'"
    raw = read_yaml(contract, paths.CONTRACT, VersionError, hint)
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str):
        raise VersionError(f"{contract}: no 'name' to name the model after")
    return model_name_of(name, str(contract))


def lock_hashes(lock: Any) -> dict[str, str]:
    """{path: md5} of every stage output recorded in a parsed dvc.lock (data, model, metrics)."""
    hashes: dict[str, str] = {}
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage in (stages or {}).values():
        for out in stage.get("outs") or []:
            if "md5" in out:
                hashes[str(out["path"])] = str(out["md5"])
    return dict(sorted(hashes.items()))


# ---------------------------------------------------------------------------------------------
# The bump rule (pure) and the registry read from tags
# ---------------------------------------------------------------------------------------------


def bump_part(changed_files: set[str], lock_before: Any, lock_after: Any) -> tuple[str, str]:
    """(part, reason) for the change between the last version and now; see the module doc."""
    if paths.CONTRACT in changed_files:
        return "major", f"{paths.CONTRACT} (the data contract) changed"
    if paths.PARAMS in changed_files:
        return "minor", f"{paths.PARAMS} changed"
    before, after = lock_hashes(lock_before), lock_hashes(lock_after)
    moved = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    if moved:
        return "minor", f"{paths.DVC_LOCK} hashes changed: {', '.join(moved)}"
    return "patch", "no change to the contract, params or pipeline outputs"


@dataclass(frozen=True)
class NextVersion:
    version: semver.Version
    reason: str
    tagged: bool  # HEAD already carries this version's tag


def _gto(action: str, function: str, *args: Any, **kwargs: Any) -> Any:
    """Call gto.api.`function`; GTO's refusal becomes a VersionError saying what was being done.

    Imported on use: serving reads model names and versions from this module, and the serving
    image does not install GTO (a pipeline-extra package)."""
    import gto.api
    from gto.exceptions import GTOException

    try:
        return getattr(gto.api, function)(*args, **kwargs)
    except GTOException as error:
        raise VersionError(f"{action}: {error}") from None


def release_tags(root: str | Path, name: str) -> dict[semver.Version, str]:
    """Every registered release version of `name` and its tag, oldest first (GTO's registry;
    pre-releases are not versions)."""
    found: dict[semver.Version, str] = {}
    if not git(root, "tag", "--list", f"{name}@v*"):
        return found  # nothing registered yet (GTO would not know the artifact)
    for entry in _gto(f"reading the versions of {name}", "show", str(root), name):
        try:
            found[release_version(str(entry["version"]))] = str(entry["ref"])
        except VersionError:
            continue
    return dict(sorted(found.items()))


def stage_tags(root: str | Path, name: str, stage: str) -> list[str]:
    """The stage tags `name#stage#N` of one stage, in GTO's counter order (oldest first)."""
    numbered = []
    for tag in git(root, "tag", "--list", f"{name}#{stage}#*").splitlines():
        parsed = _gto(f"reading tag {tag}", "parse_tag", tag)
        if parsed.get("name") == name and parsed.get("stage") == stage and "counter" in parsed:
            numbered.append((int(parsed["counter"]), tag))
    return [tag for _, tag in sorted(numbered)]


def _lock_at(root: str | Path, rev: str) -> Any:
    text = git(root, "show", f"{rev}:{paths.DVC_LOCK}", check=False)
    return yaml.safe_load(text) if text else {}


def next_version(root: str | Path = ".", name: str | None = None) -> NextVersion:
    """The version HEAD should be released as: its own tag if it has one, else the bump rule."""
    name = name or model_name(root)
    tags = release_tags(root, name)
    at_head = set(git(root, "tag", "--points-at", "HEAD").splitlines())
    for version, tag in reversed(tags.items()):
        if tag in at_head:
            return NextVersion(version, f"HEAD is already tagged {tag}", tagged=True)
    if not tags:
        return NextVersion(release_version(FIRST_VERSION), "first version", tagged=False)
    latest, tag = next(reversed(tags.items()))
    changed = set(git(root, "diff", "--name-only", f"{tag}^{{commit}}", "HEAD").splitlines())
    part, reason = bump_part(changed, _lock_at(root, tag), _lock_at(root, "HEAD"))
    return NextVersion(latest.next_version(part), f"{part} since {tag}: {reason}", tagged=False)


def tag_version(root: str | Path = ".", name: str | None = None) -> str:
    """Create `name@vX.Y.Z` on HEAD (no-op when HEAD already has its version tag)."""
    name = name or model_name(root)
    step = next_version(root, name)
    tag = version_tag(name, step.version)
    if step.tagged:
        return tag
    if is_dirty(root):
        raise VersionError(
            f"refusing to tag {tag}: tracked files have uncommitted changes, "
            "so HEAD is not what was built"
        )
    _gto(f"tagging {tag}", "register", str(root), name, "HEAD", version=f"v{step.version}")
    return tag


def promote(
    root: str | Path, stage: str, version: str | None = None, name: str | None = None
) -> str:
    """Assign a version (default: HEAD's) to `stage` with a GTO stage tag `name#stage#N`.

    Idempotent: when the stage's latest assignment is already this version, that tag is
    returned and nothing is created (a re-run deploy job adds no stage tag).
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]*", stage):
        raise VersionError(f"stage {stage!r}: use lower-case letters, digits and '-'")
    name = name or model_name(root)
    if version is None:
        step = next_version(root, name)
        if not step.tagged:
            raise VersionError(f"HEAD has no {name}@v* tag; run `gitops-ml version --tag` first")
        target = step.version
    else:
        target = release_version(version)
    tag = release_tags(root, name).get(target)
    if tag is None:
        raise VersionError(f"no tag {version_tag(name, target)}; cannot promote an unknown version")
    in_stage = stage_tags(root, name, stage)
    if in_stage:  # a re-run of the same deployment: the stage already holds this version
        latest = in_stage[-1]
        if git(root, "rev-parse", f"{latest}^{{commit}}") == git(
            root, "rev-parse", f"{tag}^{{commit}}"
        ):
            return latest
    # force: a rollback re-assigns a version the stage held before, which GTO refuses without it;
    # the stage's latest tag (above) is what decides whether anything changes.
    _gto(
        f"assigning {stage}",
        "assign",
        str(root),
        name,
        stage,
        version=f"v{target}",
        force=True,
    )
    return stage_tags(root, name, stage)[-1]


# ---------------------------------------------------------------------------------------------
# CLI: gitops-ml version [--next | --current | --tag | --promote STAGE [--version X.Y.Z]]
# ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--next", action="store_true", help="print HEAD's version (default)")
    action.add_argument("--current", action="store_true", help="print the latest tagged version")
    action.add_argument("--tag", action="store_true", help="create HEAD's annotated version tag")
    action.add_argument("--promote", metavar="STAGE", help="create a stage tag, e.g. production")
    parser.add_argument("--version", help="with --promote: the version to promote (default HEAD's)")
    parser.add_argument(
        "--github-output",
        type=Path,
        help="also append version=… and tag=… lines to this file (the job's $GITHUB_OUTPUT)",
    )


def run(args: argparse.Namespace) -> int:
    name = model_name(".")
    outputs: dict[str, str] = {}
    if args.promote:
        tag = promote(".", args.promote, args.version, name)
        version = args.version or str(next_version(".", name).version)
    elif args.tag:
        tag = tag_version(".", name)
        version = tag.split("@v", 1)[1]
    elif args.current:
        tags = release_tags(".", name)
        if not tags:
            raise VersionError(f"no {name}@v* tag yet")
        latest, tag = next(reversed(tags.items()))
        version = str(latest)
    else:
        step = next_version(".", name)
        version, tag = str(step.version), version_tag(name, step.version)
        outputs["tagged"] = "true" if step.tagged else "false"
        print(step.reason, file=sys.stderr)
    print(tag if (args.tag or args.promote) else version)
    if args.github_output:
        outputs = {"version": version, "tag": tag, "model_name": name, **outputs}
        with open(args.github_output, "a") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in outputs.items())
    return 0
