"""Performance on a labelled window, per task: counts kept while the window streams, then the
registry's monitor metrics of the task (gitops_ml.scoring, the one formula of each) with
bootstrap intervals, compared with training by the "significant and large" rule.

What is kept, per task (one table, `PERFORMANCE`):
- binary: a 1,000-bin score histogram per label. Threshold metrics are exact at any threshold on
  a bin edge; ROC AUC treats scores in one bin as ties. Memory is fixed.
- multiclass: the confusion matrix of counts (actual × predicted class). Every monitor metric
  (accuracy, balanced accuracy, macro-F1) is a formula of it, so it is exact. Memory is k × k.
- regression: the labelled rows themselves (outcome and prediction, 16 bytes a row): RMSE, MAE
  and R² need the errors. Memory grows with the labelled rows, as the outcome join does.

A histogram or a confusion matrix becomes weighted rows, and a bootstrap resample redraws
their counts as one multinomial draw: the same as the row bootstrap of the rows they hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from gitops_ml import scoring
from gitops_ml.config import DriftParams
from gitops_ml.contract import Contract
from gitops_ml.metric_registry import lower_is_better, metric_sets
from gitops_ml.monitor.findings import LEVELS, Interval, MetricRow, PerformanceFinding

SCORE_BINS = 1000  # binary histogram: threshold metrics exact at any 0.001 threshold


class PerformanceAccumulator(Protocol):
    """Labelled predictions of a window, reduced to what the task's metrics need."""

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None: ...

    @property
    def count(self) -> int: ...

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(outcomes, predictions, counts or None: each row once) to score."""
        ...


def _known(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    missing = np.isnan(predictions).reshape(len(predictions), -1).any(axis=1)
    return ~np.isnan(labels) & ~missing


class ScoreHistogram:
    """Binary: score histograms of negatives and positives among labelled rows."""

    def __init__(self, contract: Contract) -> None:
        self.neg = np.zeros(SCORE_BINS, dtype=np.int64)
        self.pos = np.zeros(SCORE_BINS, dtype=np.int64)

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        known = _known(predictions, labels)
        bins = np.clip((predictions[known] * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        positive = labels[known] > 0.5
        self.neg += np.bincount(bins[~positive], minlength=SCORE_BINS)
        self.pos += np.bincount(bins[positive], minlength=SCORE_BINS)

    @property
    def count(self) -> int:
        return int(self.neg.sum() + self.pos.sum())

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return scoring.histogram_rows(self.neg, self.pos, np.linspace(0.0, 1.0, SCORE_BINS + 1))


class ConfusionCounts:
    """Multiclass: labelled rows counted by (actual class, predicted class)."""

    def __init__(self, contract: Contract) -> None:
        self.k = len(contract.classes)
        self.cells = np.zeros(self.k * self.k, dtype=np.int64)

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        known = _known(predictions, labels)
        predicted = np.argmax(predictions[known], axis=1)
        cell = labels[known].astype(np.int64) * self.k + predicted
        self.cells += np.bincount(cell, minlength=len(self.cells))

    @property
    def count(self) -> int:
        return int(self.cells.sum())

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One row per non-empty cell: its class, a certain prediction of its predicted class."""
        cells = np.flatnonzero(self.cells)
        return cells // self.k, np.eye(self.k)[cells % self.k], self.cells[cells]


class LabelledRows:
    """Regression: the labelled rows' outcomes and predictions."""

    def __init__(self, contract: Contract) -> None:
        self.outcomes: list[np.ndarray] = []
        self.predictions: list[np.ndarray] = []

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        known = _known(predictions, labels)
        self.outcomes.append(labels[known])
        self.predictions.append(predictions[known])

    @property
    def count(self) -> int:
        return sum(len(part) for part in self.outcomes)

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        empty = np.zeros(0)
        return (
            np.concatenate([empty, *self.outcomes]),
            np.concatenate([empty, *self.predictions]),
            None,
        )


@dataclass(frozen=True)
class TaskPerformance:
    """How a task's window performance is kept and judged."""

    accumulator: Callable[[Contract], PerformanceAccumulator]
    alert: tuple[str, ...]  # a degraded metric among these puts performance at alert
    relative: tuple[str, ...] = ()  # in the target's units: "large" is relative to training


PERFORMANCE: dict[str, TaskPerformance] = {
    "binary": TaskPerformance(ScoreHistogram, ("roc_auc", "accuracy", "brier")),
    "multiclass": TaskPerformance(ConfusionCounts, ("accuracy", "balanced_accuracy", "macro_f1")),
    "regression": TaskPerformance(LabelledRows, ("r2", "rmse", "mae"), ("rmse", "mae")),
}


def performance_accumulator(contract: Contract) -> PerformanceAccumulator:
    return PERFORMANCE[contract.task].accumulator(contract)


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
    weights = np.ones((1, len(y))) if counts is None else counts[None, :]
    point = scoring.score(task, y, p, weights, names, threshold=threshold, classes=classes)
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
    for name, values in point.items():
        value = float(values[0])
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
