"""One implementation of the metrics (registry formulas over weighted sums) for evaluate,
review and monitor; what "real" means for PR − base: the family-wise level over the gated
metrics, and the training noise added to the test-set bootstrap in quadrature (scoring.py)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    median_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from gitops_ml.metric_registry import BINARY, metric_sets
from gitops_ml.scoring import (
    CI_LEVEL,
    Difference,
    difference_sd,
    family_level,
    histogram_rows,
    paired_differences,
    percentile_intervals,
    point_metrics,
    score,
    unpaired_difference,
    weighted_median,
    with_training,
    z_value,
)


def scored(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated, informative models (a base and a slightly different PR)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    base = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0.0, 1.0)
    pr = np.clip(base + rng.normal(0.0, 0.05, n), 0.0, 1.0)
    return y, base, pr


def test_the_family_level_splits_five_percent_over_the_gated_metrics() -> None:
    assert family_level(1) == CI_LEVEL == 0.95
    assert family_level(3) == pytest.approx(1 - 0.05 / 3)
    assert family_level(0) == 0.95  # no gate: one interval on its own
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_value(family_level(3)) == pytest.approx(2.393980, abs=1e-6)


def test_training_noise_widens_each_side_in_quadrature_and_keeps_the_asymmetry() -> None:
    test_only = Difference(0.010, 0.004, 0.020, paired=True, level=0.95)

    widened = with_training(test_only, 0.005)

    extra = 1.959964 * 0.005
    assert widened.training == pytest.approx(extra, rel=1e-6)
    assert widened.low == pytest.approx(0.010 - np.hypot(0.006, extra))
    assert widened.high == pytest.approx(0.010 + np.hypot(0.010, extra))
    assert (widened.delta, widened.paired, widened.level) == (0.010, True, 0.95)
    assert test_only.real and not widened.real  # ±0.0098 of training noise swallows it
    assert with_training(test_only, None) == test_only == with_training(test_only, 0.0)


def test_a_spread_from_few_refits_widens_by_student_s_t_not_the_normal_quantile() -> None:
    test_only = Difference(0.010, 0.004, 0.020, paired=True, level=0.95)

    from_five_refits = with_training(test_only, 0.005, df=4)

    assert from_five_refits.training == pytest.approx(2.776445 * 0.005, rel=1e-6)
    assert with_training(test_only, 0.005, df=10_000).training == pytest.approx(
        with_training(test_only, 0.005).training, rel=1e-3
    )  # many refits: the normal quantile


def test_two_trainings_add_variances_and_a_side_without_a_measure_borrows_the_other() -> None:
    both = difference_sd({"roc_auc": 0.003, "pr_auc": 0.01}, {"roc_auc": 0.004})

    assert both["roc_auc"] == pytest.approx(0.005)
    assert both["pr_auc"] == pytest.approx(0.01 * np.sqrt(2))  # an older base: PR's for both
    assert difference_sd(None, None) == {}


def test_paired_intervals_at_the_family_level_are_wider_and_hold_the_training_noise() -> None:
    y, base, pr = scored(2000, seed=1)
    single = paired_differences(y, base, pr, (0.5, 0.5), 1000, 7)
    family = paired_differences(y, base, pr, (0.5, 0.5), 1000, 7, level=family_level(3))
    noisy = paired_differences(
        y, base, pr, (0.5, 0.5), 1000, 7, level=family_level(3), training_sd={"roc_auc": 0.004}
    )

    for name in single:
        assert family[name].delta == single[name].delta
        assert family[name].low <= single[name].low and family[name].high >= single[name].high
        assert family[name].level == pytest.approx(1 - 0.05 / 3)
    assert noisy["roc_auc"].training == pytest.approx(z_value(family_level(3)) * 0.004)
    assert noisy["roc_auc"].detectable > family["roc_auc"].detectable
    assert noisy["pr_auc"] == family["pr_auc"]  # no training noise measured for it


def test_the_same_model_on_both_sides_is_within_the_training_noise_alone() -> None:
    y, base, _ = scored(500, seed=2)

    same = paired_differences(y, base, base, (0.5, 0.5), 200, 7, training_sd={"roc_auc": 0.01})

    assert same["roc_auc"].delta == 0.0
    assert same["roc_auc"].detectable == pytest.approx(1.959964 * 0.01, rel=1e-6)
    assert not same["roc_auc"].real


def test_an_interval_never_reaches_past_what_the_metric_can_be() -> None:
    """Two refits (Student's t of one degree of freedom: 25.5 at 97.5 %) widen the interval of
    a [0, 1] metric past ±1; it stops where PR − base must stop, and stays around 0."""
    y, base, pr = scored(300, seed=4)

    few_refits = paired_differences(
        y, base, pr, (0.5, 0.5), 200, 7, level=0.975, training_sd={"recall": 0.05}, training_df=1
    )
    unpaired = unpaired_difference(
        0.9, 0.6, (0.7, 1.0), (0.3, 0.9), training_sd=0.05, training_df=1, bounds=(0.0, 1.0)
    )

    point = point_metrics(y, base)["recall"]
    recall = few_refits["recall"]
    assert recall.low == pytest.approx(-point) and recall.high == pytest.approx(1 - point)
    assert recall.low < 0 < recall.high and not recall.real
    assert recall.training > 1  # the noise alone spans more than the metric's range
    assert (unpaired.low, unpaired.high) == (pytest.approx(-0.9), pytest.approx(0.1))
    log_loss = paired_differences(
        y, base, pr, (0.5, 0.5), 200, 7, training_sd={"log_loss": 5.0}, training_df=1
    )["log_loss"]
    point_loss = point_metrics(y, base)["log_loss"]
    assert log_loss.low == pytest.approx(-point_loss)
    assert log_loss.high > log_loss.training  # no upper bound: the widening stays whole


def test_unpaired_half_widths_scale_from_95_percent_to_the_requested_level() -> None:
    at_95 = unpaired_difference(0.86, 0.83, (0.85, 0.87), (0.82, 0.84))
    at_family = unpaired_difference(0.86, 0.83, (0.85, 0.87), (0.82, 0.84), level=0.975)
    noisy = unpaired_difference(
        0.86, 0.83, (0.85, 0.87), (0.82, 0.84), level=0.975, training_sd=0.005
    )

    assert at_95.detectable == pytest.approx(0.01 * np.sqrt(2))
    assert at_family.detectable == pytest.approx(at_95.detectable * z_value(0.975) / z_value(0.95))
    assert noisy.detectable == pytest.approx(np.hypot(at_family.detectable, z_value(0.975) * 0.005))
    assert not at_family.paired and at_family.level == 0.975


def test_a_score_histogram_scores_like_the_rows_it_holds() -> None:
    """The drift check keeps labelled production scores as a 1,000-bin histogram per label;
    the same formulas score it, and its bootstrap redraws the rows it holds."""
    rng = np.random.default_rng(2)
    labels = rng.random(5_000) < 0.3
    scores = np.clip(rng.normal(0.3 + 0.3 * labels, 0.15), 0, 1)
    edges = np.linspace(0, 1, 1001)
    bins = np.clip((scores * 1000).astype(int), 0, 999)
    neg = np.bincount(bins[~labels], minlength=1000)
    pos = np.bincount(bins[labels], minlength=1000)
    y, p, counts = histogram_rows(neg, pos, edges)
    names = ("roc_auc", "accuracy", "precision", "recall", "brier", "outcome_rate")

    point = {k: v[0] for k, v in score("binary", y, p, counts[None, :], names).items()}

    predicted = scores >= 0.5
    assert point["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=2e-3)
    assert point["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert point["precision"] == pytest.approx(precision_score(labels, predicted))
    assert point["recall"] == pytest.approx(recall_score(labels, predicted))
    assert point["brier"] == pytest.approx(np.mean((scores - labels) ** 2), abs=1e-3)
    assert point["outcome_rate"] == pytest.approx(labels.mean())
    ci = percentile_intervals(y, p, 0.5, samples=100, seed=0, names=names, counts=counts)
    for name in ("roc_auc", "accuracy", "brier"):
        assert ci[name]["low"] < point[name] < ci[name]["high"]
    assert ci["roc_auc"]["high"] - ci["roc_auc"]["low"] < 0.05


def test_a_new_metric_is_one_registry_entry_and_an_unknown_one_is_named() -> None:
    y, p, _ = scored(200, seed=4)
    every = list(BINARY.formulas)

    values = score("binary", y, p, np.ones((1, len(y))), every)

    assert set(values) == set(every)
    assert values["positive_rate"][0] == pytest.approx(np.mean(p >= 0.5))
    with pytest.raises(KeyError, match="no binary formula for metric 'cost_per_1000'"):
        BINARY.formula("cost_per_1000")


# --------------------------------------------------------------------------------------------
# Every task: the registry's formulas equal scikit-learn's metrics with sample weights
# --------------------------------------------------------------------------------------------


def regression_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A target far from zero (a price-like level: R² must not lose digits) and a prediction,
    plus bootstrap-like integer weights, zeros included."""
    rng = np.random.default_rng(seed)
    y = 1e6 + rng.normal(0, 50, n)
    y_hat = y + rng.normal(0, 20, n)
    return y, y_hat, rng.integers(0, 4, size=(3, n))


@pytest.mark.parametrize("unit", [True, False], ids=["unit weights", "resample weights"])
def test_regression_metrics_are_scikit_learns_with_sample_weights(unit: bool) -> None:
    y, y_hat, weights = regression_rows(301, seed=5)
    if unit:
        weights = np.ones((1, len(y)), dtype=np.int64)

    ours = score("regression", y, y_hat, weights)

    assert tuple(ours) == metric_sets("regression").test
    for b, w in enumerate(weights):
        expected = {
            "rmse": root_mean_squared_error(y, y_hat, sample_weight=w),
            "mae": mean_absolute_error(y, y_hat, sample_weight=w),
            "r2": r2_score(y, y_hat, sample_weight=w),
            # The median of the resampled rows themselves (np.median: the two middle values
            # averaged), which scikit-learn gives for the rows drawn.
            "median_absolute_error": median_absolute_error(np.repeat(y, w), np.repeat(y_hat, w)),
        }
        for name, value in expected.items():
            assert ours[name][b] == pytest.approx(value, rel=1e-9), name


def test_the_weighted_median_is_the_median_of_the_rows_repeated() -> None:
    values = np.array([5.0, 1.0, 3.0, 2.0])

    medians = weighted_median(values, np.array([[1, 1, 1, 1], [0, 1, 1, 0], [3, 0, 0, 1]]))

    assert medians.tolist() == [2.5, 2.0, 5.0]  # 1 2 3 5 · 1 3 · 2 5 5 5
    assert np.isnan(weighted_median(values, np.zeros((1, 4))))[0]


def test_r2_of_a_constant_target_is_undefined_not_a_made_up_number() -> None:
    y = np.full(5, 3.0)

    assert np.isnan(score("regression", y, y + 1, np.ones((1, 5)), ["r2"])["r2"][0])


def multiclass_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three classes, one of them rare, probabilities that favour the right class, and integer
    resample weights."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.5, 0.4, 0.1])
    logits = rng.normal(0, 1, (n, 3)) + 1.5 * np.eye(3)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probabilities, rng.integers(0, 4, size=(3, n))


@pytest.mark.parametrize("unit", [True, False], ids=["unit weights", "resample weights"])
def test_multiclass_metrics_are_scikit_learns_with_sample_weights(unit: bool) -> None:
    y, probabilities, weights = multiclass_rows(400, seed=6)
    if unit:
        weights = np.ones((1, len(y)), dtype=np.int64)
    classes = ("setosa", "versicolor", "virginica")
    predicted = probabilities.argmax(axis=1)

    ours = score("multiclass", y, probabilities, weights, classes=classes)

    assert tuple(ours) == metric_sets("multiclass", classes).test
    for b, w in enumerate(weights):
        recall = recall_score(y, predicted, average=None, sample_weight=w)
        precision = precision_score(y, predicted, average=None, sample_weight=w)
        expected = {
            "accuracy": accuracy_score(y, predicted, sample_weight=w),
            "balanced_accuracy": balanced_accuracy_score(y, predicted, sample_weight=w),
            "macro_f1": f1_score(y, predicted, average="macro", sample_weight=w),
            "log_loss": log_loss(y, probabilities, sample_weight=w),
            **{f"recall[{c}]": recall[i] for i, c in enumerate(classes)},
            **{f"precision[{c}]": precision[i] for i, c in enumerate(classes)},
        }
        for name, value in expected.items():
            assert ours[name][b] == pytest.approx(value, rel=1e-9), name


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_a_class_missing_from_a_resample_is_left_out_of_the_averages_as_scikit_learn_does() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    w = np.array([1, 1, 1, 1, 0, 0])  # class 2 neither present nor predicted
    predicted = probabilities.argmax(axis=1)

    ours = score("multiclass", y, probabilities, w[None, :], classes=("a", "b", "c"))

    assert ours["balanced_accuracy"][0] == balanced_accuracy_score(y, predicted, sample_weight=w)
    assert ours["macro_f1"][0] == pytest.approx(f1_score(y[:4], predicted[:4], average="macro"))
    assert np.isnan(ours["recall[c]"][0])  # undefined without rows of the class
    assert ours["precision[c]"][0] == 0.0


def test_one_entry_point_scores_every_task_and_costs_only_where_the_task_has_them() -> None:
    y, p, _ = scored(300, seed=8)
    w = np.random.default_rng(0).integers(0, 3, size=(4, len(y)))

    binary = score("binary", y, p, w, threshold=0.4, costs=(1.0, 5.0))

    assert set(binary) == {*metric_sets("binary").test, "cost_per_1000"}
    errors = w @ ((p >= 0.4) & (y == 0)) * 1.0 + w @ ((p < 0.4) & (y == 1)) * 5.0
    np.testing.assert_allclose(binary["cost_per_1000"], errors / w.sum(axis=1) * 1000)
    assert point_metrics(y, p, 0.4) == {
        k: v[0] for k, v in score("binary", y, p, np.ones((1, len(y))), threshold=0.4).items()
    }
    with pytest.raises(ValueError, match="a regression model has no cost view"):
        score("regression", p, p, w, costs=(1.0, 5.0))
    with pytest.raises(KeyError, match="unknown task 'ranking'"):
        score("ranking", y, p, w)


def worse_multiclass() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    y, base, _ = multiclass_rows(300, seed=9)
    return y, base, np.roll(base, 1, axis=1) * 0.3 + base * 0.7, ("a", "b", "c")


def worse_regression() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    y, base, _ = regression_rows(300, seed=9)
    return y, base, base + np.random.default_rng(1).normal(0, 10, len(y)), ()


@pytest.mark.parametrize("rows", [worse_multiclass, worse_regression])
def test_paired_differences_and_intervals_work_for_every_task(
    rows: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]],
) -> None:
    y, base, pr, classes = rows()
    task = "multiclass" if classes else "regression"
    sets = metric_sets(task, classes)

    diffs = paired_differences(y, base, pr, (0.5, 0.5), 200, 3, task=task, classes=classes)
    ci = percentile_intervals(y, base, 0.5, 200, 3, task=task, classes=classes)
    point = point_metrics(y, base, task=task, classes=classes)

    assert tuple(diffs) == tuple(ci) == tuple(point) == sets.test
    headline = sets.headline
    assert diffs[headline].delta == pytest.approx(
        point_metrics(y, pr, task=task, classes=classes)[headline] - point[headline]
    )
    assert diffs[headline].delta < 0 and diffs[headline].low < diffs[headline].delta
    assert ci[headline]["low"] < point[headline] < ci[headline]["high"]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_bootstrap_holds_one_chunk_at_a_time_however_many_resamples(task: str) -> None:
    """Memory bounded by `max_cells`, not by resamples × rows: ten times the resamples peak
    no higher, and below what the one-shot weight matrix alone would take."""
    rng = np.random.default_rng(3)
    rows, cells = 10_000, 50_000
    classes = ("a", "b", "c") if task == "multiclass" else ()
    y: np.ndarray = rng.integers(0, 3 if classes else 2, rows)
    p: np.ndarray = rng.random(rows)
    if classes:
        p = rng.dirichlet(np.ones(3), rows)
    elif task == "regression":
        y = rng.normal(size=rows)

    def peak(samples: int) -> int:
        tracemalloc.start()
        percentile_intervals(
            y, p, 0.5, samples, seed=1, max_cells=cells, task=task, classes=classes
        )
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    few, many = peak(20), peak(200)

    assert many < 1.2 * few
    assert many < 200 * rows * 8  # float64 weights of every resample at once
