"""The evaluate stage: metrics as scikit-learn defines them, honest intervals, a cost-minimising
threshold chosen away from the test set, plot data on fixed grids, and byte-identical reruns."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from joblib import parallel_config
from project_fixtures import CONTRACT_PATH, task_fixture
from sklearn import metrics as skm
from sklearn.pipeline import Pipeline

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.config import ConfigError, Costs, EvaluateParams, ModelParams
from gitops_ml.contract import Column, Contract
from gitops_ml.evaluate_metrics import parse_evaluate_metrics, read_evaluate_metrics
from gitops_ml.metric_registry import metric_sets
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.pipeline import evaluate as evaluate_module
from gitops_ml.pipeline.evaluate import (
    CALIBRATION_FILE,
    CONFUSION_FILE,
    CURVE_GRID,
    FIT_BYTES_PER_VALUE,
    MIN_SLICE_ROWS,
    PR_FILE,
    PREDICTED_ACTUAL_FILE,
    RESIDUALS_FILE,
    ROC_FILE,
    EvaluateError,
    best_threshold,
    bootstrap_intervals,
    business_view,
    calibration_bins,
    calibration_error,
    concurrent_fits,
    cost_per_1000,
    cross_validate,
    evaluate,
    fit_bytes,
    precision_recall_points,
    predicted_vs_actual,
    residual_deciles,
    roc_points,
    slice_groups,
    slice_metrics,
    training_noise,
    write_evaluation,
)
from gitops_ml.pipeline.train import fit_model, model_rows, save_model
from gitops_ml.scoring import bootstrap_weights, point_metrics, score
from gitops_ml.synthetic import generate_churn

ROOT = Path(__file__).resolve().parents[2]
TEST_METRICS = metric_sets("binary").test
BINARY_PLOTS = {ROC_FILE: "roc", PR_FILE: "precision_recall", CALIBRATION_FILE: "calibration"}
SMALL_MODEL = ModelParams(type="hist_gradient_boosting", seed=0, hyperparams={"max_iter": 25})
COSTS = Costs(false_positive=25.0, false_negative=250.0)
PARAMS = EvaluateParams(
    threshold=0.5,
    bootstrap_samples=50,
    cv_folds=3,
    seed=7,
    costs=COSTS,
    refits=3,
    refit_fraction=0.9,
    jobs="auto",
)


def scored(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative scores with ties (rounded) and exact 0/1 probabilities."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    p = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0.0, 1.0).round(2)
    return y, p


def sklearn_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (p >= threshold).astype(np.int64)
    return {
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "accuracy": skm.accuracy_score(y, predicted),
        "precision": skm.precision_score(y, predicted),
        "recall": skm.recall_score(y, predicted),
        "f1": skm.f1_score(y, predicted),
        "log_loss": skm.log_loss(y, p),
        "brier": skm.brier_score_loss(y, p),
    }


# ------------------------------------------------------------------ metric correctness


def test_point_metrics_equal_sklearn_on_tied_and_saturated_scores() -> None:
    y, p = scored(2000, seed=1)
    assert np.any(p == 0.0) and np.any(p == 1.0) and len(np.unique(p)) < 120

    ours = point_metrics(y, p, threshold=0.4)

    assert set(ours) == set(TEST_METRICS)
    for name, expected in sklearn_metrics(y, p, threshold=0.4).items():
        assert ours[name] == pytest.approx(expected, abs=1e-12), name


def test_binary_metrics_equal_sklearn_on_the_resampled_rows() -> None:
    y, p = scored(500, seed=2)
    rng = np.random.default_rng(3)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(4)]
    weights = np.stack([np.bincount(d, minlength=len(y)) for d in draws])

    ours = score("binary", y, p, weights)

    for b, rows in enumerate(draws):
        for name, expected in sklearn_metrics(y[rows], p[rows], threshold=0.5).items():
            assert ours[name][b] == pytest.approx(expected, abs=1e-12), (name, b)


def test_binary_metrics_are_nan_for_a_resample_without_positives() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])

    ours = score("binary", y, p, np.array([[2, 2, 0, 0]]))

    assert np.isnan(ours["roc_auc"][0]) and np.isnan(ours["pr_auc"][0])
    assert ours["accuracy"][0] == 1.0


def test_bootstrap_weights_are_seeded_resamples_of_every_row_count() -> None:
    def weights_for(seed: int) -> np.ndarray:
        return bootstrap_weights(n_rows=300, samples=20, rng=np.random.default_rng(seed))

    weights = weights_for(5)

    assert weights.shape == (20, 300)
    assert np.all(weights.sum(axis=1) == 300)
    assert np.array_equal(weights, weights_for(5))
    assert not np.array_equal(weights, weights_for(6))


def test_intervals_do_not_depend_on_the_memory_chunk_size() -> None:
    y, p = scored(1000, seed=6)

    whole = bootstrap_intervals(y, p, 0.5, samples=40, seed=1)
    chunked = bootstrap_intervals(y, p, 0.5, samples=40, seed=1, max_cells=7 * 1000)

    # the same resamples; only floating-point summation order may differ (BLAS blocking)
    for name in TEST_METRICS:
        assert chunked[name] == pytest.approx(whole[name], rel=1e-12, abs=1e-15), name


def test_too_few_bootstrap_samples_are_refused_with_the_param_name() -> None:
    y, p = scored(100, seed=6)

    with pytest.raises(EvaluateError, match=r"'evaluate.bootstrap_samples' is 3"):
        bootstrap_intervals(y, p, 0.5, samples=3, seed=1)


def test_intervals_contain_the_point_estimate_and_shrink_with_more_rows() -> None:
    widths = {}
    for n in (800, 12800):
        y, p = scored(n, seed=4)
        point = point_metrics(y, p, 0.5)
        intervals = bootstrap_intervals(y, p, 0.5, samples=100, seed=0)
        for name in TEST_METRICS:
            assert intervals[name]["low"] <= point[name] <= intervals[name]["high"], (n, name)
        widths[n] = {k: v["high"] - v["low"] for k, v in intervals.items()}

    for name in TEST_METRICS:
        # 16x the rows: about 4x narrower; "less than half" leaves room for resampling noise
        assert widths[12800][name] < 0.5 * widths[800][name], name


# ------------------------------------------------------------------ business view


def test_cost_per_1000_counts_false_positives_and_negatives_at_the_threshold() -> None:
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.2, 0.6, 0.1, 0.3])

    # threshold 0.5: one missed churner (250) and one needless offer (25) over 5 customers
    assert cost_per_1000(y, p, np.array([0.5]), COSTS)[0] == pytest.approx(275 / 5 * 1000)


def test_best_threshold_minimises_cost_on_a_constructed_example() -> None:
    # Flagging the 0.25 group saves 2 x 250 for 10 x 25; flagging the 0.05 group saves 250 for
    # 40 x 25. So the cheapest thresholds are (0.05, 0.25]; the lowest grid point is 0.06.
    y = np.array([1] * 4 + [1] * 2 + [0] * 10 + [1] * 1 + [0] * 40)
    p = np.array([0.62] * 4 + [0.25] * 12 + [0.05] * 41)

    best = best_threshold(y, p, COSTS)

    assert best == 0.06
    grid = np.round(np.arange(1, 100) / 100, 2)
    costs = cost_per_1000(y, p, grid, COSTS)
    assert costs.min() == pytest.approx((10 * 25 + 1 * 250) / len(y) * 1000)
    assert cost_per_1000(y, p, np.array([best]), COSTS)[0] == costs.min()


def test_business_view_chooses_on_out_of_fold_rows_and_reports_test_cost() -> None:
    y_oof = np.array([1] * 4 + [1] * 2 + [0] * 10 + [1] * 1 + [0] * 40)
    p_oof = np.array([0.62] * 4 + [0.25] * 12 + [0.05] * 41)
    y_test = np.array([1, 0, 0, 1])
    p_test = np.array([0.07, 0.07, 0.03, 0.9])  # on the test rows alone 0.04 would be best

    view = business_view(y_test, p_test, y_oof, p_oof, threshold=0.5, costs=COSTS)

    assert view == {
        "threshold": 0.5,
        "cost_per_1000": pytest.approx(250 / 4 * 1000),
        "best_threshold": 0.06,
        "cost_per_1000_at_best": pytest.approx(25 / 4 * 1000),
    }


# ------------------------------------------------------------------ plot data


def test_roc_points_are_the_best_reachable_operating_points_on_the_fpr_grid() -> None:
    y, p = scored(400, seed=8)

    points = roc_points(y, p)

    assert [pt["fpr"] for pt in points] == pytest.approx(CURVE_GRID.tolist())
    assert all(set(pt) == {"fpr", "tpr", "threshold"} for pt in points)
    assert points[-1]["tpr"] == 1.0
    for pt in points[1:]:
        flagged = p >= pt["threshold"]
        fpr = flagged[y == 0].mean()
        assert fpr <= pt["fpr"] + 1e-12
        assert flagged[y == 1].mean() == pytest.approx(pt["tpr"])
        # no threshold reaches a higher TPR within this FPR budget
        better = [t for t in np.unique(p) if (p >= t)[y == 0].mean() <= pt["fpr"] + 1e-12]
        assert max((p >= t)[y == 1].mean() for t in better) == pytest.approx(pt["tpr"])


def test_precision_recall_points_reach_each_recall_on_the_grid() -> None:
    y, p = scored(400, seed=9)

    points = precision_recall_points(y, p)

    assert [pt["recall"] for pt in points] == pytest.approx(CURVE_GRID.tolist())
    assert points[0] == {"recall": 0.0, "precision": 1.0, "threshold": 1.0}
    for pt in points[1:]:
        flagged = p >= pt["threshold"]
        assert flagged[y == 1].mean() >= pt["recall"] - 1e-12
        assert y[flagged].mean() == pytest.approx(pt["precision"])


def test_calibration_has_ten_fixed_bins_and_keeps_empty_ones() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.05, 0.15, 0.18, 0.95, 1.0])

    bins = calibration_bins(y, p)

    assert [b["bin"] for b in bins] == list(range(10))
    assert [b["count"] for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[1]["mean_predicted"] == pytest.approx(0.165)
    assert bins[1]["fraction_positive"] == 1.0
    assert bins[9]["fraction_positive"] == 0.5
    assert bins[2]["mean_predicted"] is None and bins[2]["fraction_positive"] is None


# ------------------------------------------------------------------ the stage


@pytest.fixture(scope="module")
def splits() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = generate_churn(3000, seed=11).sort_values("snapshot_date", kind="stable")
    return frame.iloc[:2400].reset_index(drop=True), frame.iloc[2400:].reset_index(drop=True)


@pytest.fixture(scope="module")
def model(splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract) -> Pipeline:
    return fit_model(splits[0], contract, SMALL_MODEL)


@pytest.fixture(scope="module")
def stage_files(
    tmp_path_factory: pytest.TempPathFactory,
    splits: tuple[pd.DataFrame, pd.DataFrame],
    model: Pipeline,
) -> Path:
    """A directory holding what the evaluate stage reads: model, splits, params."""
    root = tmp_path_factory.mktemp("stage")
    train, test = splits
    gio.write_parquet(root / "train.parquet", train)
    gio.write_parquet(root / "test.parquet", test)
    save_model(model, root / "model.joblib")
    params = {
        "model": {
            "type": SMALL_MODEL.type,
            "seed": SMALL_MODEL.seed,
            "hyperparams": {"max_iter": 25},
        },
        "evaluate": {
            "threshold": PARAMS.threshold,
            "bootstrap_samples": PARAMS.bootstrap_samples,
            "cv_folds": PARAMS.cv_folds,
            "seed": PARAMS.seed,
            "costs": {"false_positive": 25.0, "false_negative": 250.0},
            "refits": PARAMS.refits,
            "refit_fraction": PARAMS.refit_fraction,
            "jobs": PARAMS.jobs,
        },
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run_cli(
    stage_files: Path, out: Path, model_path: Path | None = None, test_path: Path | None = None
) -> int:
    """`gitops-ml evaluate` on the stage files, writing into `out`."""
    return main(
        [
            "evaluate",
            "--model",
            str(model_path or stage_files / "model.joblib"),
            "--train",
            str(stage_files / "train.parquet"),
            "--test",
            str(test_path or stage_files / "test.parquet"),
            "--contract",
            str(CONTRACT_PATH),
            "--params",
            str(stage_files / "params.yaml"),
            "--metrics",
            str(out / "metrics" / "evaluate.json"),
            "--plots-dir",
            str(out / "plots"),
        ]
    )


@pytest.fixture(scope="module")
def stage_output(stage_files: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What one `gitops-ml evaluate` run wrote (metrics/ and plots/)."""
    out = tmp_path_factory.mktemp("evaluate_run")
    assert run_cli(stage_files, out) == 0
    return out


def test_evaluate_writes_the_metrics_and_plots_described_in_interfaces(
    stage_output: Path,
) -> None:
    metrics = gio.read_json(stage_output / "metrics" / "evaluate.json")
    assert set(metrics) == {
        "task",
        "test",
        "ci95",
        "cv",
        "business",
        "confusion",
        "rows",
        "slices",
        "training_noise",
    }
    assert set(metrics["test"]) == set(TEST_METRICS)
    assert set(metrics["ci95"]) == set(TEST_METRICS)
    assert all(set(v) == {"low", "high"} for v in metrics["ci95"].values())
    assert set(metrics["cv"]) == {"roc_auc", "pr_auc", "log_loss"}
    assert all(set(v) == {"mean", "std"} for v in metrics["cv"].values())
    assert set(metrics["business"]) == {
        "threshold",
        "cost_per_1000",
        "best_threshold",
        "cost_per_1000_at_best",
    }
    assert metrics["rows"] == {"test": 600}
    assert parse_evaluate_metrics(metrics).task == "binary"  # the typed reader's shape
    assert sum(metrics["confusion"].values()) == 600
    assert 0.6 < metrics["test"]["roc_auc"] < 0.95  # a real, imperfect model

    plots = stage_output / "plots"
    for filename, name in BINARY_PLOTS.items():
        assert list(gio.read_json(plots / filename)) == [name]
    assert len(gio.read_json(plots / "roc.json")["roc"]) == 101
    assert len(gio.read_json(plots / "precision_recall.json")["precision_recall"]) == 101
    assert len(gio.read_json(plots / "calibration.json")["calibration"]) == 10

    confusion = pd.read_csv(plots / CONFUSION_FILE)
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 600
    counts = confusion.value_counts()
    assert counts.get((1, 1), 0) == metrics["confusion"]["tp"]
    assert counts.get((0, 1), 0) == metrics["confusion"]["fp"]


def test_what_evaluate_writes_is_what_its_readers_read_typed(stage_output: Path) -> None:
    metrics = read_evaluate_metrics(stage_output / "metrics" / "evaluate.json")

    assert metrics.rows.test == 600 and metrics.business is not None
    assert metrics.training_noise is not None and set(metrics.slices)
    for column in metrics.slices.values():
        assert all(group.metric("roc_auc") is not None for group in column.groups.values())


def test_evaluate_rounds_every_float_to_six_decimals(stage_output: Path) -> None:

    def floats(value: object) -> list[float]:
        if isinstance(value, dict):
            return [f for v in value.values() for f in floats(v)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v)]
        return [value] if isinstance(value, float) else []

    written = [gio.read_json(stage_output / "metrics" / "evaluate.json")]
    written += [gio.read_json(stage_output / "plots" / f) for f in BINARY_PLOTS]
    values = [f for payload in written for f in floats(payload)]
    assert values and all(round(f, 6) == f for f in values)


def test_a_rerun_writes_byte_identical_files(
    stage_files: Path, stage_output: Path, tmp_path: Path
) -> None:
    first, second = stage_output, tmp_path
    assert run_cli(stage_files, second) == 0

    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 5
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_evaluate_seed_moves_cv_and_bootstrap_but_not_test_metrics(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract, model: Pipeline
) -> None:
    train, test = splits
    rows = model_rows(train, contract)
    base = evaluate(model, rows, test, contract, SMALL_MODEL, PARAMS)
    reseeded = evaluate(
        model,
        rows,
        test,
        contract,
        SMALL_MODEL,
        PARAMS.model_copy(update={"seed": 8}),
    )

    assert base.metrics["test"] == reseeded.metrics["test"]  # the test set does not depend on it
    assert base.metrics["cv"] != reseeded.metrics["cv"]
    assert base.metrics["ci95"] != reseeded.metrics["ci95"]
    assert base.metrics["training_noise"] != reseeded.metrics["training_noise"]


# ------------------------------------------------------------------ training noise


def test_training_noise_is_the_spread_of_test_metrics_over_seeded_refits(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract
) -> None:
    train, test = splits
    noise = training_noise(model_rows(train, contract), test, contract, SMALL_MODEL, PARAMS)

    assert noise is not None
    assert noise["refits"] == 3 and noise["fraction"] == 0.9
    assert set(noise["sd"]) == {*TEST_METRICS, "cost_per_1000"}
    # Refit k: seed 7 + k for the model and for drawing 90 % of the training rows.
    y_test, x_test = test["churned"].astype(int).to_numpy(), model_frame(test, contract)
    roc = []
    for k in (1, 2, 3):
        rows = np.sort(np.random.default_rng(7 + k).choice(2400, size=2160, replace=False))
        model = fit_model(
            train.iloc[rows], contract, SMALL_MODEL.model_copy(update={"seed": 7 + k})
        )
        roc.append(skm.roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
    assert noise["sd"]["roc_auc"] == pytest.approx(np.std(roc, ddof=1), rel=1e-9)
    assert 0 < noise["sd"]["roc_auc"] < 0.05


# ------------------------------------------------------------------ bounded, shared fits


def test_auto_jobs_are_the_cores_capped_by_half_the_memory() -> None:
    gb = 1 << 30

    assert concurrent_fits("auto", 5, gb, cores=4, memory=16 * gb) == 4
    assert concurrent_fits("auto", 5, 3 * gb, cores=4, memory=16 * gb) == 2  # 8 GB / 3 GB
    assert concurrent_fits("auto", 5, 20 * gb, cores=4, memory=16 * gb) == 1  # never none
    assert concurrent_fits("auto", 3, gb, cores=8, memory=64 * gb) == 3  # no more than fits


def test_a_number_of_jobs_is_taken_as_it_is_up_to_the_fits() -> None:
    assert concurrent_fits(1, 5, 1, cores=4, memory=1 << 40) == 1
    assert concurrent_fits(3, 5, 1 << 40, cores=1, memory=1) == 3  # the user's call
    assert concurrent_fits(8, 5, 1, cores=4, memory=1 << 40) == 5


def test_a_fit_is_estimated_per_row_and_model_input_column(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract
) -> None:
    features = model_frame(splits[0], contract)
    one_hot = sum(features[c].nunique() + 1 for c in contract.categorical_inputs)
    columns = len(contract.numeric_inputs) + one_hot

    assert fit_bytes(features, contract, 1000) == 1000 * columns * FIT_BYTES_PER_VALUE


def _in_flight(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Wrap the fit function `name` of the evaluate module; the list collects how many fits
    were running each time one started."""
    real = getattr(evaluate_module, name)
    lock, running, seen = threading.Lock(), [0], []

    def counted(*args: Any) -> Any:
        with lock:
            running[0] += 1
            seen.append(running[0])
        try:
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(evaluate_module, name, counted)
    return seen


@pytest.mark.parametrize("jobs", [1, 2])
def test_cv_folds_and_refits_run_at_most_jobs_at_once(
    splits: tuple[pd.DataFrame, pd.DataFrame],
    contract: Contract,
    monkeypatch: pytest.MonkeyPatch,
    jobs: int,
) -> None:
    train, test = splits
    folds = _in_flight(monkeypatch, "fold_predictions_of")
    refits = _in_flight(monkeypatch, "refit_scores")
    params = PARAMS.model_copy(update={"jobs": jobs, "refits": 4})

    cross_validate(model_rows(train, contract), contract, SMALL_MODEL, folds=4, seed=0, jobs=jobs)
    training_noise(model_rows(train, contract), test, contract, SMALL_MODEL, params)

    assert len(folds) == 4 and max(folds) <= jobs
    assert len(refits) == 4 and max(refits) <= jobs


def test_the_fits_give_the_same_numbers_one_at_a_time_side_by_side_and_in_processes(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract
) -> None:
    """Each fit is a module-level function of picklable arguments: another joblib backend
    (processes here, a cluster's elsewhere) runs the same fits to the same numbers."""
    train, test = splits

    def run(jobs: int) -> tuple[Any, ...]:
        params = PARAMS.model_copy(update={"jobs": jobs})
        cv, oof, _ = cross_validate(
            model_rows(train, contract), contract, SMALL_MODEL, folds=3, seed=0, jobs=jobs
        )
        return (
            cv,
            oof.tolist(),
            training_noise(model_rows(train, contract), test, contract, SMALL_MODEL, params),
        )

    alone = run(1)
    with parallel_config(backend="loky"):
        in_processes = run(2)

    assert run(3) == alone
    assert in_processes == alone


def test_training_noise_is_off_with_zero_refits(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract, model: Pipeline
) -> None:
    train, test = splits
    off = PARAMS.model_copy(update={"refits": 0})

    assert training_noise(model_rows(train, contract), test, contract, SMALL_MODEL, off) is None
    assert (
        "training_noise"
        not in evaluate(
            model, model_rows(train, contract), test, contract, SMALL_MODEL, off
        ).metrics
    )


def test_no_business_view_without_configured_costs(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract, model: Pipeline
) -> None:
    """A fork inherits params.yaml: costs it never set must not price its mistakes."""
    train, test = splits
    section = PARAMS.model_dump(exclude={"costs"})
    uncosted = EvaluateParams.from_params({"evaluate": {**section, "refits": 0}})

    assert uncosted.costs is None and uncosted.cost_pair is None
    metrics = evaluate(
        model, model_rows(train, contract), test, contract, SMALL_MODEL, uncosted
    ).metrics
    assert "business" not in metrics and not any("cost" in key for key in metrics["test"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"refits": 1}, r"'evaluate.refits' must be 0 \(off\) or at least 2"),
        ({"refit_fraction": 0.0}, r"'evaluate.refit_fraction' must be in \(0, 1\], got 0.0"),
        ({"refit_fraction": 1.5}, r"'evaluate.refit_fraction' must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_refit_params_name_the_key(change: dict[str, Any], message: str) -> None:
    section = {
        "threshold": 0.5,
        "bootstrap_samples": 50,
        "cv_folds": 3,
        "seed": 7,
        "costs": {"false_positive": 25.0, "false_negative": 250.0},
        "refits": 3,
        "refit_fraction": 0.9,
        "jobs": "auto",
    }
    with pytest.raises(ConfigError, match=message):
        EvaluateParams.from_params({"evaluate": {**section, **change}})


def test_cli_reports_a_missing_model_file_as_an_error_line(
    stage_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "model.joblib"

    assert run_cli(stage_files, tmp_path, model_path=missing) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err
    assert "Traceback" not in err
    assert not (tmp_path / "metrics").exists()


def test_single_class_test_set_is_refused_with_the_row_count(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract, model: Pipeline
) -> None:
    train, test = splits
    stayers = test[~test["churned"].astype(bool)]

    with pytest.raises(
        EvaluateError,
        match=rf"test set: the target needs every class of \['False', 'True'\] to be evaluated, "
        rf"found \['False'\] in {len(stayers):,} rows",
    ):
        evaluate(model, model_rows(train, contract), stayers, contract, SMALL_MODEL, PARAMS)


def test_more_folds_than_rare_class_rows_is_refused_with_a_hint(
    splits: tuple[pd.DataFrame, pd.DataFrame], contract: Contract, model: Pipeline
) -> None:
    train, test = splits
    tiny = pd.concat([train[train["churned"]].head(2), train[~train["churned"]].head(40)])

    with pytest.raises(EvaluateError, match=r"cv_folds is 3 .* only 2 rows"):
        evaluate(model, model_rows(tiny, contract), test, contract, SMALL_MODEL, PARAMS)


def test_more_folds_than_training_rows_of_a_regression_target_is_refused() -> None:
    diabetes = task_fixture("regression")
    train, _ = diabetes.split()

    with pytest.raises(
        EvaluateError, match=r"cv_folds is 3 but the training window has only 2 rows;"
    ):
        cross_validate(
            model_rows(train.head(2), diabetes.contract),
            diabetes.contract,
            SMALL_MODEL,
            folds=3,
            seed=0,
        )


def test_cli_names_the_file_and_columns_missing_from_the_test_split(
    stage_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = gio.read_table(stage_files / "test.parquet").drop(columns=["tenure_months", "churned"])
    broken = tmp_path / "test.parquet"
    gio.write_parquet(broken, test)

    assert run_cli(stage_files, tmp_path, test_path=broken) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken}: 2 column(s)") and "'tenure_months'" in err


# ------------------------------------------------------------------ slices


def test_numeric_slice_is_binned_into_quantiles_labelled_by_the_values_they_hold() -> None:
    ages = pd.Series(np.r_[np.arange(18, 98), [np.nan] * 5])
    column = Column("age", "int", nullable=True, slice=True)

    groups = slice_groups(ages, column)

    assert [label for label, _ in groups] == ["18–37", "38–57", "58–77", "78–97", "missing"]
    assert [int(mask.sum()) for _, mask in groups] == [20, 20, 20, 20, 5]


def test_small_category_groups_are_pooled_into_other_and_bools_read_true_false() -> None:
    values = pd.Series(["a"] * 60 + ["b"] * 70 + ["c"] * 10 + ["d"] * 5)
    groups = slice_groups(values, Column("plan", "category", slice=True))
    assert [(label, int(m.sum())) for label, m in groups] == [("a", 60), ("b", 70), ("other", 15)]

    flags = slice_groups(pd.Series([True] * 60 + [False] * 60), Column("s", "bool", slice=True))
    assert [label for label, _ in flags] == ["false", "true"]


def test_slice_metrics_equal_sklearn_per_group_and_the_gap_ignores_small_groups(
    contract: Contract,
) -> None:
    y, p = scored(3000, seed=5)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, len(y)),
            "senior_citizen": np.r_[[True] * (MIN_SLICE_ROWS - 1), [False] * (len(y) - 49)],
        }
    )

    slices = slice_metrics(frame, y, p, contract, threshold=0.5)

    assert set(slices) == {c.name for c in contract.slices} == {"age", "senior_citizen"}
    for label, group in slices["age"]["groups"].items():
        low, high = (int(x) for x in label.split("–"))
        mask = (frame["age"] >= low).to_numpy() & (frame["age"] <= high).to_numpy()
        assert group["rows"] == mask.sum()
        assert group["roc_auc"] == pytest.approx(skm.roc_auc_score(y[mask], p[mask]))
        assert group["recall"] == pytest.approx(skm.recall_score(y[mask], p[mask] >= 0.5))
        assert group["positive_rate"] == pytest.approx(np.mean(p[mask] >= 0.5))
    aucs = [g["roc_auc"] for g in slices["age"]["groups"].values()]
    assert slices["age"]["gap"]["roc_auc"] == pytest.approx(max(aucs) - min(aucs))
    senior = slices["senior_citizen"]
    assert senior["groups"]["true"]["small"] is True  # 49 rows: shown, flagged, not in the gap
    assert senior["gap"]["roc_auc"] is None


def test_calibration_error_is_zero_for_calibrated_bins_and_the_gap_for_a_constant_one() -> None:
    p = np.full(100, 0.25)
    y = np.r_[np.ones(25), np.zeros(75)]
    masks = np.ones((1, 100))
    assert calibration_error(y, p, masks)[0] == pytest.approx(0.0)
    assert calibration_error(np.zeros(100), p, masks)[0] == pytest.approx(0.25)


def test_a_slice_column_missing_in_every_test_row_is_one_missing_group() -> None:
    groups = slice_groups(pd.Series([np.nan] * 10), Column("age", "int", nullable=True))
    assert [(label, int(m.sum())) for label, m in groups] == [("missing", 10)]


# ------------------------------------------------------------------ every task


def test_a_multiclass_model_gets_its_metric_set_confusion_matrix_and_confusion_plot(
    tmp_path: Path,
) -> None:
    wine = task_fixture("multiclass")
    train, test = wine.split()
    classes = wine.contract.classes
    model = fit_model(train, wine.contract, SMALL_MODEL)
    params = PARAMS.model_copy(update={"costs": None, "refits": 2})

    result = evaluate(
        model, model_rows(train, wine.contract), test, wine.contract, SMALL_MODEL, params
    )
    write_evaluation(result, tmp_path / "evaluate.json", tmp_path / "plots")

    metrics = result.metrics
    assert parse_evaluate_metrics(metrics).confusion_matrix is not None  # the typed reader's shape
    assert metrics["task"] == "multiclass"
    assert tuple(metrics["test"]) == metric_sets("multiclass", classes).test
    y = target_vector(test, wine.contract)
    predicted = model.predict(model_frame(test, wine.contract))
    assert metrics["test"]["macro_f1"] == pytest.approx(
        skm.f1_score(y, predicted, average="macro"), abs=1e-6
    )
    assert metrics["test"]["recall[class_2]"] == pytest.approx(
        skm.recall_score(y, predicted, average=None)[2], abs=1e-6
    )
    assert metrics["confusion_matrix"] == {
        "classes": ["class_0", "class_1", "class_2"],
        "counts": skm.confusion_matrix(y, predicted).tolist(),
    }
    assert set(metrics["cv"]) == set(metric_sets("multiclass").cv)
    assert set(metrics["training_noise"]["sd"]) == set(metrics["test"])
    assert "confusion" not in metrics and "business" not in metrics
    confusion = pd.read_csv(tmp_path / "plots" / CONFUSION_FILE)
    assert set(confusion["actual"]) == set(classes) and len(confusion) == len(test)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [CONFUSION_FILE]


def test_costs_are_refused_for_a_task_without_a_cost_view() -> None:
    wine = task_fixture("multiclass")
    train, test = wine.split()

    with pytest.raises(EvaluateError, match=r"remove 'evaluate.costs' \(a multiclass cost view"):
        evaluate(
            Pipeline([]), model_rows(train, wine.contract), test, wine.contract, SMALL_MODEL, PARAMS
        )


def test_regression_plots_put_predicted_next_to_actual_per_decile_of_the_prediction() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(100, 20, 1000)
    prediction = y + rng.normal(0, 5, 1000) + 0.2 * (y - 100)  # too spread out at the ends

    deciles = predicted_vs_actual(y, prediction)
    residuals = residual_deciles(y, prediction)

    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert all(d["count"] == 100 for d in deciles)
    order = np.argsort(prediction)
    top = order[-100:]
    assert deciles[-1]["mean_predicted"] == pytest.approx(prediction[top].mean())
    assert deciles[-1]["mean_actual"] == pytest.approx(y[top].mean())
    assert deciles[-1]["mean_actual"] < deciles[-1]["mean_predicted"]  # over-predicts the top
    assert residuals[-1]["residual_median"] == pytest.approx(np.median(y[top] - prediction[top]))
    assert (
        residuals[0]["residual_p10"]
        < residuals[0]["residual_median"]
        < residuals[0]["residual_p90"]
    )
    assert residuals[0]["residual_median"] > 0 > residuals[-1]["residual_median"]


def test_a_few_tied_predictions_still_make_equal_count_bins() -> None:
    deciles = predicted_vs_actual(np.arange(7.0), np.array([1.0, 1, 1, 1, 2, 2, 3]))

    assert [d["count"] for d in deciles] == [1] * 7


def test_regression_slices_have_the_regression_slice_metrics() -> None:
    diabetes = task_fixture("regression")
    test = diabetes.frame
    y = target_vector(test, diabetes.contract)
    prediction = y + np.random.default_rng(0).normal(0, 30, len(y))

    slices = slice_metrics(test, y, prediction, diabetes.contract, threshold=0.5)

    groups = slices["sex"]["groups"]
    assert set(groups) == {"1", "2"}
    for label, group in groups.items():
        mask = (test["sex"] == int(label)).to_numpy()
        assert set(group) == {"rows", *metric_sets("regression").slice}
        assert group["rmse"] == pytest.approx(
            skm.root_mean_squared_error(y[mask], prediction[mask])
        )
        assert group["r2"] == pytest.approx(skm.r2_score(y[mask], prediction[mask]))
    assert slices["sex"]["gap"]["mae"] == pytest.approx(
        abs(groups["1"]["mae"] - groups["2"]["mae"])
    )


def test_a_regression_model_gets_its_metric_set_and_decile_plots_and_no_stale_plots(
    tmp_path: Path,
) -> None:
    diabetes = task_fixture("regression")
    train, test = diabetes.split()
    model = fit_model(train, diabetes.contract, SMALL_MODEL)
    params = PARAMS.model_copy(update={"costs": None, "refits": 2})
    gio.write_json(tmp_path / "plots" / ROC_FILE, {"roc": []})  # left by an earlier binary run

    result = evaluate(
        model, model_rows(train, diabetes.contract), test, diabetes.contract, SMALL_MODEL, params
    )
    write_evaluation(result, tmp_path / "evaluate.json", tmp_path / "plots")

    metrics = result.metrics
    assert parse_evaluate_metrics(metrics).task == "regression"  # the typed reader's shape
    assert tuple(metrics["test"]) == metric_sets("regression").test
    y = target_vector(test, diabetes.contract)
    y_hat = model.predict(model_frame(test, diabetes.contract))
    assert metrics["test"]["r2"] == pytest.approx(skm.r2_score(y, y_hat), abs=1e-6)
    assert metrics["test"]["rmse"] == pytest.approx(skm.root_mean_squared_error(y, y_hat), abs=1e-6)
    low, high = metrics["ci95"]["r2"]["low"], metrics["ci95"]["r2"]["high"]
    assert low < metrics["test"]["r2"] < high
    assert set(metrics["cv"]) == set(metric_sets("regression").cv)
    assert set(metrics["slices"]["sex"]["groups"]["1"]) == {"rows", "rmse", "mae", "r2"}
    assert not {"confusion", "confusion_matrix", "business"} & set(metrics)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        PREDICTED_ACTUAL_FILE,
        RESIDUALS_FILE,
    ]
    deciles = gio.read_json(tmp_path / "plots" / PREDICTED_ACTUAL_FILE)["predicted_actual"]
    assert sum(d["count"] for d in deciles) == len(test) and len(deciles) == 10
