"""`gitops-ml profile`: the reference the drift check compares against, small and reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, ExportedModel
from project_fixtures import drift_settings

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.contract import Contract
from gitops_ml.monitor.profile import build_profile, cell_index, load_profile
from gitops_ml.release.bundle import sha256_file
from gitops_ml.synthetic import generate_churn

EVALUATE = {
    "test": {"roc_auc": 0.86, "accuracy": 0.84, "brier": 0.11, "log_loss": 0.36},
    "ci95": {"roc_auc": {"low": 0.85, "high": 0.87}},
    "rows": {"test": 800},
}


def _profile_cli(exported_model: ExportedModel, directory: Path, output: Path) -> int:
    train = directory / "train.parquet"
    if not train.exists():
        gio.write_parquet(train, exported_model.train_frame)
        gio.write_json(directory / "evaluate.json", EVALUATE)
    return main(
        [
            "profile",
            "--train",
            str(train),
            "--model",
            str(exported_model.onnx_path),
            "--contract",
            str(exported_model.contract_path),
            "--params",
            str(REPO_ROOT / "params.yaml"),
            "--metrics",
            str(directory / "evaluate.json"),
            "--output",
            str(output),
        ]
    )


def test_profile_stage_is_byte_identical_across_runs_and_records_model_and_metrics(
    exported_model: ExportedModel, tmp_path: Path
) -> None:
    assert _profile_cli(exported_model, tmp_path, tmp_path / "a.json") == 0
    assert _profile_cli(exported_model, tmp_path, tmp_path / "b.json") == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    profile = load_profile(tmp_path / "a.json", exported_model.contract)
    assert profile["model_sha256"] == sha256_file(exported_model.onnx_path)
    assert profile["metrics"]["test"] == {"roc_auc": 0.86, "accuracy": 0.84, "brier": 0.11}
    assert profile["rows"] == len(exported_model.train_frame)
    score = profile["score"]
    assert (
        score["count"] == len(exported_model.train_frame) and 0 <= score["min"] < score["max"] <= 1
    )
    assert (tmp_path / "a.json").stat().st_size < 200_000  # small enough to commit
    assert str(tmp_path) not in (tmp_path / "a.json").read_text()  # no absolute paths


def test_profile_covers_every_feature_with_the_right_summary(contract: Contract) -> None:
    frame = generate_churn(3000, seed=9)
    profile = build_profile(frame, contract, drift_settings())
    by_name = {f["name"]: f for f in profile["features"]}
    assert list(by_name) == contract.feature_names
    plan = by_name["plan"]
    assert plan["kind"] == "categorical" and set(plan["categories"]) == {
        "basic",
        "standard",
        "premium",
    }
    assert plan["other"] == 0 and plan["count"] + plan["missing"] == 3000
    payment = by_name["payment_method"]
    assert payment["missing"] == int(frame["payment_method"].isna().sum()) > 0
    sat = by_name["satisfaction_score"]
    assert sat["missing"] == int(frame["satisfaction_score"].isna().sum())
    assert sat["std"] == pytest.approx(frame["satisfaction_score"].std(ddof=0))
    assert by_name["paperless_billing"]["grid"] == [0.0, 1.0]  # bools enter as 0/1
    assert profile["target"]["rate"] == pytest.approx(frame["churned"].mean())
    assert profile["score"] is None and profile["metrics"] is None


def test_rare_categories_beyond_the_limit_pool_into_other(contract: Contract) -> None:
    frame = generate_churn(2000, seed=10)
    settings = drift_settings(max_categories=2)
    region = {f["name"]: f for f in build_profile(frame, contract, settings)["features"]}["region"]
    top_two = frame["region"].value_counts().iloc[:2]
    assert region["categories"] == {str(k): int(v) for k, v in top_two.items()}
    assert region["other"] == 2000 - int(top_two.sum())


def test_missing_training_column_is_a_user_error_naming_it(
    exported_model: ExportedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gio.write_parquet(tmp_path / "train.parquet", exported_model.train_frame.drop(columns="age"))
    gio.write_json(tmp_path / "evaluate.json", EVALUATE)
    assert _profile_cli(exported_model, tmp_path, tmp_path / "p.json") == 2
    assert "training data lacks contract feature column(s) ['age']" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_a_stale_profile_is_refused_when_the_contract_changed(
    contract: Contract, tmp_path: Path
) -> None:
    profile = build_profile(generate_churn(500, seed=1), contract, drift_settings())
    profile["features"] = profile["features"][1:]
    gio.write_json(tmp_path / "old.json", profile)
    with pytest.raises(Exception, match="differ from the contract"):
        load_profile(tmp_path / "old.json", contract)
    (tmp_path / "bad.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(Exception, match="not a version-1 reference profile"):
        load_profile(tmp_path / "bad.json")
    assert np.isfinite(profile["features"][0]["mean"])


@pytest.mark.parametrize("size", [0, 1, 2, 7, 101, 127, 128])
def test_a_values_cell_is_the_one_searchsorted_finds(size: int) -> None:
    """Cells on the quantile grid: below, on and between its points, beyond both ends,
    infinities and -0.0, for grids one short of, at and past a power of two."""
    grid = np.unique(np.random.default_rng(size).normal(size=size))
    values = np.concatenate(
        [
            grid,
            np.nextafter(grid, np.inf),
            np.nextafter(grid, -np.inf),
            np.random.default_rng(1).normal(scale=2.0, size=1000),
            [-np.inf, np.inf, -0.0, 0.0, 1e308, -1e308],
        ]
    )

    assert np.array_equal(cell_index(grid, values), np.searchsorted(grid, values, side="left"))


def test_a_column_longer_than_one_slice_gets_every_values_cell() -> None:
    grid = np.array([-1.0, 0.0, 0.5, 2.0])
    values = np.random.default_rng(2).normal(size=(1 << 20) + 3)

    assert np.array_equal(cell_index(grid, values), np.searchsorted(grid, values, side="left"))
