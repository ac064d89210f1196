"""One implementation of the metrics (registry formulas over weighted sums) for evaluate,
review and monitor; what "real" means for PR − base: the family-wise level over the gated
metrics, and the training noise added to the test-set bootstrap in quadrature (scoring.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from gitops_ml.metric_registry import METRICS, formula
from gitops_ml.scoring import (
    CI_LEVEL,
    Difference,
    difference_sd,
    family_level,
    histogram_rows,
    paired_differences,
    percentile_intervals,
    unpaired_difference,
    weighted_metrics,
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

    point = {k: v[0] for k, v in weighted_metrics(y, p, counts[None, :], 0.5, names=names).items()}

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
    every = [m.name for m in METRICS.values() if m.formula is not None]

    values = weighted_metrics(y, p, np.ones((1, len(y))), 0.5, names=every)

    assert set(values) == set(every)
    assert values["positive_rate"][0] == pytest.approx(np.mean(p >= 0.5))
    with pytest.raises(KeyError, match="no formula for metric 'cost_per_1000'"):
        formula("cost_per_1000")
