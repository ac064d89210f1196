"""Every metric the project reports, once: its name, label, direction and number format.

The evaluate stage, the PR report, its gates, the model card and `gitops-ml summary` all read
labels and directions from here, so "is lower better?" has one answer and a new metric is one
line. Names not listed (a metric a fork adds) default to higher-is-better, except `cost*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    lower_is_better: bool = False
    spec: str = ".4f"  # format() spec for one value

    @property
    def better(self) -> Literal["higher", "lower"]:
        return "lower" if self.lower_is_better else "higher"

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "ROC AUC"),
        Metric("pr_auc", "PR AUC (average precision)"),
        Metric("accuracy", "accuracy"),
        Metric("precision", "precision"),
        Metric("recall", "recall"),
        Metric("f1", "F1"),
        Metric("log_loss", "log loss", lower_is_better=True),
        Metric("brier", "Brier score", lower_is_better=True),
        Metric("cost_per_1000", "cost per 1,000 rows", lower_is_better=True, spec=",.1f"),
        Metric(
            "cost_per_1000_at_best",
            "cost per 1,000 rows at the best threshold",
            lower_is_better=True,
            spec=",.1f",
        ),
        Metric("positive_rate", "predicted positive rate", spec=".3f"),
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


def metric(name: str) -> Metric:
    """The registered metric, or a default entry for an unknown name (`a.b.roc_auc` → roc_auc)."""
    short = name.rsplit(".", 1)[-1]
    found = METRICS.get(short)
    if found is not None:
        return found
    return Metric(short, short, lower_is_better=short.startswith("cost"))


def lower_is_better(name: str) -> bool:
    return metric(name).lower_is_better


def label(name: str) -> str:
    return metric(name).label
