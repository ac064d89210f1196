"""Model bundles: everything a deployment needs, verifiable on its own.

A bundle is a directory with `model.onnx`, `schema.yaml` (the data contract), `model_card.md`,
the reference profile and metrics files when the pipeline wrote them, and `metadata.json`. The
metadata records where the model came from (version, Git revision, the `dvc.lock` hashes,
params, metrics, converter versions) and lists every other file with its sha256, so a server
refuses a bundle that lost, gained or changed a file after it was built.

Building is refused unless every pipeline file packed is the one `dvc.lock` records (md5, as
DVC 3 writes it): a merge that committed new params and `dvc.lock` but stale metrics or a stale
model card cannot ship them.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from gitops_ml import paths
from gitops_ml.contract import Contract, ContractError, load_contract
from gitops_ml.errors import UserError, invalid_field
from gitops_ml.io import read_json, read_yaml, write_bytes, write_json
from gitops_ml.release import versions
from gitops_ml.stage_metrics import ExportMetrics, MetricsFileError, parse_export_metrics

MODEL_FILE = "model.onnx"
CONTRACT_FILE = "schema.yaml"
METADATA_FILE = "metadata.json"
MODEL_CARD_FILE = "model_card.md"
PROFILE_FILE = "reference_profile.json"
METRICS_DIR = "metrics"  # inside the bundle; the pipeline's own is paths.METRICS_DIR
REQUIRED_FILES = (MODEL_FILE, CONTRACT_FILE, MODEL_CARD_FILE)
SOURCED_FILES = REQUIRED_FILES  # each the copy of a pipeline file dvc.lock records
_MISSING = object()
RECORDED_PACKAGES = ("skl2onnx", "onnxruntime", "onnx", "scikit-learn")


class BundleError(UserError):
    """A bundle is incomplete, was modified after it was built, or cannot be built."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    model_path: Path
    contract: Contract
    metadata: Metadata

    @property
    def model_name(self) -> str:
        return self.metadata.model_name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def onnx_sha256(self) -> str:
        return self.metadata.onnx_sha256

    @property
    def model_card_path(self) -> Path:
        return self.path / MODEL_CARD_FILE

    @property
    def files(self) -> dict[str, FileEntry]:
        """{bundle file: its sha256 and, when copied from the pipeline, its repo path}."""
        return self.metadata.files


@dataclass(frozen=True)
class BundleSources:
    """Where the pipeline left the files a bundle is made from (paths as in dvc.yaml)."""

    model: Path
    contract: Path
    model_card: Path
    profile: Path
    params: Path
    dvc_lock: Path
    metrics_dir: Path

    @classmethod
    def under(cls, root: str | Path) -> BundleSources:
        root = Path(root)
        return cls(
            model=root / paths.MODEL_ONNX,
            contract=root / paths.CONTRACT,
            model_card=root / paths.MODEL_CARD,
            profile=root / paths.PROFILE,
            params=root / paths.PARAMS,
            dvc_lock=root / paths.DVC_LOCK,
            metrics_dir=root / paths.METRICS_DIR,
        )


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading and verifying a bundle (what serving calls before it reports ready)
# ---------------------------------------------------------------------------------------------


Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Md5 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}(\.dir)?$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class FileEntry(_Record):
    sha256: Sha256
    source: NonEmpty | None = None  # the dvc.lock path a pipeline file was copied from


class Provenance(_Record):
    """Where a release's model came from: metadata.json without its file list. Every field
    required and typed; nothing else is accepted."""

    model_name: NonEmpty
    version: NonEmpty
    onnx_sha256: Sha256
    schema_sha256: Sha256
    git_revision: str
    git_dirty: bool
    dvc_lock: dict[str, Md5]
    params: dict[str, Any]
    metrics: dict[str, Any]
    versions: dict[str, str]

    @field_validator("version")
    @classmethod
    def _semantic(cls, version: str) -> str:
        if not versions.is_semver(version):
            raise ValueError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return version


class Metadata(Provenance):
    """metadata.json: the provenance and every other file of the bundle with its sha256."""

    files: dict[str, FileEntry]


def read_metadata(path: str | Path) -> Metadata:
    """The metadata.json of the bundle directory `path`, typed; BundleError names the file and
    the first field that is not of the documented shape."""
    path = Path(path)
    try:
        raw = json.loads((path / METADATA_FILE).read_text())
    except FileNotFoundError:
        raise BundleError(f"bundle {path}: missing {METADATA_FILE}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle {path}: {METADATA_FILE} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BundleError(f"bundle {path}: {METADATA_FILE} must hold a JSON object")
    try:
        metadata = Metadata.model_validate(raw)
    except ValidationError as exc:
        raise BundleError(f"bundle {path}: {METADATA_FILE} {invalid_field(exc)}") from None
    unlisted = [name for name in REQUIRED_FILES if name not in metadata.files]
    if unlisted:
        raise BundleError(f"bundle {path}: {METADATA_FILE} files lists no {', '.join(unlisted)}")
    unsourced = [name for name in SOURCED_FILES if metadata.files[name].source is None]
    if unsourced:
        raise BundleError(
            f"bundle {path}: {METADATA_FILE} records no dvc.lock source for {', '.join(unsourced)}"
        )
    return metadata


def _files_on_disk(bundle_dir: Path) -> set[str]:
    """Every file under the bundle (relative, '/'-separated), metadata.json excluded."""
    found = {p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if not p.is_dir()}
    return found - {METADATA_FILE}


def _check_listing(bundle_dir: Path, listed: set[str]) -> None:
    """The files on disk are exactly the files the metadata lists: none missing, none added,
    and each a regular file (a symlink could point the server at something else later)."""
    links = sorted(
        p.relative_to(bundle_dir).as_posix() for p in bundle_dir.rglob("*") if p.is_symlink()
    )
    if links:
        raise BundleError(
            f"bundle {bundle_dir}: {', '.join(links)} is a symlink; bundles hold files"
        )
    on_disk = _files_on_disk(bundle_dir)
    missing = sorted(listed - on_disk)
    if missing:
        raise BundleError(f"bundle {bundle_dir}: missing {', '.join(missing)}")
    extra = sorted(on_disk - listed)
    if extra:
        raise BundleError(
            f"bundle {bundle_dir}: {', '.join(extra)} not listed in {METADATA_FILE}; "
            "the bundle was modified after it was built"
        )


def _pipeline_bytes(bundle_dir: Path, name: str, metadata: Metadata) -> bytes:
    """The bytes dvc.lock recorded for a bundle file: the file itself, or for the model card
    the pipeline's card below the release header that metadata.json describes."""
    data = (bundle_dir / name).read_bytes()
    if name != MODEL_CARD_FILE:
        return data
    header = release_model_card("", metadata).encode()
    if not data.startswith(header):
        raise BundleError(
            f"bundle {bundle_dir}: {MODEL_CARD_FILE} is not headed by the release {METADATA_FILE} "
            "describes (model_name, version, git_revision, onnx_sha256, schema_sha256); "
            "the bundle was modified after it was built"
        )
    return data[len(header) :]


def _verify_files(bundle_dir: Path, metadata: Metadata) -> None:
    """Every listed file has its recorded sha256, and a pipeline file its dvc.lock md5."""
    for name, entry in sorted(metadata.files.items()):
        actual = sha256_file(bundle_dir / name)
        if actual != entry.sha256:
            raise BundleError(
                f"bundle {bundle_dir}: {name} has sha256 {actual[:12]}… but {METADATA_FILE} "
                f"files.{name} says {entry.sha256[:12]}…; the bundle was modified after it "
                "was built"
            )
        source = entry.source
        if source is None:
            continue
        recorded = metadata.dvc_lock.get(source)
        actual_md5 = hashlib.md5(_pipeline_bytes(bundle_dir, name, metadata)).hexdigest()
        if actual_md5 != recorded:
            raise BundleError(
                f"bundle {bundle_dir}: {name} has md5 {actual_md5} but the dvc.lock it was built "
                f"from records {recorded} for {source}; the bundle was modified after it was built"
            )
    for key, sha256, name in (
        ("onnx_sha256", metadata.onnx_sha256, MODEL_FILE),
        ("schema_sha256", metadata.schema_sha256, CONTRACT_FILE),
    ):
        if sha256 != metadata.files[name].sha256:
            raise BundleError(
                f"bundle {bundle_dir}: {METADATA_FILE} {key} {sha256[:12]}… disagrees "
                f"with files.{name}; the bundle was modified after it was built"
            )
    packed = {
        Path(name).stem: json.loads((bundle_dir / name).read_bytes())
        for name in metadata.files
        if name.startswith(f"{METRICS_DIR}/")
    }
    recorded_metrics = metadata.metrics

    def canonical(value: Any) -> str:  # NaN, a valid metric value, is not equal to itself
        return json.dumps(value, sort_keys=True)

    for stem in sorted(set(packed) | set(recorded_metrics)):
        if canonical(packed.get(stem)) != canonical(recorded_metrics.get(stem)):
            raise BundleError(
                f"bundle {bundle_dir}: {METADATA_FILE} metrics.{stem} is not the content of "
                f"{METRICS_DIR}/{stem}.json; the bundle was modified after it was built"
            )
    try:
        export = None if "export" not in packed else parse_export_metrics(packed["export"])
    except MetricsFileError as exc:
        raise BundleError(f"bundle {bundle_dir}: {exc}") from None
    exported = _package_versions(export, installed=False)
    for package, version in sorted(exported.items()):
        if metadata.versions.get(package) != version:
            raise BundleError(
                f"bundle {bundle_dir}: {METADATA_FILE} versions.{package} is not the "
                f"{version} {METRICS_DIR}/export.json records; the bundle was modified after it "
                "was built"
            )


def load_bundle(path: str | Path) -> Bundle:
    """Open a bundle directory after checking its file list, every hash and the contract."""
    bundle_dir = Path(path)
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle {bundle_dir}: not a directory")
    metadata = read_metadata(bundle_dir)
    _check_listing(bundle_dir, set(metadata.files))
    _verify_files(bundle_dir, metadata)
    try:
        contract = load_contract(bundle_dir / CONTRACT_FILE)
    except ContractError as exc:
        raise BundleError(f"bundle {bundle_dir}: {exc}") from None
    return Bundle(
        path=bundle_dir, model_path=bundle_dir / MODEL_FILE, contract=contract, metadata=metadata
    )


def check_against_lock(bundle: Bundle, lock_path: str | Path) -> None:
    """Every dvc.lock fact metadata.json records is the one this checkout's dvc.lock holds:
    each output md5 (so each pipeline file of the bundle) and each parameter a stage ran with."""
    lock = _read_yaml(Path(lock_path), paths.DVC_LOCK)
    stale = []
    for path, md5 in sorted(bundle.metadata.dvc_lock.items()):
        recorded = _recorded_md5(lock, path)
        if recorded != md5:
            users = ", ".join(n for n, e in sorted(bundle.files.items()) if e.source == path)
            stale.append(
                f"{users} ({path}: dvc.lock records {recorded})"
                if users
                else f"dvc_lock.{path} ({METADATA_FILE} {md5}, dvc.lock {recorded})"
            )
    for key, value in sorted(_recorded_params(lock).items()):
        found: Any = bundle.metadata.params
        for part in key.split("."):
            found = found.get(part, _MISSING) if isinstance(found, dict) else _MISSING
        if found != value:
            shown = "nothing" if found is _MISSING else repr(found)
            stale.append(f"params.{key}: dvc.lock records {value!r}, not {shown}")
    if stale:
        raise BundleError(
            f"bundle {bundle.path}: not built from this checkout's {lock_path}: {'; '.join(stale)}"
        )


# ---------------------------------------------------------------------------------------------
# Building a bundle: pure pieces, then the file-level builder
# ---------------------------------------------------------------------------------------------


def bundle_metadata(
    *,
    model_name: str,
    version: str,
    onnx_bytes: bytes,
    contract_bytes: bytes,
    git_revision: str,
    git_dirty: bool,
    dvc_lock: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    package_versions: Mapping[str, str],
) -> Provenance:
    try:
        return Provenance(
            model_name=model_name,
            version=version,
            onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
            schema_sha256=hashlib.sha256(contract_bytes).hexdigest(),
            git_revision=git_revision,
            git_dirty=git_dirty,
            dvc_lock=dict(dvc_lock),
            params=dict(params),
            metrics=dict(metrics),
            versions=dict(package_versions),
        )
    except ValidationError as exc:
        raise BundleError(f"cannot build {METADATA_FILE}: {invalid_field(exc)}") from None


def release_model_card(card: str, release: Provenance) -> str:
    """The pipeline's model card headed by what identifies this release."""
    header = (
        f"# {release.model_name} {release.version}\n\n"
        f"| release | value |\n|---|---|\n"
        f"| version | `{release.version}` |\n"
        f"| git revision | `{release.git_revision}` |\n"
        f"| ONNX sha256 | `{release.onnx_sha256}` |\n"
        f"| data contract sha256 | `{release.schema_sha256}` |\n\n"
    )
    return header + card


def write_bundle(
    output: str | Path,
    onnx_bytes: bytes,
    contract_bytes: bytes,
    card: str,
    provenance: Provenance,
    *,
    sources: Mapping[str, str],
    extra_files: Mapping[str, bytes] | None = None,
) -> Bundle:
    """Write the bundle into a temporary sibling, verify it, then rename it over `output`.

    `sources` maps bundle file names to the pipeline paths they were copied from (the keys of
    `provenance.dvc_lock`); the model must have one. `extra_files` (profile, metrics) are
    packed as they are.
    """
    output = Path(output)
    contents = {
        MODEL_FILE: onnx_bytes,
        CONTRACT_FILE: contract_bytes,
        MODEL_CARD_FILE: release_model_card(card, provenance).encode(),
        **(extra_files or {}),
    }
    if METADATA_FILE in contents:
        raise BundleError(f"{METADATA_FILE} is written by the bundle itself, not packed")
    files: dict[str, dict[str, str]] = {}
    for name, data in sorted(contents.items()):
        files[name] = {"sha256": hashlib.sha256(data).hexdigest()}
        if name in sources:
            files[name]["source"] = sources[name]
    metadata = {**provenance.model_dump(), "files": files}
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for name, data in contents.items():
            write_bytes(staging / name, data)
        write_json(staging / METADATA_FILE, metadata)
        # Atomic writes create 0600 files; the image runs the server as a non-root user.
        for path in (staging, *staging.rglob("*")):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        load_bundle(staging)
        _replace_dir(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_bundle(output)


def _replace_dir(new: Path, target: Path) -> None:
    if target.is_symlink() or target.is_file():
        raise BundleError(f"{target}: exists and is not a bundle directory; choose another path")
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.rename(target, old / "bundle")
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path}: {what} not found; run `make run` (dvc repro) first") from None


def _read_yaml(path: Path, what: str) -> Any:
    return read_yaml(path, what, BundleError, hint="; run `make run` (dvc repro) first") or {}


def _recorded_md5(lock: Any, path: str) -> str | None:
    """The md5 dvc.lock records for `path` (as a stage output or dependency).

    A path recorded with two different md5s (one stage ran on an older version of it) or in
    DVC 2's format (no `hash: md5`, text hashed with CRLF normalised) is refused: the bundle
    could not be checked byte for byte.
    """
    found: set[str] = set()
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage_name, stage in (stages or {}).items():
        if not isinstance(stage, dict):
            raise BundleError(f"dvc.lock stage {stage_name}: not a mapping")
        for entry in [*(stage.get("outs") or []), *(stage.get("deps") or [])]:
            if not isinstance(entry, dict):
                raise BundleError(f"dvc.lock stage {stage_name}: {entry!r} is not an output")
            if str(entry.get("path")) != path or "md5" not in entry:
                continue
            if entry.get("hash") != "md5":
                raise BundleError(
                    f"dvc.lock stage {stage_name}: {path} is recorded without `hash: md5` "
                    "(DVC 2 format); run `dvc repro` with DVC 3 and commit dvc.lock"
                )
            found.add(str(entry["md5"]))
    if len(found) > 1:
        raise BundleError(
            f"dvc.lock records {len(found)} different md5s for {path} "
            f"({', '.join(sorted(found))}); run `make run` and commit dvc.lock"
        )
    return found.pop() if found else None


def _recorded_params(lock: Any) -> dict[str, Any]:
    """{dotted key: value} of the params.yaml values the stages of a dvc.lock ran with."""
    found: dict[str, Any] = {}
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage_name, stage in (stages or {}).items():
        params = stage.get("params") if isinstance(stage, dict) else None
        recorded = params.get(paths.PARAMS) if isinstance(params, dict) else None
        if recorded is None:
            continue
        if not isinstance(recorded, dict):
            raise BundleError(f"dvc.lock stage {stage_name}: params {paths.PARAMS} is no mapping")
        found.update({str(key): value for key, value in recorded.items()})
    return found


def _check_against_lock(lock: Any, packed: Mapping[str, bytes]) -> dict[str, str]:
    """{path: md5} for every packed pipeline file, refusing any that dvc.lock does not record."""
    problems: list[str] = []
    recorded: dict[str, str] = {}
    for path, data in sorted(packed.items()):
        md5 = _recorded_md5(lock, path)
        actual = hashlib.md5(data).hexdigest()
        if md5 is None:
            problems.append(f"{path}: dvc.lock records no md5 for it")
        elif md5 != actual:
            problems.append(f"{path}: md5 {actual} differs from dvc.lock ({md5})")
        else:
            recorded[path] = md5
    if problems:
        raise BundleError(
            "refusing to bundle files that are not the ones dvc.lock records — "
            + "; ".join(problems)
            + ". The committed outputs are stale: run `make run` (or `dvc checkout`) and commit"
        )
    return recorded


def _package_versions(export: ExportMetrics | None, installed: bool = True) -> dict[str, str]:
    """The converter versions the export stage recorded, else (`installed`) the ones here."""
    recorded = export.versions if export else {}
    out: dict[str, str] = {}
    for package in RECORDED_PACKAGES:
        if package in recorded:
            out[package] = str(recorded[package])
        elif installed:
            try:
                out[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def build_bundle(
    output: str | Path,
    version: str,
    root: str | Path = ".",
    sources: BundleSources | None = None,
) -> Bundle:
    """Bundle the pipeline's current outputs under `root` as `version`, atomically.

    Every pipeline file packed (model, contract, model card, profile, metrics) must match the
    md5 `dvc.lock` records for it; the first stale file stops the build, naming all of them.
    """
    root = Path(root)
    src = sources or BundleSources.under(root)

    def rel(path: Path) -> str:
        return Path(os.path.relpath(path, root)).as_posix()

    onnx_bytes = _read_bytes(src.model, "ONNX model")
    contract_bytes = _read_bytes(src.contract, "data contract")
    card_bytes = _read_bytes(src.model_card, "model card")
    extra: dict[str, bytes] = {}
    if src.profile.is_file():
        extra[PROFILE_FILE] = src.profile.read_bytes()
    metric_paths = sorted(src.metrics_dir.glob("*.json"))
    for path in metric_paths:
        extra[f"{METRICS_DIR}/{path.name}"] = path.read_bytes()
    bundle_sources = {
        MODEL_FILE: rel(src.model),
        CONTRACT_FILE: rel(src.contract),
        MODEL_CARD_FILE: rel(src.model_card),
        **({PROFILE_FILE: rel(src.profile)} if PROFILE_FILE in extra else {}),
        **{f"{METRICS_DIR}/{p.name}": rel(p) for p in metric_paths},
    }
    lock = _read_yaml(src.dvc_lock, paths.DVC_LOCK)
    packed = {
        rel(src.model): onnx_bytes,
        rel(src.contract): contract_bytes,
        rel(src.model_card): card_bytes,
        **{bundle_sources[name]: data for name, data in extra.items()},
    }
    recorded = _check_against_lock(lock, packed)
    metrics = {p.stem: read_json(p) for p in metric_paths}
    try:
        name = versions.model_name_in(src.contract)
        revision = versions.head_revision(root)
        dirty = versions.is_dirty(root)
    except versions.VersionError as exc:
        raise BundleError(str(exc)) from None
    provenance = bundle_metadata(
        model_name=name,
        version=version,
        onnx_bytes=onnx_bytes,
        contract_bytes=contract_bytes,
        git_revision=revision,
        git_dirty=dirty,
        dvc_lock={**versions.lock_hashes(lock), **recorded},
        params=_read_yaml(src.params, paths.PARAMS),
        metrics=metrics,
        package_versions=_package_versions(
            parse_export_metrics(metrics["export"]) if "export" in metrics else None
        ),
    )
    return write_bundle(
        output,
        onnx_bytes,
        contract_bytes,
        card_bytes.decode(),
        provenance,
        sources=bundle_sources,
        extra_files=extra,
    )


# ---------------------------------------------------------------------------------------------
# CLI: gitops-ml bundle --output DIR [--version X.Y.Z] [--verify [--lock dvc.lock]]
# ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path, help="bundle directory to write")
    parser.add_argument(
        "--version",
        help="semantic version to stamp (default: the next version by the bump rule); with "
        "--verify, the version the bundle must carry",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="only verify the bundle at --output (file list, sha256s, dvc.lock md5s)",
    )
    parser.add_argument(
        "--lock",
        type=Path,
        help="with --verify: also require the bundle's pipeline files to be the ones this "
        "dvc.lock records (the checkout the bundle claims to come from)",
    )


def run(args: argparse.Namespace) -> int:
    if args.lock is not None and not args.verify:
        raise BundleError("--lock only applies with --verify")
    if args.verify:
        bundle = load_bundle(args.output)
        if args.lock is not None:
            check_against_lock(bundle, args.lock)
        if args.version is not None and bundle.version != args.version.removeprefix("v"):
            raise BundleError(
                f"bundle {bundle.path}: version {bundle.version}, not the {args.version} "
                "being released"
            )
    else:
        version = args.version or str(versions.next_version(".").version)
        bundle = build_bundle(args.output, version.removeprefix("v"))
    print(
        f"bundle {bundle.path}: {bundle.model_name} {bundle.version} "
        f"(onnx sha256 {bundle.onnx_sha256[:12]}…, {len(bundle.files)} files) verified"
    )
    return 0
