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
from gitops_ml.metric_registry import label, lower_is_better, metric_sets, per_class_name
from gitops_ml.scoring import Difference, family_level
from gitops_ml.tasks import TASKS, Task

REGRESSION_TESTS: tuple[str, ...] = ("paired_bootstrap", "none")


class TaskGates(ParamsModel):
    """The gates of one task (`gates.<task>`): floors, regressions, slice gaps, ONNX parity.

    `max_parity_diff` bounds the export parity in the task's own measure (metrics/export.json
    `parity.measure`): the largest |Δp| for a classifier, the largest |Δŷ| relative to the
    target's standard deviation for a regressor."""

    minimum: dict[str, float] = Field(default_factory=dict, alias="min")
    max_regression: dict[str, float] = Field(default_factory=dict)
    max_parity_diff: float | None = None
    max_slice_gap: dict[str, float] = Field(default_factory=dict)


class ClassifierGates(TaskGates):
    """A classifier's gates also bound the labels ONNX and scikit-learn disagree on."""

    max_label_flips: int | None = None


# The keys `gates:` had before it was per task: a file that still has them is told where they went.
FLAT_KEYS: tuple[str, ...] = tuple(
    field.alias or name for name, field in ClassifierGates.model_fields.items()
)


class GatesSection(ParamsModel):
    """The `gates:` section as the file holds it: one section per task, plus the shared keys.
    Only the section of the contract's task applies; every section is checked, so a gate on a
    metric its task does not have is refused whatever the contract says today."""

    regression_test: str = "paired_bootstrap"
    binary: ClassifierGates | None = None
    multiclass: ClassifierGates | None = None
    regression: TaskGates | None = None

    def check(self) -> None:
        if self.regression_test not in REGRESSION_TESTS:
            raise ConfigError(
                f"params.yaml: 'gates.regression_test' is {self.regression_test!r}"
                f"{did_you_mean(self.regression_test, REGRESSION_TESTS)}; expected one of "
                f"{list(REGRESSION_TESTS)}"
            )
        for task in TASKS:
            rules = getattr(self, task)
            if rules is not None:
                _check_task(task, rules)

    def for_task(self, task: Task) -> GateParams:
        """The gates that apply to a review of a `task` model (none when its section is absent)."""
        rules: TaskGates = getattr(self, task) or TaskGates()
        return GateParams(task=task, regression_test=self.regression_test, **dict(rules))


# The cost view's metrics (evaluate's `business`), gated like test metrics where a task has one.
BUSINESS: tuple[str, ...] = ("cost_per_1000", "cost_per_1000_at_best")


def gate_metrics(task: str) -> tuple[str, ...]:
    """The metrics a `min` or `max_regression` gate of `task` may name: its test metrics, its
    per-class ones (`recall[<class>]`) and, when the task has a cost view, the costs."""
    sets = metric_sets(task)
    per_class = tuple(f"{family}[<class>]" for family in sets.per_class)
    return (*sets.test, *per_class, *(BUSINESS if sets.cost is not None else ()))


def _gatable(task: str, name: str) -> bool:
    family, class_name = per_class_name(name)
    if class_name is not None:
        return family in metric_sets(task).per_class
    return name in gate_metrics(task)


def _check_task(task: str, rules: TaskGates) -> None:
    where = f"gates.{task}"
    valid = gate_metrics(task)
    for kind, names in (("min", rules.minimum), ("max_regression", rules.max_regression)):
        for name in names:
            if not _gatable(task, name):
                raise ConfigError(
                    f"params.yaml: '{where}.{kind}.{name}' is not a {task} metric"
                    f"{did_you_mean(name, valid)}; {task} metrics: {', '.join(valid)}"
                )
    for name in rules.minimum:
        if lower_is_better(name):
            raise ConfigError(
                f"params.yaml: '{where}.min.{name}': {label(name)} is lower-is-better, a floor "
                "never fails; gate it with max_regression"
            )
    slice_metrics = metric_sets(task).slice
    for name in rules.max_slice_gap:
        if name not in slice_metrics:
            raise ConfigError(
                f"params.yaml: unknown metric '{where}.max_slice_gap.{name}'"
                f"{did_you_mean(name, slice_metrics)}; {task} slice metrics: "
                f"{', '.join(slice_metrics)}"
            )
    for kind, limits in (
        ("max_regression", rules.max_regression),
        ("max_slice_gap", rules.max_slice_gap),
    ):
        for name, allowed in limits.items():
            if allowed < 0:
                raise ConfigError(f"params.yaml: '{where}.{kind}.{name}' must be >= 0")
    flips = getattr(rules, "max_label_flips", None)
    if flips is not None and flips < 0:
        raise ConfigError(f"params.yaml: '{where}.max_label_flips' must be >= 0, got {flips}")
    if rules.max_parity_diff is not None and rules.max_parity_diff < 0:
        raise ConfigError(f"params.yaml: '{where}.max_parity_diff' must be >= 0")


class GateParams(ClassifierGates):
    """The gates of one review: the contract's task's section of `gates:` and the shared keys
    (`GatesSection.for_task`); empty when params.yaml has no gates for the task."""

    task: Task
    regression_test: str = "paired_bootstrap"

    def interval_level(self) -> float:
        """The level of every PR − base interval: the regression gates are one decision, so
        randomness may fail (or be called real in) any of them at most 5 % of the time."""
        return family_level(len(self.max_regression))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], task: Task) -> GateParams:
        """The gates of `task` from parsed params (all of `gates:` checked)."""
        raw = params.get("gates")
        if raw is None:
            return cls(task=task)
        old = [key for key in FLAT_KEYS if isinstance(raw, Mapping) and key in raw]
        if old:
            where = getattr(params, "path", paths.PARAMS)
            raise ConfigError(
                f"{where}: 'gates.{old[0]}' belongs to a task now: move "
                f"{', '.join(old)} under 'gates.<task>' ({', '.join(TASKS)}), e.g. "
                f"'gates.binary.{old[0]}'"
            )
        return read_section(GatesSection, params, "gates").for_task(task)


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
        diff = parity.get("max_abs_diff")  # in the task's measure, which export names
        shown = str(parity.get("measure") or "max |Δp|")
        ok = diff is not None and float(diff) <= gates.max_parity_diff
        value = "missing" if diff is None else f"{float(diff):.2e}"
        results.append(
            GateResult("ONNX parity", ok, f"{shown} {value}, allowed {gates.max_parity_diff:.0e}")
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
