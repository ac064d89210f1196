"""The paired comparison: the base's ONNX model, found by its dvc.lock md5 in the DVC cache, and
the PR's model scored on the same test rows; every missing piece falls back with a reason."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dvc.repo import Repo
from project_fixtures import CONTRACT_PATH, EXPORT, fit_and_export, fixture_params, task_fixture
from workflow_harness import commit_all, git

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import ModelParams
from gitops_ml.metric_registry import metric_sets
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.pipeline.export import export_model
from gitops_ml.pipeline.train import fit_model
from gitops_ml.review.paired import base_model_bytes, compare_models, onnx_predictions
from gitops_ml.scoring import point_metrics, unpaired_difference
from gitops_ml.tasks import predictions

WEAK_MODEL = ModelParams(type="hist_gradient_boosting", seed=1, hyperparams={"max_iter": 20})
STRONGEST = "contract"  # the fixture data's strongest feature: without it the model is weaker


def lock(model_md5: str, test_md5: str = "test-md5") -> dict[str, Any]:
    return {
        "stages": {
            "split": {"outs": [{"path": paths.TEST, "md5": test_md5}]},
            "export": {"outs": [{"path": paths.MODEL_ONNX, "md5": model_md5}]},
        }
    }


@pytest.fixture(scope="module")
def weak_onnx(exported_model) -> bytes:
    """A base model that never saw the strongest feature (so it takes fewer inputs)."""
    contract = exported_model.contract
    without = replace(contract, columns=[c for c in contract.columns if c.name != STRONGEST])
    model = fit_model(exported_model.train_frame, without, WEAK_MODEL)
    onnx_bytes, _ = export_model(model, exported_model.test_frame, without, EXPORT)
    return onnx_bytes


@pytest.fixture
def root(tmp_path: Path, exported_model) -> Path:
    """A DVC project holding the PR's workspace: model, test split, contract."""
    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "models").mkdir()
    shutil.copyfile(exported_model.onnx_path, tmp_path / paths.MODEL_ONNX)
    gio.write_parquet(tmp_path / paths.TEST, exported_model.test_frame)
    shutil.copyfile(CONTRACT_PATH, tmp_path / paths.CONTRACT)
    return tmp_path


def cache(root: Path, onnx_bytes: bytes) -> str:
    """Put a model into the project's DVC cache, as `dvc repro` on the base left it; its md5."""
    md5 = hashlib.md5(onnx_bytes).hexdigest()
    with Repo(str(root)) as repo:
        target = Path(repo.cache.local.oid_to_path(md5))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(onnx_bytes)
    return md5


def compare(root: Path, base_lock: dict[str, Any], pr_lock: dict[str, Any]):
    return compare_models("base-sha", base_lock, pr_lock, (None, None), fixture_params(), root)


def test_same_model_on_both_sides_differs_by_exactly_zero(root: Path) -> None:
    md5 = cache(root, (root / paths.MODEL_ONNX).read_bytes())

    comparison = compare(root, lock(md5), lock("pr"))

    assert comparison.paired and comparison.rows == 800
    assert all(d.delta == d.low == d.high == 0 for d in comparison.differences.values())
    assert not any(d.real for d in comparison.differences.values())


def test_a_better_pr_model_is_scored_against_the_base_model_on_the_same_rows(
    root: Path, weak_onnx: bytes, exported_model
) -> None:
    md5 = cache(root, weak_onnx)

    comparison = compare(root, lock(md5), lock("pr"))

    test, contract = exported_model.test_frame, exported_model.contract
    y = target_vector(test, contract)
    threshold = fixture_params()["evaluate"]["threshold"]
    base = point_metrics(y, onnx_predictions(weak_onnx, test, contract), threshold)
    pr = point_metrics(
        y, onnx_predictions((root / paths.MODEL_ONNX).read_bytes(), test, contract), threshold
    )
    auc = comparison.differences["roc_auc"]
    assert auc.delta == pytest.approx(pr["roc_auc"] - base["roc_auc"])
    assert auc.paired and auc.real and auc.low <= auc.delta <= auc.high
    assert "cost_per_1000" in comparison.differences
    assert "800 test rows" in comparison.note and "paired bootstrap" in comparison.note


def test_the_paired_interval_is_narrower_than_the_unpaired_one(
    root: Path, weak_onnx: bytes, exported_model
) -> None:
    """The point of pairing: the test set's own noise cancels in the difference."""
    comparison = compare(root, lock(cache(root, weak_onnx)), lock("pr"))
    paired = comparison.differences["roc_auc"]
    half = paired.detectable
    unpaired = unpaired_difference(0.8, 0.8 + paired.delta, (0.78, 0.82), (0.78, 0.82))
    assert half < unpaired.detectable  # ±0.02 each side is this fixture's unpaired width
    assert np.isfinite(half) and half > 0


def test_changed_test_data_falls_back_to_unpaired_and_says_why(root: Path) -> None:
    md5 = cache(root, (root / paths.MODEL_ONNX).read_bytes())

    comparison = compare(root, lock(md5, test_md5="aaaa1111"), lock("pr", test_md5="bbbb2222"))

    assert not comparison.paired and not comparison.differences
    assert comparison.note.startswith("the test sets differ")
    assert "aaaa1111" in comparison.note and "bbbb2222" in comparison.note


def test_a_base_model_in_no_cache_falls_back_with_the_fix(root: Path) -> None:
    comparison = compare(root, lock("0123456789abcdef0123456789abcdef"), lock("pr"))

    assert not comparison.paired
    assert "neither in the local DVC cache nor fetchable from the remote" in comparison.note
    assert "dvc pull" in comparison.note


def test_a_base_without_a_model_falls_back(root: Path) -> None:
    comparison = compare(root, {"stages": {}}, lock("pr"))
    assert not comparison.paired
    assert comparison.note == f"the base records no `{paths.MODEL_ONNX}` in its dvc.lock"


def test_a_base_model_only_on_the_remote_is_fetched_by_dvc(
    tmp_path: Path, weak_onnx: bytes
) -> None:
    """CI without a warm cache: DVC pulls the base's model from the remote at the base revision."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "models").mkdir()
    (root / paths.MODEL_ONNX).write_bytes(weak_onnx)
    Repo.init(str(root)).close()
    (root / ".dvc" / "config").write_text(
        f"[core]\n    remote = store\n['remote \"store\"']\n    url = {tmp_path / 'store'}\n"
    )
    with Repo(str(root)) as repo:
        repo.add(str(root / paths.MODEL_ONNX))
        repo.push()
    sha = commit_all(root, "base model")
    shutil.rmtree(root / ".dvc" / "cache")

    data = base_model_bytes(sha, hashlib.md5(weak_onnx).hexdigest(), root)

    assert data == weak_onnx


# ------------------------------------------------------------------ every task


TASK_MODELS = {  # a small model and a weaker one per task fixture (fewer trees)
    "multiclass": ("random_forest", {"n_estimators": 30}, {"n_estimators": 1, "max_depth": 1}),
    "regression": ("random_forest", {"n_estimators": 30}, {"n_estimators": 1, "max_depth": 1}),
}


@pytest.mark.parametrize("task", list(TASK_MODELS))
def test_every_task_is_compared_on_its_own_metrics_from_its_onnx_output(
    task: str, tmp_path: Path
) -> None:
    """The real fixtures (wine, diabetes): the ONNX output read as `tasks.predictions` gives,
    and the paired comparison of a weaker base over the task's metric set."""
    fixture = task_fixture(task)
    frame, contract = fixture.frame, fixture.contract
    cut = int(len(frame) * 0.7)
    train, test = frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
    kind, strong, weak = TASK_MODELS[task]
    Repo.init(str(tmp_path), no_scm=True).close()
    fitted, _ = fit_and_export(
        train, test, contract, ModelParams(type=kind, seed=0, hyperparams=strong),
        tmp_path / paths.MODEL_ONNX,
    )  # fmt: skip
    fit_and_export(
        train, test, contract, ModelParams(type=kind, seed=0, hyperparams=weak),
        tmp_path / "weak.onnx",
    )  # fmt: skip
    gio.write_parquet(tmp_path / paths.TEST, test)
    shutil.copyfile(fixture.contract_path, tmp_path / paths.CONTRACT)
    params = fixture_params()
    params["evaluate"].pop("costs")  # costs price yes/no decisions only

    onnx = onnx_predictions((tmp_path / paths.MODEL_ONNX).read_bytes(), test, contract)
    md5 = cache(tmp_path, (tmp_path / "weak.onnx").read_bytes())
    comparison = compare_models("base-sha", lock(md5), lock("pr"), (None, None), params, tmp_path)

    expected = predictions(fitted, model_frame(test, contract), task)
    assert onnx.shape == expected.shape
    assert np.allclose(onnx, expected, atol=1e-4 * max(1.0, float(np.std(expected))))
    assert comparison.paired, comparison.note
    assert set(comparison.differences) == set(metric_sets(task, contract.classes).test)
    headline = comparison.differences[metric_sets(task).headline]
    assert headline.real and headline.delta > 0  # the PR's model beats the one-stump base
