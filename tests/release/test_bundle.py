"""Bundles: built atomically from a pipeline run, refused when anything no longer matches."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from release_repo import GIT_ENV, commit_all, forge_bundle, git, make_release_repo, write_model

from gitops_ml.cli import main
from gitops_ml.release.bundle import (
    BundleError,
    build_bundle,
    load_bundle,
    sha256_file,
)

ONNX = b"\x08\x07fake-onnx-bytes-the-bundle-treats-as-opaque"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return make_release_repo(tmp_path / "repo", ONNX)


def test_bundle_records_model_identity_provenance_and_loads_back(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo)

    loaded = load_bundle(repo / "dist/bundle")
    assert loaded == bundle
    assert loaded.model_name == "churn-model"
    assert loaded.version == "0.1.0"
    assert loaded.onnx_sha256 == hashlib.sha256(ONNX).hexdigest()
    assert loaded.model_path.read_bytes() == ONNX
    assert "tenure_months" in loaded.contract.feature_names
    meta = loaded.metadata
    assert meta.git_revision == git(repo, "rev-parse", "HEAD")
    assert meta.git_dirty is False
    assert meta.dvc_lock["models/model.onnx"] == hashlib.md5(ONNX).hexdigest()
    assert set(meta.files) == {
        "model.onnx",
        "schema.yaml",
        "model_card.md",
        "metrics/evaluate.json",
        "metrics/export.json",
    }
    for name, entry in meta.files.items():
        assert entry.sha256 == hashlib.sha256((loaded.path / name).read_bytes()).hexdigest()
    assert meta.files["metrics/evaluate.json"].source == "metrics/evaluate.json"
    assert meta.params["model"]["type"] == "hist_gradient_boosting"
    assert meta.metrics["evaluate"]["test"]["roc_auc"] == 0.86
    assert meta.versions["skl2onnx"] == "1.20.0"
    assert {"onnxruntime", "scikit-learn"} <= set(meta.versions)
    card = loaded.model_card_path.read_text()
    assert card.startswith("# churn-model 0.1.0") and loaded.onnx_sha256 in card
    assert "HistGradientBoosting churn." in card
    for path in (loaded.path, *loaded.path.iterdir()):  # readable by the image's non-root user
        assert path.stat().st_mode & 0o004, path


def test_bundle_is_byte_identical_when_rebuilt_from_the_same_commit(repo: Path) -> None:
    first = build_bundle(repo.parent / "a", "0.1.0", root=repo)
    second = build_bundle(repo.parent / "b", "0.1.0", root=repo)
    for name in ("metadata.json", *first.files):
        assert (first.path / name).read_bytes() == (second.path / name).read_bytes()
    assert str(repo) not in (first.path / "metadata.json").read_text()


def test_load_bundle_refuses_a_model_modified_after_the_build(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    bundle.model_path.write_bytes(ONNX + b"tampered")

    with pytest.raises(BundleError, match=r"model\.onnx has sha256 .* files\.model\.onnx says"):
        load_bundle(bundle.path)


def test_load_bundle_refuses_a_changed_contract(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    schema = bundle.path / "schema.yaml"
    schema.write_text(schema.read_text().replace("max: 120", "max: 999"))

    with pytest.raises(BundleError, match=r"schema\.yaml has sha256 .* files\.schema\.yaml says"):
        load_bundle(bundle.path)


def test_load_bundle_names_every_missing_file(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    (bundle.path / "model.onnx").unlink()
    (bundle.path / "model_card.md").unlink()

    with pytest.raises(BundleError, match=r"missing model\.onnx, model_card\.md"):
        load_bundle(bundle.path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{not json", "metadata.json is not valid JSON"),
        ("[]", "metadata.json must hold a JSON object"),
        ('{"model_name": "churn-model", "onnx_sha256": "ab"}', "field 'version': Field required"),
        (
            '{"model_name": "churn-model", "version": "latest", "onnx_sha256": "ab", '
            '"schema_sha256": "cd"}',
            "field 'version': Value error, 'latest' is not a semantic version",
        ),
    ],
)
def test_load_bundle_rejects_unusable_metadata(repo: Path, metadata: str, message: str) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    (bundle.path / "metadata.json").write_text(metadata)

    with pytest.raises(BundleError, match=message):
        load_bundle(bundle.path)


def test_build_refuses_a_model_that_is_not_the_one_in_dvc_lock(repo: Path) -> None:
    (repo / "models/model.onnx").write_bytes(b"retrained but dvc.lock not updated")

    with pytest.raises(
        BundleError, match=r"models/model\.onnx: md5 \w+ differs from dvc\.lock .* run `make run`"
    ):
        build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    assert not (repo / "dist/bundle").exists()


def test_failed_rebuild_leaves_the_previous_bundle_intact(repo: Path) -> None:
    build_bundle(repo / "dist/bundle", "0.1.0", root=repo)

    with pytest.raises(BundleError, match="'not-a-version' is not a semantic version"):
        build_bundle(repo / "dist/bundle", "not-a-version", root=repo)

    assert load_bundle(repo / "dist/bundle").version == "0.1.0"
    assert sorted(p.name for p in (repo / "dist").iterdir()) == ["bundle"]


def test_rebuild_replaces_the_bundle_and_marks_uncommitted_state(repo: Path) -> None:
    build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    write_model(repo, ONNX + b"v2")  # retrained, not committed yet

    bundle = build_bundle(repo / "dist/bundle", "0.2.0", root=repo)

    assert bundle.version == "0.2.0" and bundle.metadata.git_dirty is True
    commit_all(repo, "retrain")
    assert build_bundle(repo / "dist/bundle", "0.2.0", root=repo).metadata.git_dirty is False


def test_bundle_command_stamps_the_next_version_by_default(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    git(repo, "tag", "--annotate", "churn-model@v0.1.0", "--message", "registered")
    write_model(repo, ONNX + b"retrained")
    commit_all(repo, "retrain")

    assert main(["bundle", "--output", "dist/bundle"]) == 0

    assert load_bundle(repo / "dist/bundle").version == "0.2.0"
    assert "churn-model 0.2.0" in capsys.readouterr().out


def test_bundle_command_reports_a_tampered_bundle_without_traceback(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert main(["bundle", "--output", "dist/bundle", "--version", "0.1.0"]) == 0
    metadata = json.loads((repo / "dist/bundle/metadata.json").read_text())
    (repo / "dist/bundle/model.onnx").write_bytes(b"swapped")

    assert main(["bundle", "--output", "dist/bundle", "--verify"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: bundle dist/bundle: model.onnx has sha256")
    assert metadata["onnx_sha256"][:12] in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Tampering: every way of changing a built bundle is refused, naming what no longer agrees
# ---------------------------------------------------------------------------------------------


def _edit_metadata(bundle: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    metadata = json.loads((bundle / "metadata.json").read_text())
    edit(metadata)
    (bundle / "metadata.json").write_text(json.dumps(metadata))


def test_deleting_schema_sha256_to_widen_a_range_is_refused(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    schema = bundle / "schema.yaml"
    schema.write_text(schema.read_text().replace("max: 120", "max: 999"))
    _edit_metadata(bundle, lambda m: m.pop("schema_sha256"))

    with pytest.raises(BundleError, match=r"metadata\.json field 'schema_sha256': Field required"):
        load_bundle(bundle)


def test_dropping_the_contract_from_the_file_list_is_refused(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    _edit_metadata(bundle, lambda m: m["files"].pop("schema.yaml"))

    with pytest.raises(BundleError, match=r"files lists no schema\.yaml"):
        load_bundle(bundle)


def test_swapped_model_with_only_onnx_sha256_recomputed_is_refused(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    (bundle / "model.onnx").write_bytes(b"another model")
    _edit_metadata(bundle, lambda m: m.update(onnx_sha256=sha256_file(bundle / "model.onnx")))

    with pytest.raises(BundleError, match=r"model\.onnx has sha256 .* files\.model\.onnx says"):
        load_bundle(bundle)


def test_swapped_model_with_its_file_list_entry_recomputed_fails_the_dvc_lock_md5(
    repo: Path,
) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    (bundle / "model.onnx").write_bytes(b"another model")
    sha = sha256_file(bundle / "model.onnx")

    def edit(metadata: dict[str, Any]) -> None:
        metadata["onnx_sha256"] = sha
        metadata["files"]["model.onnx"]["sha256"] = sha

    _edit_metadata(bundle, edit)

    with pytest.raises(BundleError, match=r"model\.onnx has md5 .* records .* models/model\.onnx"):
        load_bundle(bundle)


def test_a_file_added_to_a_built_bundle_is_refused(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    (bundle / "metrics/extra.json").write_text("{}")

    with pytest.raises(BundleError, match=r"metrics/extra\.json not listed in metadata\.json"):
        load_bundle(bundle)


def test_a_changed_metrics_file_inside_a_bundle_is_refused(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    (bundle / "metrics/evaluate.json").write_text('{"test": {"roc_auc": 0.99}}\n')

    with pytest.raises(BundleError, match=r"metrics/evaluate\.json has sha256"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("metrics/evaluate.json", '{"test": {"roc_auc": 0.91}}\n'),  # params changed, not rerun
        ("reports/model_card.md", "# Model card\n\nA cost of 250.00 for a churner.\n"),
        ("data/schema.yaml", None),  # contract edited after the pipeline ran
    ],
)
def test_build_refuses_any_packed_file_that_dvc_lock_does_not_record(
    repo: Path, path: str, content: str | None
) -> None:
    target = repo / path
    target.write_text(content if content is not None else target.read_text() + "\n# edited\n")
    commit_all(repo, "stale outputs committed")

    with pytest.raises(BundleError, match=rf"{re.escape(path)}: md5 \w+ differs from dvc\.lock"):
        build_bundle(repo / "dist/bundle", "0.1.0", root=repo)
    assert not (repo / "dist/bundle").exists()


def test_build_refuses_a_metrics_file_dvc_lock_does_not_know(repo: Path) -> None:
    (repo / "metrics/handmade.json").write_text("{}\n")

    with pytest.raises(BundleError, match=r"metrics/handmade\.json: dvc\.lock records no md5"):
        build_bundle(repo / "dist/bundle", "0.1.0", root=repo)


def test_verify_against_a_lock_refuses_a_bundle_from_another_commit(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert main(["bundle", "--output", "dist/bundle", "--version", "0.1.0"]) == 0
    assert main(["bundle", "--output", "dist/bundle", "--verify", "--lock", "dvc.lock"]) == 0
    write_model(repo, ONNX + b"retrained")
    commit_all(repo, "retrain")
    capsys.readouterr()

    assert main(["bundle", "--output", "dist/bundle", "--verify", "--lock", "dvc.lock"]) == 2

    err = capsys.readouterr().err
    assert "not built from this checkout's dvc.lock: model.onnx (models/model.onnx" in err


def test_a_file_replaced_by_a_symlink_is_refused(repo: Path) -> None:
    bundle = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    (bundle / "model.onnx").rename(repo / "elsewhere.onnx")
    (bundle / "model.onnx").symlink_to(repo / "elsewhere.onnx")

    with pytest.raises(BundleError, match=r"model\.onnx is a symlink"):
        load_bundle(bundle)


# ---------------------------------------------------------------------------------------------
# One check: metadata.json is a strict record, and every field it holds is compared with what it
# describes (the files, the model card's release header) and, given one, with dvc.lock
# ---------------------------------------------------------------------------------------------


def _verify(*flags: str) -> int:
    return main(["bundle", "--output", "dist/bundle", "--verify", *flags])


@pytest.fixture
def built(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(git_dirty="no"), "git_dirty"),
        (lambda m: m.update(metrics=[]), "metrics"),
        (lambda m: m["versions"].update(onnxruntime=1.2), "versions.onnxruntime"),
        (lambda m: m.update(signed_by="release-bot"), "signed_by"),
        (lambda m: m["files"]["model.onnx"].update(sha256="AB" * 32), "files.model.onnx.sha256"),
        (lambda m: m["dvc_lock"].update({"models/model.onnx": 5}), "dvc_lock.models/model.onnx"),
        (lambda m: m.pop("git_revision"), "git_revision"),
    ],
)
def test_metadata_not_of_the_documented_shape_is_an_error_naming_the_field(
    built: Path,
    edit: Callable[[dict[str, Any]], Any],
    field: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _edit_metadata(built, edit)

    assert _verify() == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: bundle dist/bundle: metadata.json field '{field}': ")
    assert "Traceback" not in err


def test_metadata_that_is_not_utf8_text_is_an_error_not_a_traceback(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (built / "metadata.json").write_bytes(b'{"model_name": "\xff"}')

    assert _verify() == 2

    err = capsys.readouterr().err
    assert err.startswith("error: bundle dist/bundle: metadata.json is not valid JSON: ")
    assert "Traceback" not in err


def test_a_model_card_without_its_dvc_lock_source_is_refused(built: Path) -> None:
    _edit_metadata(built, lambda m: m["files"]["model_card.md"].pop("source"))

    with pytest.raises(BundleError, match=r"records no dvc\.lock source for model_card\.md"):
        load_bundle(built)


@pytest.mark.parametrize(
    ("forgery", "message"),
    [
        (
            lambda m: m["metrics"]["evaluate"]["test"].update(roc_auc=0.99),
            r"metadata\.json metrics\.evaluate is not the content of metrics/evaluate\.json",
        ),
        (
            lambda m: m["metrics"].update(fairness={"passed": True}),
            r"metadata\.json metrics\.fairness is not the content of metrics/fairness\.json",
        ),
        (
            lambda m: m["versions"].update(skl2onnx="1.99.0"),
            r"metadata\.json versions\.skl2onnx is not the 1\.20\.0 metrics/export\.json",
        ),
    ],
)
def test_edited_metrics_or_versions_are_refused_at_load_even_with_every_hash_recomputed(
    built: Path, forgery: Callable[[dict[str, Any]], Any], message: str
) -> None:
    forge_bundle(built, forgery)

    with pytest.raises(BundleError, match=message):
        load_bundle(built)


def test_a_packed_export_json_of_another_shape_is_refused_naming_the_field(built: Path) -> None:
    """It used to stop with a TypeError when `versions` was not an object."""
    (built / "metrics/export.json").write_text('{"versions": 5}')
    forge_bundle(built, lambda m: m["metrics"].update(export={"versions": 5}))

    with pytest.raises(BundleError, match=r"metrics/export\.json: field 'onnx': Field required"):
        load_bundle(built)


def test_a_model_card_edited_with_every_hash_recomputed_is_refused_against_the_lock(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = built / "model_card.md"
    card.write_text(card.read_text().replace("HistGradientBoosting", "Audited, bias-free"))
    forge_bundle(built, lambda m: None)
    assert _verify() == 0, "consistent in itself: only the checkout's dvc.lock can tell"

    assert _verify("--lock", "dvc.lock") == 2

    err = capsys.readouterr().err
    assert "model_card.md (reports/model_card.md: dvc.lock records" in err


def test_a_model_card_whose_release_header_was_edited_is_refused(built: Path) -> None:
    card = built / "model_card.md"
    card.write_text(card.read_text().replace("| version | `0.1.0` |", "| version | `1.0.0` |"))
    _edit_metadata(built, lambda m: m["files"]["model_card.md"].update(sha256=sha256_file(card)))

    with pytest.raises(BundleError, match=r"model_card\.md is not headed by the release"):
        load_bundle(built)


def test_an_edited_version_is_refused_when_verified_for_the_version_being_released(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forge_bundle(built, lambda m: m.update(version="2.0.0"))

    assert _verify("--lock", "dvc.lock", "--version", "0.1.0") == 2

    assert "version 2.0.0, not the 0.1.0 being released" in capsys.readouterr().err


def test_a_malicious_model_with_every_hash_recomputed_is_refused_against_the_lock(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (built / "model.onnx").write_bytes(b"a model that approves everyone")
    forge_bundle(built, lambda m: None)

    assert _verify("--lock", "dvc.lock") == 2

    assert "model.onnx (models/model.onnx: dvc.lock records" in capsys.readouterr().err


def test_edited_params_are_refused_against_the_lock(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    lock["stages"]["export"]["params"] = {"params.yaml": {"model.type": "hist_gradient_boosting"}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    commit_all(repo, "the export stage records the model type it ran with")
    monkeypatch.chdir(repo)
    built = build_bundle(repo / "dist/bundle", "0.1.0", root=repo).path
    assert _verify("--lock", "dvc.lock") == 0
    forge_bundle(built, lambda m: m["params"]["model"].update(type="logistic_regression"))

    assert _verify("--lock", "dvc.lock") == 2

    err = capsys.readouterr().err
    assert "params.model.type: dvc.lock records 'hist_gradient_boosting', not 'logistic" in err


def test_a_malformed_dvc_lock_is_an_error_not_a_traceback(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("dvc.lock").write_text("stages:\n  export: [1, 2]\n")

    assert _verify("--lock", "dvc.lock") == 2

    assert capsys.readouterr().err == "error: dvc.lock stage export: not a mapping\n"
