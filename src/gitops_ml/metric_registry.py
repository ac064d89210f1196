"""Every metric the project reports, once: its name, label, direction, number format and formula.

The evaluate stage, the PR report, its gates, the model card, `gitops-ml summary` and the drift
check all read labels, directions and formulas from here, so "is lower better?" has one answer
and a new metric is one entry. Binary-classification metrics are formulas of a `Tally`, the
weighted sums one scoring pass computes for many resamples at once (gitops_ml.scoring). Names
not listed (a metric a fork adds) default to higher-is-better, except `cost*`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Tally:
    """Weighted sums over the scored rows, one value per resample (arrays of shape (B,)).

    `ranked_pairs` counts (positive, negative) pairs scored in the right order, ties one half
    (the Mann-Whitney statistic); `precision_area` sums, over distinct scores from the highest,
    the positives at that score times the precision there (average precision's numerator).
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray
    log_loss: np.ndarray  # summed per-row log loss
    squared_error: np.ndarray  # summed (p - y)²
    ranked_pairs: np.ndarray
    precision_area: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> np.ndarray:
        return self.tp + self.fn

    @property
    def negatives(self) -> np.ndarray:
        return self.fp + self.tn


def ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, `empty` where the denominator is 0 (NaN: undefined there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, empty)


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    lower_is_better: bool = False
    spec: str = ".4f"  # format() spec for one value
    # The value per resample from the weighted sums; None for metrics that need more than the
    # sums (a cost needs the params' costs, the calibration error its bins).
    formula: Callable[[Tally], np.ndarray] | None = None

    @property
    def better(self) -> Literal["higher", "lower"]:
        return "lower" if self.lower_is_better else "higher"

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "roc_auc",
            "ROC AUC",
            formula=lambda t: ratio(t.ranked_pairs, t.positives * t.negatives, np.nan),
        ),
        Metric(
            "pr_auc",
            "PR AUC (average precision)",
            formula=lambda t: ratio(t.precision_area, t.positives, np.nan),
        ),
        Metric("accuracy", "accuracy", formula=lambda t: ratio(t.tp + t.tn, t.total, np.nan)),
        Metric("precision", "precision", formula=lambda t: ratio(t.tp, t.tp + t.fp, 0.0)),
        Metric("recall", "recall", formula=lambda t: ratio(t.tp, t.positives, np.nan)),
        Metric("f1", "F1", formula=lambda t: ratio(2 * t.tp, 2 * t.tp + t.fp + t.fn, 0.0)),
        Metric(
            "log_loss",
            "log loss",
            lower_is_better=True,
            formula=lambda t: ratio(t.log_loss, t.total, np.nan),
        ),
        Metric(
            "brier",
            "Brier score",
            lower_is_better=True,
            formula=lambda t: ratio(t.squared_error, t.total, np.nan),
        ),
        Metric("cost_per_1000", "cost per 1,000 rows", lower_is_better=True, spec=",.1f"),
        Metric(
            "cost_per_1000_at_best",
            "cost per 1,000 rows at the best threshold",
            lower_is_better=True,
            spec=",.1f",
        ),
        Metric(
            "positive_rate",
            "predicted positive rate",
            spec=".3f",
            formula=lambda t: ratio(t.tp + t.fp, t.total, np.nan),
        ),
        Metric(
            "outcome_rate",
            "observed positive rate",
            spec=".3f",
            formula=lambda t: ratio(t.positives, t.total, np.nan),
        ),
        Metric("calibration_error", "calibration error", lower_is_better=True),
    )
}
# The test metrics evaluate writes for the whole test set, in this order.
TEST_METRICS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "log_loss",
    "brier",
)
# Per-group metrics of a slice column (evaluate's `slices`), in this order.
SLICE_METRICS: tuple[str, ...] = ("roc_auc", "recall", "positive_rate", "calibration_error")
CV_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss")
# Performance of a labelled production window (the drift check), in this order.
MONITOR_METRICS: tuple[str, ...] = (
    "roc_auc",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "brier",
    "outcome_rate",
)


def metric(name: str) -> Metric:
    """The registered metric, or a default entry for an unknown name (`a.b.roc_auc` → roc_auc)."""
    short = name.rsplit(".", 1)[-1]
    found = METRICS.get(short)
    if found is not None:
        return found
    return Metric(short, short, lower_is_better=short.startswith("cost"))


def formula(name: str) -> Callable[[Tally], np.ndarray]:
    """The registered formula of `name`; a KeyError names the metrics that have one."""
    found = METRICS.get(name)
    if found is None or found.formula is None:
        with_formula = sorted(m.name for m in METRICS.values() if m.formula is not None)
        raise KeyError(f"no formula for metric {name!r}; metrics with one: {with_formula}")
    return found.formula


def lower_is_better(name: str) -> bool:
    return metric(name).lower_is_better


def label(name: str) -> str:
    return metric(name).label
