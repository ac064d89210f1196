"""metrics/evaluate.json, typed: what the evaluate stage writes and every reader of it reads.

Permissive about which metrics exist: each section maps a metric's name to its value, interval or
spread, so a task's own metrics need no change here. Strict about the shape: an unknown section,
a missing required one or a value of the wrong kind is an error naming the file and the field.
A new section of the file is one field here. Read like the other stages' metrics files, through
`gitops_ml.stage_metrics`. Fields: docs/interfaces.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gitops_ml import paths
from gitops_ml.stage_metrics import (
    MetricsFileError,
    metrics_file_from_json,
    parse_metrics_file,
    read_metrics_file,
)
from gitops_ml.stage_metrics import Record as _Section
from gitops_ml.tasks import Task


class Interval(_Section):
    """A percentile bootstrap interval; null ends when a resample left the metric undefined."""

    low: float | None
    high: float | None


class Spread(_Section):
    """Mean and standard deviation over the cross-validation folds."""

    mean: float
    std: float


class Rows(_Section):
    test: int


class Business(_Section):
    """The cost view (only when params.yaml sets `evaluate.costs`)."""

    threshold: float
    cost_per_1000: float
    best_threshold: float
    cost_per_1000_at_best: float


class TrainingNoise(_Section):
    """How much each test metric moves over refits that change only training randomness."""

    refits: int
    fraction: float
    sd: dict[str, float]


class SliceGroup(BaseModel):
    """One group of a slice column: its rows, and every other key a metric's value."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    __pydantic_extra__: dict[str, float | None] = Field(init=False)

    rows: int
    positives: int | None = None
    small: bool = False  # too few rows to count towards the gap

    def metric(self, name: str) -> float | None:
        return (self.model_extra or {}).get(name)


class Slice(_Section):
    groups: dict[str, SliceGroup]
    gap: dict[str, float | None]  # largest gap between groups that are not small, per metric


class ConfusionMatrix(_Section):
    """A multiclass model's test rows counted by actual class (row) and predicted class
    (column), both in `classes` order (the contract's)."""

    classes: list[str]
    counts: list[list[int]]


class EvaluateMetrics(_Section):
    """The whole file: the task, the test metrics, and what the stage adds to them (intervals,
    cross-validation, the counts at the decision threshold (binary) or the confusion matrix
    (multiclass), …) when it computed them."""

    task: Task = "binary"  # files written before tasks are binary
    test: dict[str, float | None]
    ci95: dict[str, Interval] = Field(default_factory=dict)
    cv: dict[str, Spread] = Field(default_factory=dict)
    confusion: dict[str, int] = Field(default_factory=dict)
    confusion_matrix: ConfusionMatrix | None = None
    rows: Rows | None = None
    business: Business | None = None
    training_noise: TrainingNoise | None = None
    slices: dict[str, Slice] = Field(default_factory=dict)


class EvaluateMetricsError(MetricsFileError):
    """metrics/evaluate.json is missing, not JSON, or not of the documented shape."""


def parse_evaluate_metrics(raw: Any, source: str = paths.EVALUATE_METRICS) -> EvaluateMetrics:
    """`raw` (the parsed JSON of `source`) as EvaluateMetrics, or an error naming the field."""
    return parse_metrics_file(EvaluateMetrics, raw, source, EvaluateMetricsError)


def evaluate_metrics_from_json(text: str, source: str) -> EvaluateMetrics:
    """The JSON text of `source` (a file, or a file at a Git revision) as EvaluateMetrics."""
    return metrics_file_from_json(EvaluateMetrics, text, source, EvaluateMetricsError)


def read_evaluate_metrics(path: str | Path = paths.EVALUATE_METRICS) -> EvaluateMetrics:
    """The evaluate stage's metrics file at `path`, typed."""
    return read_metrics_file(EvaluateMetrics, path, EvaluateMetricsError)
