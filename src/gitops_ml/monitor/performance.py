"""Performance on a labelled window, per task: counts kept while the window streams, then the
registry's monitor metrics of the task (gitops_ml.scoring, the one formula of each) with
bootstrap intervals, compared with training by the "significant and large" rule.

What is kept, per task (one table, `PERFORMANCE`):
- binary: a 1,000-bin score histogram per label. Threshold metrics are exact at any threshold on
  a bin edge; ROC AUC treats scores in one bin as ties. Memory is fixed.
- multiclass: the confusion matrix of counts (actual × predicted class). Every monitor metric
  (accuracy, balanced accuracy, macro-F1) is a formula of it, so it is exact. Memory is k × k.
- regression: the exact sums RMSE, MAE and R² are formulas of (squared and absolute errors,
  the outcomes' first two moments), so the point metrics are exact; and the labelled rows
  counted on the reference's quantile grids of outcome × prediction, each cell with its mean
  outcome and mean prediction, for the bootstrap. Memory is fixed ((grid + 1)² cells).

A histogram, a confusion matrix or the regression cells become weighted rows, and a bootstrap
resample redraws their counts as one multinomial draw: the same as the row bootstrap of the
rows they hold (for regression, of the rows moved to their cell's means).

Every accumulator has `merge`: accumulators of disjoint parts of a window, merged, hold what one
accumulator of the whole window holds (drift's map and merge, gitops_ml.monitor.drift).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, Self

import numpy as np

from gitops_ml import scoring
from gitops_ml.config import DriftParams
from gitops_ml.contract import Contract
from gitops_ml.metric_registry import ErrorTally, lower_is_better, metric_sets
from gitops_ml.monitor.findings import LEVELS, Interval, MetricRow, PerformanceFinding
from gitops_ml.monitor.profile import cell_index

SCORE_BINS = 1000  # binary histogram: threshold metrics exact at any 0.001 threshold


class PerformanceAccumulator(Protocol):
    """Labelled predictions of a window, reduced to what the task's metrics need."""

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None: ...

    def merge(self, other: Self) -> None:
        """Add what `other` (of the same contract and profile) accumulated."""
        ...

    @property
    def count(self) -> int: ...

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(outcomes, predictions, counts or None: each row once) to resample."""
        ...

    def point(self, names: tuple[str, ...], threshold: float) -> dict[str, float]:
        """The metrics `names` of every accumulated row once."""
        ...


def _known(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    missing = np.isnan(predictions).reshape(len(predictions), -1).any(axis=1)
    return ~np.isnan(labels) & ~missing


class ScoreHistogram:
    """Binary: score histograms of negatives and positives among labelled rows."""

    def __init__(self, contract: Contract, profile: dict[str, Any]) -> None:
        self.contract = contract
        self.neg = np.zeros(SCORE_BINS, dtype=np.int64)
        self.pos = np.zeros(SCORE_BINS, dtype=np.int64)

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        known = _known(predictions, labels)
        bins = np.clip((predictions[known] * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        positive = labels[known] > 0.5
        self.neg += np.bincount(bins[~positive], minlength=SCORE_BINS)
        self.pos += np.bincount(bins[positive], minlength=SCORE_BINS)

    def merge(self, other: ScoreHistogram) -> None:
        self.neg += other.neg
        self.pos += other.pos

    @property
    def count(self) -> int:
        return int(self.neg.sum() + self.pos.sum())

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return scoring.histogram_rows(self.neg, self.pos, np.linspace(0.0, 1.0, SCORE_BINS + 1))

    def point(self, names: tuple[str, ...], threshold: float) -> dict[str, float]:
        return _row_point(self, self.contract, names, threshold)


class ConfusionCounts:
    """Multiclass: labelled rows counted by (actual class, predicted class)."""

    def __init__(self, contract: Contract, profile: dict[str, Any]) -> None:
        self.contract = contract
        self.k = len(contract.classes)
        self.cells = np.zeros(self.k * self.k, dtype=np.int64)

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        known = _known(predictions, labels)
        predicted = np.argmax(predictions[known], axis=1)
        cell = labels[known].astype(np.int64) * self.k + predicted
        self.cells += np.bincount(cell, minlength=len(self.cells))

    def merge(self, other: ConfusionCounts) -> None:
        self.cells += other.cells

    @property
    def count(self) -> int:
        return int(self.cells.sum())

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One row per non-empty cell: its class, a certain prediction of its predicted class."""
        cells = np.flatnonzero(self.cells)
        return cells // self.k, np.eye(self.k)[cells % self.k], self.cells[cells]

    def point(self, names: tuple[str, ...], threshold: float) -> dict[str, float]:
        return _row_point(self, self.contract, names, threshold)


def _row_point(
    acc: PerformanceAccumulator, contract: Contract, names: tuple[str, ...], threshold: float
) -> dict[str, float]:
    """The metrics of the weighted rows an accumulator holds, each row its count of times."""
    y, p, counts = acc.rows()
    weights = np.ones((1, len(y))) if counts is None else counts[None, :]
    values = scoring.score(
        contract.task, y, p, weights, names, threshold=threshold, classes=contract.classes
    )
    return {name: float(value[0]) for name, value in values.items()}


def _reference_grid(reference: dict[str, Any] | None) -> np.ndarray:
    """A numeric reference's quantile grid (none: every value in one cell)."""
    return np.asarray((reference or {}).get("grid", []), dtype=np.float64)


class ErrorCells:
    """Regression: exact error and outcome sums (the point metrics), and the labelled rows
    counted on the profile's grids of outcomes × predictions, with each cell's sums (the
    bootstrap's weighted rows)."""

    def __init__(self, contract: Contract, profile: dict[str, Any]) -> None:
        self.outcome_grid = _reference_grid(profile.get("target"))
        self.prediction_grid = _reference_grid(profile.get("score"))
        # The outcome sums are of y − center (the reference mean): no cancellation in R².
        self.center = float((profile.get("target") or {}).get("mean") or 0.0)
        cells = (len(self.outcome_grid) + 1) * (len(self.prediction_grid) + 1)
        self.counts = np.zeros(cells, dtype=np.int64)
        self.outcome_sums = np.zeros(cells)
        self.prediction_sums = np.zeros(cells)
        self.sums = np.zeros(4)  # Σe², Σ|e|, Σ(y − center), Σ(y − center)²

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        known = _known(predictions, labels)
        y, p = labels[known], predictions[known]
        cell = cell_index(self.outcome_grid, y) * (len(self.prediction_grid) + 1)
        cell += cell_index(self.prediction_grid, p)
        size = len(self.counts)
        self.counts += np.bincount(cell, minlength=size)
        self.outcome_sums += np.bincount(cell, weights=y, minlength=size)
        self.prediction_sums += np.bincount(cell, weights=p, minlength=size)
        error, centered = p - y, y - self.center
        self.sums += [error @ error, np.abs(error).sum(), centered.sum(), centered @ centered]

    def merge(self, other: ErrorCells) -> None:
        self.counts += other.counts
        self.outcome_sums += other.outcome_sums
        self.prediction_sums += other.prediction_sums
        self.sums += other.sums

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One row per non-empty cell: its mean outcome and mean prediction."""
        cells = np.flatnonzero(self.counts)
        n = self.counts[cells]
        return self.outcome_sums[cells] / n, self.prediction_sums[cells] / n, n

    def point(self, names: tuple[str, ...], threshold: float) -> dict[str, float]:
        weight, squared, absolute, target, target_squared = (
            np.array([value], dtype=np.float64) for value in (self.count, *self.sums)
        )
        tally = ErrorTally(weight, squared, absolute, target, target_squared, np.array([np.nan]))
        formulas = metric_sets("regression")
        return {name: float(formulas.formula(name)(tally)[0]) for name in names}


@dataclass(frozen=True)
class TaskPerformance:
    """How a task's window performance is kept and judged."""

    accumulator: Callable[[Contract, dict[str, Any]], PerformanceAccumulator]
    alert: tuple[str, ...]  # a degraded metric among these puts performance at alert
    relative: tuple[str, ...] = ()  # in the target's units: "large" is relative to training


PERFORMANCE: dict[str, TaskPerformance] = {
    "binary": TaskPerformance(ScoreHistogram, ("roc_auc", "accuracy", "brier")),
    "multiclass": TaskPerformance(ConfusionCounts, ("accuracy", "balanced_accuracy", "macro_f1")),
    "regression": TaskPerformance(ErrorCells, ("r2", "rmse", "mae"), ("rmse", "mae")),
}


def performance_accumulator(contract: Contract, profile: dict[str, Any]) -> PerformanceAccumulator:
    """The task's accumulator (regression's cells on the grids of `profile`)."""
    return PERFORMANCE[contract.task].accumulator(contract, profile)


def performance_finding(
    profile: dict[str, Any],
    contract: Contract,
    acc: PerformanceAccumulator,
    settings: DriftParams,
    reason: str | None = None,
) -> PerformanceFinding:
    """The task's monitor metrics with bootstrap CIs against the training metrics: a metric is
    degraded when its interval excludes the training value on the worse side (significant)
    AND it is worse by at least `performance_tolerance` (large; relative to the training value
    for metrics in the target's units)."""
    if reason is not None or acc.count == 0:
        return PerformanceFinding("not_computed", reason or "no labelled rows with a model score")
    if acc.count < settings.min_rows:
        why = f"{acc.count} labelled rows < min_rows {settings.min_rows}"
        return PerformanceFinding("not_enough_data", why, acc.count)
    task, classes = contract.task, contract.classes
    names = metric_sets(task).monitor
    judged = PERFORMANCE[task]
    # The decision threshold on the nearest histogram edge: threshold metrics are then exact.
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    threshold = float(edges[round(float(profile.get("threshold", 0.5)) * SCORE_BINS)])
    y, p, counts = acc.rows()
    point = acc.point(names, threshold)
    ci = scoring.percentile_intervals(
        y,
        p,
        threshold,
        settings.bootstrap_samples,
        settings.seed,
        names,
        counts,
        task=task,
        classes=classes,
    )
    training = (profile.get("metrics") or {}).get("test", {})
    metrics: dict[str, MetricRow] = {}
    worst = 0
    for name, value in point.items():
        interval = Interval(**ci[name]) if name in ci else None
        row = MetricRow(current=value, ci95=interval)
        if name in training and interval is not None:
            lower = lower_is_better(name)
            sign = -1.0 if lower else 1.0
            drop = sign * (training[name] - value)
            bound = interval.low if lower else interval.high
            significant = bool(sign * (training[name] - bound) > 0)
            scale = abs(training[name]) if name in judged.relative else 1.0
            degraded = bool(significant and drop >= settings.performance_tolerance * scale)
            row = replace(
                row, training=training[name], drop=drop, significant=significant, degraded=degraded
            )
            if degraded and name in judged.alert:
                worst = 2
        metrics[name] = row
    note = None if training else "the profile holds no training metrics to compare with"
    return PerformanceFinding(LEVELS[worst], note, acc.count, metrics)
