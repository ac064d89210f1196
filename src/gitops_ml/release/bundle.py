"""Model bundles: everything a deployment needs, verifiable on its own.

A bundle is a directory with `model.onnx`, `schema.yaml` (the data contract), `metadata.json`
and `model_card.md`. The metadata records where the model came from (version, Git revision,
the `dvc.lock` hashes, params, metrics, converter versions) and the sha256 of the model and the
contract, so a server can refuse a bundle that was modified after it was built.
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
from typing import Any

from gitops_ml.contract import Contract, ContractError, load_contract
from gitops_ml.errors import UserError
from gitops_ml.io import read_json, read_yaml, write_bytes, write_json
from gitops_ml.release import versions

MODEL_FILE = "model.onnx"
CONTRACT_FILE = "schema.yaml"
METADATA_FILE = "metadata.json"
MODEL_CARD_FILE = "model_card.md"
BUNDLE_FILES = (MODEL_FILE, CONTRACT_FILE, METADATA_FILE, MODEL_CARD_FILE)
RECORDED_PACKAGES = ("skl2onnx", "onnxruntime", "onnx", "scikit-learn")


class BundleError(UserError):
    """A bundle is incomplete, was modified after it was built, or cannot be built."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    model_path: Path
    contract: Contract
    metadata: dict[str, Any]
    model_name: str
    version: str
    onnx_sha256: str

    @property
    def model_card_path(self) -> Path:
        return self.path / MODEL_CARD_FILE


@dataclass(frozen=True)
class BundleSources:
    """Where the pipeline left the files a bundle is made from (paths as in dvc.yaml)."""

    model: Path
    contract: Path
    model_card: Path
    params: Path
    dvc_yaml: Path
    dvc_lock: Path
    metrics_dir: Path

    @classmethod
    def under(cls, root: str | Path) -> BundleSources:
        root = Path(root)
        return cls(
            model=root / "models/model.onnx",
            contract=root / "data/schema.yaml",
            model_card=root / "reports/model_card.md",
            params=root / "params.yaml",
            dvc_yaml=root / "dvc.yaml",
            dvc_lock=root / "dvc.lock",
            metrics_dir=root / "metrics",
        )


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading and verifying a bundle (what serving calls before it reports ready)
# ---------------------------------------------------------------------------------------------


def _metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads((path / METADATA_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"bundle {path}: {METADATA_FILE} is not valid JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise BundleError(f"bundle {path}: {METADATA_FILE} must hold a JSON object")
    for key in ("model_name", "version", "onnx_sha256"):
        if not isinstance(metadata.get(key), str) or not metadata[key]:
            raise BundleError(f"bundle {path}: {METADATA_FILE} has no '{key}' string")
    if not versions.is_semver(metadata["version"]):
        raise BundleError(
            f"bundle {path}: {METADATA_FILE} version {metadata['version']!r} "
            "is not a semantic version"
        )
    return metadata


def _verify_hash(bundle_dir: Path, file_name: str, key: str, expected: Any) -> None:
    actual = sha256_file(bundle_dir / file_name)
    if actual != expected:
        raise BundleError(
            f"bundle {bundle_dir}: {file_name} has sha256 {actual[:12]}… but {METADATA_FILE} "
            f"{key} says {str(expected)[:12]}…; the bundle was modified after it was built"
        )


def load_bundle(path: str | Path) -> Bundle:
    """Open a bundle directory after checking every file is present and every hash matches."""
    bundle_dir = Path(path)
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle {bundle_dir}: not a directory")
    missing = [name for name in BUNDLE_FILES if not (bundle_dir / name).is_file()]
    if missing:
        raise BundleError(f"bundle {bundle_dir}: missing {', '.join(missing)}")
    metadata = _metadata(bundle_dir)
    _verify_hash(bundle_dir, MODEL_FILE, "onnx_sha256", metadata["onnx_sha256"])
    if "schema_sha256" in metadata:
        _verify_hash(bundle_dir, CONTRACT_FILE, "schema_sha256", metadata["schema_sha256"])
    try:
        contract = load_contract(bundle_dir / CONTRACT_FILE)
    except ContractError as exc:
        raise BundleError(f"bundle {bundle_dir}: {exc}") from None
    return Bundle(
        path=bundle_dir,
        model_path=bundle_dir / MODEL_FILE,
        contract=contract,
        metadata=metadata,
        model_name=metadata["model_name"],
        version=metadata["version"],
        onnx_sha256=metadata["onnx_sha256"],
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
) -> dict[str, Any]:
    if not versions.is_semver(version):
        raise BundleError(f"version {version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    return {
        "model_name": model_name,
        "version": version,
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "schema_sha256": hashlib.sha256(contract_bytes).hexdigest(),
        "git_revision": git_revision,
        "git_dirty": git_dirty,
        "dvc_lock": dict(dvc_lock),
        "params": dict(params),
        "metrics": dict(metrics),
        "versions": dict(package_versions),
    }


def release_model_card(card: str, metadata: Mapping[str, Any]) -> str:
    """The pipeline's model card headed by what identifies this release."""
    header = (
        f"# {metadata['model_name']} {metadata['version']}\n\n"
        f"| release | value |\n|---|---|\n"
        f"| version | `{metadata['version']}` |\n"
        f"| git revision | `{metadata['git_revision']}` |\n"
        f"| ONNX sha256 | `{metadata['onnx_sha256']}` |\n"
        f"| data contract sha256 | `{metadata['schema_sha256']}` |\n\n"
    )
    return header + card


def write_bundle(
    output: str | Path, onnx_bytes: bytes, contract_bytes: bytes, card: str, metadata: dict
) -> Bundle:
    """Write the bundle into a temporary sibling, verify it, then rename it over `output`."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        write_bytes(staging / MODEL_FILE, onnx_bytes)
        write_bytes(staging / CONTRACT_FILE, contract_bytes)
        write_bytes(staging / MODEL_CARD_FILE, release_model_card(card, metadata).encode())
        write_json(staging / METADATA_FILE, metadata)
        # Atomic writes create 0600 files; the image runs the server as a non-root user.
        os.chmod(staging, 0o755)
        for name in BUNDLE_FILES:
            os.chmod(staging / name, 0o644)
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


def _check_model_in_lock(model: str, onnx_bytes: bytes, hashes: Mapping[str, str]) -> None:
    """The bundled model must be the one dvc.lock records, or the release is unreproducible."""
    if model not in hashes:
        raise BundleError(f"dvc.lock records no output {model}; run `dvc repro` and commit")
    actual = hashlib.md5(onnx_bytes).hexdigest()
    if actual != hashes[model]:
        raise BundleError(
            f"{model}: md5 {actual} differs from dvc.lock ({hashes[model]}); the model on disk "
            "is not the recorded one — run `dvc repro` (or `dvc checkout`) and commit dvc.lock"
        )


def _package_versions(export_metrics: Any) -> dict[str, str]:
    recorded = export_metrics.get("versions", {}) if isinstance(export_metrics, dict) else {}
    out: dict[str, str] = {}
    for package in RECORDED_PACKAGES:
        if package in recorded:
            out[package] = str(recorded[package])
        else:
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
    """Bundle the pipeline's current outputs under `root` as `version`, atomically."""
    root = Path(root)
    src = sources or BundleSources.under(root)
    onnx_bytes = _read_bytes(src.model, "ONNX model")
    contract_bytes = _read_bytes(src.contract, "data contract")
    card = _read_bytes(src.model_card, "model card").decode()
    hashes = versions.lock_hashes(_read_yaml(src.dvc_lock, "dvc.lock"))
    _check_model_in_lock(Path(os.path.relpath(src.model, root)).as_posix(), onnx_bytes, hashes)
    metrics = {p.stem: read_json(p) for p in sorted(src.metrics_dir.glob("*.json"))}
    dvc_yaml = _read_yaml(src.dvc_yaml, "dvc.yaml")
    try:
        name = versions.model_name_from_dvc_yaml(dvc_yaml, str(src.dvc_yaml))
        revision = versions.head_revision(root)
        dirty = versions.is_dirty(root)
    except versions.VersionError as exc:
        raise BundleError(str(exc)) from None
    metadata = bundle_metadata(
        model_name=name,
        version=version,
        onnx_bytes=onnx_bytes,
        contract_bytes=contract_bytes,
        git_revision=revision,
        git_dirty=dirty,
        dvc_lock=hashes,
        params=_read_yaml(src.params, "params.yaml"),
        metrics=metrics,
        package_versions=_package_versions(metrics.get("export")),
    )
    return write_bundle(output, onnx_bytes, contract_bytes, card, metadata)


# ---------------------------------------------------------------------------------------------
# CLI: gitops-ml bundle --output DIR [--version X.Y.Z]
# ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, type=Path, help="bundle directory to write")
    parser.add_argument(
        "--version",
        help="semantic version to stamp (default: the next version by the bump rule)",
    )
    parser.add_argument("--verify", action="store_true", help="only verify the bundle at --output")


def run(args: argparse.Namespace) -> int:
    if args.verify:
        bundle = load_bundle(args.output)
    else:
        version = args.version or str(versions.next_version(".").version)
        bundle = build_bundle(args.output, version.removeprefix("v"))
    print(
        f"bundle {bundle.path}: {bundle.model_name} {bundle.version} "
        f"(onnx sha256 {bundle.onnx_sha256[:12]}…) verified"
    )
    return 0
