"""Pull-request gates: the few rules that decide whether a model change may merge.

Configured in the `gates:` section of params.yaml so tightening a gate is itself a reviewed
change. Gates are results, not errors: a failing gate makes `gitops-ml report --check` exit 1,
while a gate that cannot be evaluated (metric missing) fails with a message saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops_ml.config import ConfigError, read_section

LOWER_IS_BETTER_EXACT = frozenset({"log_loss", "brier"})


def lower_is_better(metric: str) -> bool:
    """Direction of a metric (docs/interfaces.md): log loss, Brier and every cost_* go down."""
    name = metric.rsplit(".", 1)[-1]
    return name in LOWER_IS_BETTER_EXACT or name.startswith("cost")


@dataclass(frozen=True)
class GateParams:
    """The `gates:` section; a repository without it simply has no gates."""

    minimum: dict[str, float] = field(default_factory=dict, metadata={"key": "min"})
    max_regression: dict[str, float] = field(default_factory=dict)
    max_parity_diff: float | None = None
    max_label_flips: int | None = None

    def check(self) -> None:
        for metric, allowed in self.max_regression.items():
            if allowed < 0:
                raise ConfigError(f"params.yaml: 'gates.max_regression.{metric}' must be >= 0")
        if self.max_label_flips is not None and self.max_label_flips < 0:
            raise ConfigError(
                f"params.yaml: 'gates.max_label_flips' must be >= 0, got {self.max_label_flips}"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GateParams:
        if params.get("gates") is None:
            return cls()
        return read_section(cls, params, "gates")


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
) -> list[GateResult]:
    """Evaluate every configured gate.

    `pr`/`base` map headline metric names (e.g. `roc_auc`, `cost_per_1000`) to values, None or
    absent when missing; `parity` is the `parity` object of metrics/export.json (None if absent).
    """
    results: list[GateResult] = []
    for metric, floor in sorted(gates.minimum.items()):
        value = pr.get(metric)
        name = f"min {metric}"
        if value is None:
            results.append(GateResult(name, False, f"{metric} missing from the PR metrics", metric))
        elif lower_is_better(metric):
            results.append(
                GateResult(name, False, f"{metric} is lower-is-better; use max_regression", metric)
            )
        else:
            ok = value >= floor
            rel = "≥" if ok else "<"
            results.append(GateResult(name, ok, f"{metric} {value:.4f} {rel} {floor:g}", metric))
    for metric, allowed in sorted(gates.max_regression.items()):
        name = f"{metric} regression"
        new, old = pr.get(metric), base.get(metric)
        if new is None:
            results.append(GateResult(name, False, f"{metric} missing from the PR metrics", metric))
            continue
        if old is None:
            results.append(GateResult(name, True, "no base value (new metric)", metric))
            continue
        worse_by = (new - old) if lower_is_better(metric) else (old - new)
        ok = worse_by <= allowed + 1e-12
        detail = (
            f"{metric} worse by {worse_by:.4f}, allowed {allowed:g}"
            if worse_by > 0
            else f"{metric} not worse ({new - old:+.4f})"
        )
        results.append(GateResult(name, ok, detail, metric))
    if gates.max_parity_diff is not None or gates.max_label_flips is not None:
        results.extend(_parity_gates(gates, parity))
    return results


def _parity_gates(gates: GateParams, parity: Mapping[str, Any] | None) -> list[GateResult]:
    if not parity:
        return [GateResult("ONNX parity", False, "metrics/export.json has no parity results")]
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
