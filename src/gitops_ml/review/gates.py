"""Pull-request gates: the few rules that decide whether a model change may merge.

Configured in the `gates:` section of params.yaml so tightening a gate is itself a reviewed
change. Gates are results, not errors: a failing gate makes `gitops-ml report --check` exit 1,
while a gate that cannot be evaluated (metric missing) fails with a message saying why.

A regression gate with `regression_test: paired_bootstrap` fails only when the regression is
both larger than `max_regression` AND real: its interval (test-set and training noise, at the
level `interval_level` gives the gated metrics together) excludes 0, so a change of seed on a
small test set cannot fail it while a real regression beyond the margin does;
`regression_test: none` compares the point values alone (the margin is then the only guard).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from gitops_ml import paths
from gitops_ml.config import ConfigError, ParamsModel, did_you_mean, read_section
from gitops_ml.evaluate_metrics import Slice
from gitops_ml.markdown import num, signed
from gitops_ml.metric_registry import SLICE_METRICS, label, lower_is_better
from gitops_ml.scoring import Difference, family_level

REGRESSION_TESTS: tuple[str, ...] = ("paired_bootstrap", "none")


class GateParams(ParamsModel):
    """The `gates:` section; a repository without it simply has no gates."""

    minimum: dict[str, float] = Field(default_factory=dict, alias="min")
    max_regression: dict[str, float] = Field(default_factory=dict)
    max_parity_diff: float | None = None
    max_label_flips: int | None = None
    regression_test: str = "paired_bootstrap"
    max_slice_gap: dict[str, float] = Field(default_factory=dict)

    def check(self) -> None:
        if self.regression_test not in REGRESSION_TESTS:
            raise ConfigError(
                f"params.yaml: 'gates.regression_test' is {self.regression_test!r}"
                f"{did_you_mean(self.regression_test, REGRESSION_TESTS)}; expected one of "
                f"{list(REGRESSION_TESTS)}"
            )
        for name, allowed in self.max_slice_gap.items():
            if name not in SLICE_METRICS:
                raise ConfigError(
                    f"params.yaml: unknown metric 'gates.max_slice_gap.{name}'"
                    f"{did_you_mean(name, SLICE_METRICS)}; slice metrics: {list(SLICE_METRICS)}"
                )
            if allowed < 0:
                raise ConfigError(f"params.yaml: 'gates.max_slice_gap.{name}' must be >= 0")
        for name, allowed in self.max_regression.items():
            if allowed < 0:
                raise ConfigError(f"params.yaml: 'gates.max_regression.{name}' must be >= 0")
        if self.max_label_flips is not None and self.max_label_flips < 0:
            raise ConfigError(
                f"params.yaml: 'gates.max_label_flips' must be >= 0, got {self.max_label_flips}"
            )

    def interval_level(self) -> float:
        """The level of every PR − base interval: the regression gates are one decision, so
        randomness may fail (or be called real in) any of them at most 5 % of the time."""
        return family_level(len(self.max_regression))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GateParams:
        if params.get("gates") is None:
            return cls()
        return read_section(cls, params, "gates")


def level_text(level: float) -> str:
    """An interval's level as the report prints it: 95%, 98.3%."""
    return f"{level * 100:.3g}%"


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str
    metric: str | None = None  # the headline metric this gate belongs to, for the table


def check_gates(
    gates: GateParams,
    pr: Mapping[str, float | None],
    base: Mapping[str, float | None],
    parity: Mapping[str, Any] | None,
    differences: Mapping[str, Difference] | None = None,
    slices: Mapping[str, Slice] | None = None,
) -> list[GateResult]:
    """Evaluate every configured gate.

    `pr`/`base` map headline metric names (e.g. `roc_auc`, `cost_per_1000`) to values, None or
    absent when missing; `parity` is the `parity` object of metrics/export.json (None if absent);
    `differences` the PR − base intervals by metric; `slices` the PR's `slices` of
    metrics/evaluate.json.
    """
    results: list[GateResult] = []
    for name, floor in sorted(gates.minimum.items()):
        value = pr.get(name)
        gate = f"min {name}"
        if value is None:
            results.append(GateResult(gate, False, f"{name} missing from the PR metrics", name))
        elif lower_is_better(name):
            results.append(
                GateResult(gate, False, f"{name} is lower-is-better; use max_regression", name)
            )
        else:
            ok = value >= floor
            rel = "≥" if ok else "<"
            results.append(GateResult(gate, ok, f"{name} {value:.4f} {rel} {floor:g}", name))
    for name, allowed in sorted(gates.max_regression.items()):
        results.append(
            _regression_gate(gates, name, allowed, pr.get(name), base.get(name), differences)
        )
    for name, allowed in sorted(gates.max_slice_gap.items()):
        results.extend(_slice_gap_gates(name, allowed, slices))
    if gates.max_parity_diff is not None or gates.max_label_flips is not None:
        results.extend(_parity_gates(gates, parity))
    return results


def _regression_gate(
    gates: GateParams,
    name: str,
    allowed: float,
    new: float | None,
    old: float | None,
    differences: Mapping[str, Difference] | None,
) -> GateResult:
    gate = f"{name} regression"
    if new is None:
        return GateResult(gate, False, f"{name} missing from the PR metrics", name)
    if old is None:
        return GateResult(gate, True, "no base value (new metric)", name)
    sign = -1.0 if lower_is_better(name) else 1.0
    worse_by = sign * (old - new)
    if worse_by <= 0:
        return GateResult(gate, True, f"{name} not worse ({new - old:+.4f})", name)
    too_large = worse_by > allowed + 1e-12
    detail = f"{name} worse by {worse_by:.4f}, allowed {allowed:g}"
    if gates.regression_test == "none":
        return GateResult(gate, not too_large, detail, name)
    difference = (differences or {}).get(name)
    if difference is None:
        return GateResult(gate, not too_large, f"{detail} (no interval: margin only)", name)
    # Real regression: the whole interval of PR − base lies on the worse side of 0.
    real = (difference.high < 0) if sign > 0 else (difference.low > 0)
    kind = "paired" if difference.paired else "unpaired"
    interval = (
        f"{kind} {level_text(difference.level)} interval {signed(difference.low)} … "
        f"{signed(difference.high)}"
    )
    verdict = "real" if real else "within noise"
    return GateResult(gate, not (too_large and real), f"{detail}; {verdict} ({interval})", name)


def _slice_gap_gates(
    name: str, allowed: float, slices: Mapping[str, Slice] | None
) -> list[GateResult]:
    shown = label(name)
    if not slices:
        return [
            GateResult(
                f"{name} slice gap",
                False,
                f"{paths.EVALUATE_METRICS} has no slice metrics (mark columns slice: true in the "
                "data contract)",  # plain text: the report escapes gate details
            )
        ]
    results = []
    for column in sorted(slices):
        gap = slices[column].gap.get(name)
        gate = f"{name} gap across {column}"
        if gap is None:
            detail = f"{shown} gap not computable (fewer than two groups large enough)"
            results.append(GateResult(gate, True, detail))
            continue
        ok = gap <= allowed + 1e-12
        results.append(
            GateResult(
                gate, ok, f"largest {shown} gap between groups {num(gap)}, allowed {allowed:g}"
            )
        )
    return results


def _parity_gates(gates: GateParams, parity: Mapping[str, Any] | None) -> list[GateResult]:
    if not parity:
        return [GateResult("ONNX parity", False, f"{paths.EXPORT_METRICS} has no parity results")]
    results = []
    if gates.max_parity_diff is not None:
        diff = parity.get("max_abs_diff")
        ok = diff is not None and float(diff) <= gates.max_parity_diff
        shown = "missing" if diff is None else f"{float(diff):.2e}"
        results.append(
            GateResult("ONNX parity", ok, f"max |Δp| {shown}, allowed {gates.max_parity_diff:.0e}")
        )
    if gates.max_label_flips is not None:
        flips = parity.get("label_flips")
        ok = flips is not None and int(flips) <= gates.max_label_flips
        results.append(
            GateResult(
                "ONNX label flips", ok, f"{flips} label flips, allowed {gates.max_label_flips}"
            )
        )
    return results
