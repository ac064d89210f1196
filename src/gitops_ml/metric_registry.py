"""Every metric the project reports, once: its name, label, direction and number format, and
per task the metric sets and the formulas that compute them.

The evaluate stage, the PR report, its gates, the model card, `gitops-ml summary` and the drift
check all read labels, directions, sets and formulas from here, so "is lower better?" has one
answer and a new metric is one entry. Each task's metrics are formulas of its tally, the
weighted sums one scoring pass computes for many resamples at once (gitops_ml.scoring):
binary a `Tally`, multiclass a `ConfusionTally`, regression an `ErrorTally`. Per-class metrics
of a multiclass model are named `recall[<class>]` and `precision[<class>]`. Names not listed (a
metric a fork adds) default to higher-is-better, except `cost*`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

import numpy as np

from gitops_ml.tasks import Task, task_spec


def ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, `empty` where the denominator is 0 (NaN: undefined there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, empty)


def finite_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined (non-NaN) values; NaN where none is defined."""
    defined = ~np.isnan(values)
    return ratio(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1), np.nan)


@dataclass(frozen=True)
class Tally:
    """Binary classification: weighted sums over the scored rows, one value per resample
    (arrays of shape (B,)).

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


@dataclass(frozen=True)
class ConfusionTally:
    """Multiclass classification: the weighted confusion matrix per resample, shape (B, k, k)
    (actual class × predicted class, in `classes` order), and the summed per-row log loss (B,)."""

    confusion: np.ndarray
    log_loss: np.ndarray
    classes: tuple[str, ...]

    @property
    def total(self) -> np.ndarray:
        return self.confusion.sum(axis=(1, 2))

    @property
    def hits(self) -> np.ndarray:
        """(B, k): rows of each class predicted as that class."""
        return np.diagonal(self.confusion, axis1=1, axis2=2)

    @property
    def actual(self) -> np.ndarray:
        """(B, k): rows of each class."""
        return self.confusion.sum(axis=2)

    @property
    def predicted(self) -> np.ndarray:
        """(B, k): rows predicted as each class."""
        return self.confusion.sum(axis=1)

    @property
    def recall(self) -> np.ndarray:
        """(B, k); NaN for a class without rows (undefined there)."""
        return ratio(self.hits, self.actual, np.nan)

    @property
    def precision(self) -> np.ndarray:
        """(B, k); 0 for a class never predicted, as scikit-learn's zero_division default."""
        return ratio(self.hits, self.predicted, 0.0)

    @property
    def f1(self) -> np.ndarray:
        """(B, k); NaN for a class neither present nor predicted (left out of the average)."""
        return ratio(2 * self.hits, self.actual + self.predicted, np.nan)

    def index(self, name: str) -> int:
        """The position of class `name`; a KeyError names the classes."""
        if name not in self.classes:
            raise KeyError(f"unknown class {name!r}; classes: {list(self.classes)}")
        return self.classes.index(name)


@dataclass(frozen=True)
class ErrorTally:
    """Regression: weighted sums of the errors e = ŷ − y and of the target per resample (B,).

    The target sums are of y − `center` (a constant: the mean of y over all rows), which leaves
    R² unchanged and keeps Σw·y² − (Σw·y)²/Σw free of cancellation for large targets. The median
    absolute error is not a sum: scoring computes it per resample (one sort, one cumsum)."""

    weight: np.ndarray  # Σw
    squared_error: np.ndarray  # Σw·e²
    absolute_error: np.ndarray  # Σw·|e|
    target: np.ndarray  # Σw·(y − center)
    target_squared: np.ndarray  # Σw·(y − center)²
    median_absolute_error: np.ndarray

    @property
    def target_spread(self) -> np.ndarray:
        """Σw·(y − ȳ_w)², the weighted total sum of squares (R²'s denominator)."""
        return self.target_squared - ratio(self.target**2, self.weight, 0.0)


def _r2(t: ErrorTally) -> np.ndarray:
    """1 − SSE/SST; NaN when the target does not vary (scikit-learn would print 0 or 1)."""
    spread = t.target_spread
    return 1.0 - ratio(t.squared_error, np.where(spread > 0, spread, 0.0), np.nan)


UNBOUNDED = (-math.inf, math.inf)
UNIT = (0.0, 1.0)  # rates, probabilities, areas
NON_NEGATIVE = (0.0, math.inf)  # losses and errors


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    lower_is_better: bool = False
    spec: str = ".4f"  # format() spec for one value
    bounds: tuple[float, float] = UNBOUNDED  # the values it can take

    @property
    def better(self) -> Literal["higher", "lower"]:
        return "lower" if self.lower_is_better else "higher"

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "ROC AUC", bounds=UNIT),
        Metric("pr_auc", "PR AUC (average precision)", bounds=UNIT),
        Metric("accuracy", "accuracy", bounds=UNIT),
        Metric("balanced_accuracy", "balanced accuracy", bounds=UNIT),
        Metric("precision", "precision", bounds=UNIT),
        Metric("recall", "recall", bounds=UNIT),
        Metric("f1", "F1", bounds=UNIT),
        Metric("macro_f1", "macro-F1", bounds=UNIT),
        Metric("log_loss", "log loss", lower_is_better=True, bounds=NON_NEGATIVE),
        Metric("brier", "Brier score", lower_is_better=True, bounds=UNIT),
        Metric("cost_per_1000", "cost per 1,000 rows", lower_is_better=True, spec=",.1f"),
        Metric(
            "cost_per_1000_at_best",
            "cost per 1,000 rows at the best threshold",
            lower_is_better=True,
            spec=",.1f",
        ),
        Metric("positive_rate", "predicted positive rate", spec=".3f", bounds=UNIT),
        Metric("outcome_rate", "observed positive rate", spec=".3f", bounds=UNIT),
        Metric("calibration_error", "calibration error", lower_is_better=True, bounds=UNIT),
        Metric("rmse", "RMSE", lower_is_better=True, spec=",.4f", bounds=NON_NEGATIVE),
        Metric("mae", "MAE", lower_is_better=True, spec=",.4f", bounds=NON_NEGATIVE),
        Metric("r2", "R²", bounds=(-math.inf, 1.0)),
        Metric(
            "median_absolute_error",
            "median absolute error",
            lower_is_better=True,
            spec=",.4f",
            bounds=NON_NEGATIVE,
        ),
    )
}
# Families of per-class metrics: `recall[<class>]` is the recall of that class.
PER_CLASS: tuple[str, ...] = ("recall", "precision")

T = TypeVar("T")


@dataclass(frozen=True)
class MetricSet(Generic[T]):
    """One task's metrics: which are reported where, and how each is computed from the task's
    tally `T`. `test` in report order (with `classes`, the per-class metrics follow);
    `slice` per group of a slice column; `cv` per cross-validation fold; `monitor` for a
    labelled production window; `headline` the one metric a summary leads with."""

    task: Task
    test: tuple[str, ...]
    slice: tuple[str, ...]
    cv: tuple[str, ...]
    monitor: tuple[str, ...]
    headline: str
    formulas: Mapping[str, Callable[[T], np.ndarray]]
    # (tally, class name) → values, for the PER_CLASS families the task has.
    per_class: Mapping[str, Callable[[T, str], np.ndarray]] = field(default_factory=dict)
    # (tally, (false-positive cost, false-negative cost)) → cost per 1,000 rows, if the task
    # has a cost view.
    cost: Callable[[T, tuple[float, float]], np.ndarray] | None = None

    def formula(self, name: str) -> Callable[[T], np.ndarray]:
        """The formula of `name` for this task; a KeyError names the metrics it has."""
        found = self.formulas.get(name)
        if found is not None:
            return found
        family, class_name = per_class_name(name)
        per_class = self.per_class.get(family) if class_name is not None else None
        if per_class is None:
            names = sorted(self.formulas) + [f"{f}[<class>]" for f in self.per_class]
            raise KeyError(f"no {self.task} formula for metric {name!r}; metrics with one: {names}")
        return lambda tally: per_class(tally, str(class_name))


def per_class_name(name: str) -> tuple[str, str | None]:
    """(`recall`, `a`) for `recall[a]`; (name, None) for a name that is not per class."""
    family, bracket, rest = name.partition("[")
    if bracket and rest.endswith("]") and family in PER_CLASS:
        return family, rest[:-1]
    return name, None


def _binary_cost(t: Tally, costs: tuple[float, float]) -> np.ndarray:
    return ratio(t.fp * costs[0] + t.fn * costs[1], t.total, np.nan) * 1000.0


BINARY: MetricSet[Tally] = MetricSet(
    task="binary",
    test=("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier"),
    slice=("roc_auc", "recall", "positive_rate", "calibration_error"),
    cv=("roc_auc", "pr_auc", "log_loss"),
    monitor=("roc_auc", "accuracy", "precision", "recall", "f1", "brier", "outcome_rate"),
    headline="roc_auc",
    formulas={
        "roc_auc": lambda t: ratio(t.ranked_pairs, t.positives * t.negatives, np.nan),
        "pr_auc": lambda t: ratio(t.precision_area, t.positives, np.nan),
        "accuracy": lambda t: ratio(t.tp + t.tn, t.total, np.nan),
        "precision": lambda t: ratio(t.tp, t.tp + t.fp, 0.0),
        "recall": lambda t: ratio(t.tp, t.positives, np.nan),
        "f1": lambda t: ratio(2 * t.tp, 2 * t.tp + t.fp + t.fn, 0.0),
        "log_loss": lambda t: ratio(t.log_loss, t.total, np.nan),
        "brier": lambda t: ratio(t.squared_error, t.total, np.nan),
        "positive_rate": lambda t: ratio(t.tp + t.fp, t.total, np.nan),
        "outcome_rate": lambda t: ratio(t.positives, t.total, np.nan),
    },
    cost=_binary_cost,
)
MULTICLASS: MetricSet[ConfusionTally] = MetricSet(
    task="multiclass",
    test=("accuracy", "balanced_accuracy", "macro_f1", "log_loss"),
    slice=("accuracy", "macro_f1", "log_loss"),
    cv=("macro_f1", "accuracy", "log_loss"),
    monitor=("accuracy", "balanced_accuracy", "macro_f1"),
    headline="macro_f1",
    formulas={
        "accuracy": lambda t: ratio(t.hits.sum(axis=1), t.total, np.nan),
        # The mean recall over the classes present, as scikit-learn's balanced_accuracy_score.
        "balanced_accuracy": lambda t: finite_mean(t.recall),
        # The mean F1 over the classes present or predicted, as f1_score(average="macro").
        "macro_f1": lambda t: finite_mean(t.f1),
        "log_loss": lambda t: ratio(t.log_loss, t.total, np.nan),
    },
    per_class={
        "recall": lambda t, name: t.recall[:, t.index(name)],
        "precision": lambda t, name: t.precision[:, t.index(name)],
    },
)
REGRESSION: MetricSet[ErrorTally] = MetricSet(
    task="regression",
    test=("rmse", "mae", "r2", "median_absolute_error"),
    slice=("rmse", "mae", "r2"),
    cv=("rmse", "mae", "r2"),
    monitor=("rmse", "mae", "r2"),
    headline="r2",
    formulas={
        "rmse": lambda t: np.sqrt(ratio(t.squared_error, t.weight, np.nan)),
        "mae": lambda t: ratio(t.absolute_error, t.weight, np.nan),
        "r2": _r2,
        "median_absolute_error": lambda t: t.median_absolute_error,
    },
)
METRIC_SETS: dict[Task, MetricSet[Any]] = {s.task: s for s in (BINARY, MULTICLASS, REGRESSION)}


def metric_sets(task: str, classes: Sequence[str] = ()) -> MetricSet[Any]:
    """The metric set of `task`; with `classes` (multiclass), `test` ends with each class's
    per-class metrics: `recall[a]`, `recall[b]`, …, `precision[a]`, …. A KeyError names the
    tasks."""
    found = METRIC_SETS[task_spec(task).name]
    if not classes or not found.per_class:
        return found
    per_class = tuple(f"{family}[{c}]" for family in found.per_class for c in classes)
    return replace(found, test=found.test + per_class)


BINARY_CLASSES: tuple[str, ...] = ("False", "True")  # how a binary target's 0 and 1 read


def class_names(task: str, classes: Sequence[str] = ()) -> tuple[str, ...]:
    """A classifier's classes by target index, as reports and messages name them: the
    contract's `classes` (multiclass) or False/True (binary); none for regression."""
    if not task_spec(task).classification:
        return ()
    return tuple(classes) or BINARY_CLASSES


def metric(name: str) -> Metric:
    """The registered metric, or a default entry for an unknown name (`a.b.roc_auc` → roc_auc;
    `test.recall[x]` → the recall of class x)."""
    head, bracket, rest = name.partition("[")
    short = head.rsplit(".", 1)[-1] + bracket + rest
    family, class_name = per_class_name(short)
    if class_name is not None:
        base = METRICS[family]
        return replace(base, name=short, label=f"{base.label} of {class_name}")
    found = METRICS.get(short)
    if found is not None:
        return found
    return Metric(short, short, lower_is_better=short.startswith("cost"))


def lower_is_better(name: str) -> bool:
    return metric(name).lower_is_better


def label(name: str) -> str:
    return metric(name).label
