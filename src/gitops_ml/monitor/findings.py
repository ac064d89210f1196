"""The drift check's results as frozen dataclasses: built once, read by name, never mutated.

`DriftResult.to_json()` writes drift.json in the documented format (docs/monitoring.md), so the
report, the workflow's step outputs and any reader of the file see the same keys as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["ok", "warn", "alert", "not_enough_data", "not_computed"]
Verdict = Literal["drift", "warn", "no_drift", "not_enough_data"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "alert")
SEVERITY: dict[str, int] = {"alert": 0, "warn": 1, "ok": 2, "not_enough_data": 3}


@dataclass(frozen=True)
class Chart:
    """Shares of all rows per bin, reference and current; the last bin may be "(missing)"."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class MissingRates:
    """Missing rates, reference and current, and the two-proportion test between them."""

    ref: float
    cur: float
    p: float

    @property
    def change(self) -> float:
        return self.cur - self.ref


@dataclass(frozen=True)
class Distribution:
    """How one column's window compares with its reference: tests, effect sizes, chart."""

    kind: Literal["numeric", "categorical"]
    rows: int
    test: Literal["ks", "chi2"]
    statistic: float | None
    p_distribution: float | None
    p_value: float  # the feature's one p-value (Bonferroni over its tests), before BH
    psi: float
    js: float
    wasserstein_norm: float | None
    missing: MissingRates
    chart: Chart
    unseen: float | None = None  # categorical: share of values in categories never profiled
    unseen_top: dict[str, int] | None = None
    mean_ref: float | None = None  # numeric: means of the non-missing values
    mean_cur: float | None = None
    level: Level = "not_enough_data"
    p_adjusted: float | None = None
    significant: bool = False

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("mean_ref", "mean_cur") if self.kind == "categorical" else ("unseen_top",):
            del out[key]
        del out["missing"]
        missing = self.missing
        out.update(
            missing_ref=missing.ref,
            missing_cur=missing.cur,
            missing_change=missing.change,
            p_missing=missing.p,
        )
        return out


@dataclass(frozen=True)
class FeatureFinding:
    """A feature's name and type with its Distribution comparison."""

    name: str
    type: str
    distribution: Distribution

    @property
    def level(self) -> Level:
        return self.distribution.level

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, **self.distribution.to_json()}


@dataclass(frozen=True)
class ProbabilityMean:
    """A class's mean predicted probability, in the reference and in the window."""

    reference: float
    current: float


@dataclass(frozen=True)
class PredictionFinding:
    """Drift of the model's predictions: of `watched` (the score, the predicted value or the
    predicted class, gitops_ml.monitor.watched); `distribution` is None when it could not be
    computed."""

    level: Level
    reason: str | None
    distribution: Distribution | None = None
    watched: str = "score"
    probability_means: dict[str, ProbabilityMean] | None = None  # multiclass: per class

    def to_json(self) -> dict[str, Any]:
        head: dict[str, Any] = {"watched": self.watched}
        if self.probability_means is not None:
            head["probability_means"] = {k: asdict(v) for k, v in self.probability_means.items()}
        if self.distribution is None:
            return {**head, "level": self.level, "reason": self.reason, "rows": 0}
        return {**head, **self.distribution.to_json(), "level": self.level, "reason": self.reason}


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class MetricRow:
    """One metric now (with a bootstrap interval) against training; the comparison only when
    the profile holds the training value."""

    current: float
    ci95: Interval | None
    training: float | None = None
    drop: float | None = None  # in the worse direction: positive means worse than training
    significant: bool | None = None
    degraded: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.training is None:
            for key in ("drop", "significant", "degraded"):
                del out[key]
        return out


@dataclass(frozen=True)
class PerformanceFinding:
    """Metrics on labelled, scored rows; `reason` says why they are absent or incomplete."""

    level: Level
    reason: str | None
    rows: int = 0
    metrics: dict[str, MetricRow] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "reason": self.reason,
            "rows": self.rows,
            "metrics": {name: row.to_json() for name, row in self.metrics.items()},
        }


@dataclass(frozen=True)
class Reference:
    rows: int
    model_sha256: str | None
    metrics: dict[str, Any] | None


@dataclass(frozen=True)
class OutcomeSummary:
    """What the join did, for drift.json and the report."""

    predictions: int  # prediction rows read from the window
    with_outcome: int  # of those, joined to an outcome
    outcomes: int  # distinct ids with an outcome
    unmatched: int  # outcomes whose id no prediction in the window carries
    too_late: int  # predictions whose outcome came after max_delay (or before the prediction)
    max_delay: str

    def to_json(self) -> dict[str, Any]:
        share = self.with_outcome / self.predictions if self.predictions else 0.0
        return {
            "predictions": self.predictions,
            "with_outcome": self.with_outcome,
            "share_with_outcome": round(share, 4),
            "outcomes": self.outcomes,
            "unmatched_outcomes": self.unmatched,
            "outside_max_delay": self.too_late,
            "max_delay": self.max_delay,
        }

    def text(self) -> str:
        share = 100 * self.with_outcome / self.predictions if self.predictions else 0.0
        return (
            f"{self.with_outcome:,} of {self.predictions:,} predictions ({share:.1f} %) have an "
            f"outcome so far (max delay {self.max_delay}); {self.too_late:,} outcome(s) outside "
            f"the delay, {self.unmatched:,} outcome(s) match no prediction in the window"
        )


@dataclass(frozen=True)
class DriftResult:
    """Everything drift.json and drift.md say, features most severe first."""

    verdict: Verdict
    reason: str
    rows: int
    features: list[FeatureFinding]
    prediction: PredictionFinding
    performance: PerformanceFinding
    reference: Reference
    thresholds: dict[str, float]
    skipped_lines: int = 0
    skipped_line_examples: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    outcomes: OutcomeSummary | None = None  # with --labels: how many predictions have outcomes

    @property
    def drift(self) -> bool:
        return self.verdict == "drift"

    @property
    def drifting_features(self) -> list[str]:
        return [f.name for f in self.features if f.level in ("warn", "alert")]

    @property
    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys((*LEVELS, "not_enough_data"), 0)
        for finding in self.features:
            counts[finding.level] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "drift": self.drift,
            "reason": self.reason,
            "rows": self.rows,
            "skipped_lines": self.skipped_lines,
            "skipped_line_examples": self.skipped_line_examples,
            "features": [f.to_json() for f in self.features],
            "drifting_features": self.drifting_features,
            "summary": self.summary,
            "prediction": self.prediction.to_json(),
            "performance": self.performance.to_json(),
            "reference": asdict(self.reference),
            "thresholds": self.thresholds,
        }
        if self.sources:
            out["sources"] = self.sources
        if self.outcomes is not None:
            out["outcomes"] = self.outcomes.to_json()
        return out
