"""`gitops-ml report`: the pull-request comment a reviewer decides a model change from.

Compares the workspace (the PR, reproduced) with a base revision using DVC's own diffs from Git
(`dvc metrics diff`, `dvc params diff`; the base's plot files and dvc.lock via `git show`), so
the base never has to be re-run. The base's model is fetched by its dvc.lock hash and scored on
the PR's test rows for a paired comparison (review/paired.py). `collect()` talks to git/dvc;
`render()` is pure and turns the collected inputs into markdown plus gate results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import load_params
from gitops_ml.contract import load_contract
from gitops_ml.errors import UserError
from gitops_ml.evaluate_metrics import (
    ConfusionMatrix,
    EvaluateMetrics,
    EvaluateMetricsError,
    Slice,
    SliceGroup,
    evaluate_metrics_from_json,
)
from gitops_ml.markdown import MISSING, auto, code, details, escape, is_number, num, signed, table
from gitops_ml.metric_registry import label, lower_is_better, metric, metric_sets
from gitops_ml.repo_state import changed_files, stale_message
from gitops_ml.review import charts
from gitops_ml.review.gates import BUSINESS, GateParams, GateResult, check_gates, level_text
from gitops_ml.review.paired import Comparison, compare_models
from gitops_ml.scoring import Difference, difference_sd, unpaired_difference

EVALUATE = paths.EVALUATE_METRICS
DATA = paths.DATA_METRICS
VALIDATION = paths.VALIDATION_METRICS
EXPORT = paths.EXPORT_METRICS
ROC = paths.ROC_PLOT
PRC = paths.PR_PLOT
PREDICTED_ACTUAL = paths.PREDICTED_ACTUAL_PLOT
RESIDUALS = paths.RESIDUALS_PLOT
PLOTS = (ROC, PRC, PREDICTED_ACTUAL, RESIDUALS)  # the plot files the charts of any task read
LOCK = paths.DVC_LOCK
COMMENT_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters; keep a margin
ALWAYS_CHANGED = "always changed"  # `dvc status` for a stage with always_changed: true
FLAG = "⚠️"
FLAG_LEGEND = f"{FLAG} = changed for the worse, or an identity (hash, split, source) changed."
Direction = Literal["higher", "lower", "neutral", "info"]  # which change is flagged

Flat = dict[str, Any]  # "test.roc_auc" -> value, as `dvc metrics diff` flattens them


class ReportError(UserError):
    """The base revision or the repository cannot be compared (exit 2)."""


@dataclass
class ReviewInputs:
    """Everything the report needs, gathered from git and DVC (or built by hand in tests)."""

    base_rev: str
    base_sha: str
    metrics: dict[str, dict[str, dict[str, Any]]]  # dvc metrics diff --all --json
    params: dict[str, dict[str, dict[str, Any]]]  # dvc params diff --all --json
    gates: GateParams  # the contract's task's gates (its `task` is the task of the review)
    base_plots: dict[str, Any] = field(default_factory=dict)  # path -> parsed JSON
    pr_plots: dict[str, Any] = field(default_factory=dict)
    base_lock: dict[str, Any] | None = None
    pr_lock: dict[str, Any] | None = None  # the workspace dvc.lock (what CI reproduced)
    stale_files: list[str] = field(default_factory=list)  # repo_state.changed_files
    status: dict[str, Any] = field(default_factory=dict)  # dvc status --json (workspace)
    load_errors: list[str] = field(default_factory=list)
    comparison: Comparison | None = None  # the paired comparison, or why it fell back
    base_slices: dict[str, Slice] = field(default_factory=dict)  # `slices` of evaluate.json
    pr_slices: dict[str, Slice] = field(default_factory=dict)
    # A multiclass model's `confusion_matrix` of evaluate.json
    base_confusion_matrix: ConfusionMatrix | None = None
    pr_confusion_matrix: ConfusionMatrix | None = None

    def side(self, path: str, which: str) -> Flat:
        """One side ("old" = base, "new" = PR) of a metrics file, flattened."""
        entries = self.metrics.get(path, {})
        return {
            k: v[which]
            for k, v in entries.items()
            if isinstance(v, dict) and v.get(which) is not None
        }


@dataclass(frozen=True)
class Report:
    markdown: str
    gates: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


# ----------------------------------------------------------------------------- collect


def _git_show(rev: str, path: str) -> str | None:
    done = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _parse(text: str | None, path: str) -> Any:
    if text is None:
        return None
    try:
        return yaml.safe_load(text) if path.endswith((".yaml", ".lock")) else json.loads(text)
    except (ValueError, yaml.YAMLError):
        return None  # an unreadable old file is shown as absent, not a crash


def _dvc_diffs(base_sha: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]:
    """`dvc metrics diff --all`, `dvc params diff --all` and `dvc status`, in process.

    The same calls the `dvc` CLI makes for `--json`, without three interpreter start-ups
    (seconds each on a busy CI runner). Returns (metrics, params, status, load errors).
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(".") as repo:
            metrics = repo.metrics.diff(a_rev=base_sha, all=True)
            params = repo.params.diff(a_rev=base_sha, all=True)
            status = repo.status()
    except DvcException as exc:
        raise ReportError(f"DVC could not compare with {base_sha[:7]}: {exc}") from None
    errors = [
        f"DVC could not load some {kind} of {'the base' if rev == base_sha else rev}"
        for kind, result in (("metrics", metrics), ("params", params))
        for rev, err in (result.get("errors") or {}).items()
        if err
    ]
    return _relative(metrics), _relative(params), dict(status or {}), errors


def _relative(result: Mapping[str, Any]) -> dict[str, Any]:
    return {Path(os.path.relpath(p)).as_posix(): v for p, v in result.get("diff", {}).items()}


def _threshold(flat: Flat) -> float | None:
    value = flat.get("business.threshold")
    return float(value) if is_number(value) else None


def collect(base_rev: str, params_path: str | Path = paths.PARAMS) -> ReviewInputs:
    """Gather both sides; run from the repository root (where dvc.yaml lives)."""
    probe = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{base_rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise ReportError(
            f"unknown base revision {base_rev!r}: not a commit in this repository "
            f"(in CI fetch it first, e.g. `git fetch origin main`; locally try --base main)"
        )
    base_sha = probe.stdout.strip()
    metrics, params, status, errors = _dvc_diffs(base_sha)
    workspace_lock = Path(LOCK).read_text() if Path(LOCK).exists() else None
    raw_params = load_params(params_path)
    task = load_contract(paths.CONTRACT).task
    base_evaluation = _evaluation(_git_show(base_sha, EVALUATE), f"{base_rev}:{EVALUATE}")
    pr_evaluation = _evaluation(
        Path(EVALUATE).read_text() if Path(EVALUATE).is_file() else None, EVALUATE
    )
    inputs = ReviewInputs(
        base_rev=base_rev,
        base_sha=base_sha,
        metrics=metrics,
        params=params,
        base_plots={p: _parse(_git_show(base_sha, p), p) for p in PLOTS},
        pr_plots={p: _read_json(p) for p in PLOTS},
        base_lock=_parse(_git_show(base_sha, LOCK), LOCK),
        pr_lock=_parse(workspace_lock, LOCK),
        stale_files=changed_files("."),
        status=status,
        load_errors=errors,
        gates=GateParams.from_params(raw_params, task),
        base_slices=base_evaluation.slices if base_evaluation else {},
        pr_slices=pr_evaluation.slices if pr_evaluation else {},
        base_confusion_matrix=base_evaluation.confusion_matrix if base_evaluation else None,
        pr_confusion_matrix=pr_evaluation.confusion_matrix if pr_evaluation else None,
    )
    if inputs.gates.regression_test == "none":
        inputs.comparison = Comparison(paired=False, note="`gates.regression_test: none`")
    else:
        thresholds = (
            _threshold(inputs.side(EVALUATE, "old")),
            _threshold(inputs.side(EVALUATE, "new")),
        )
        inputs.comparison = compare_models(
            base_sha,
            inputs.base_lock,
            inputs.pr_lock,
            thresholds,
            raw_params,
            level=inputs.gates.interval_level(),
            training_sd=training_sd(inputs),
            training_df=training_df(inputs),
        )
    return inputs


def _evaluation(text: str | None, source: str) -> EvaluateMetrics | None:
    """An evaluate.json, typed; none when it is absent or of another shape (an older base's),
    like any unreadable file."""
    try:
        return evaluate_metrics_from_json(text, source) if text else None
    except EvaluateMetricsError:
        return None


def _read_json(path: str) -> Any:
    try:
        return gio.read_json(path) if Path(path).is_file() else None
    except ValueError:
        return None  # an unreadable file is shown as absent, not a crash


# ----------------------------------------------------------------------------- formatting


fmt = auto  # the report's one number format (gitops_ml.markdown)


def _distinct(old: Any, new: Any) -> tuple[str, str]:
    """Both values formatted, with more digits when the usual four would hide the change."""
    a, b = fmt(old), fmt(new)
    if a == b and is_number(old) and is_number(new) and old != new:
        return f"{old:.8g}", f"{new:.8g}"
    return a, b


def _changed(entry: Any) -> bool:
    return isinstance(entry, Mapping) and entry.get("old") != entry.get("new")


# ----------------------------------------------------------------------------- sections


def headline(flat: Flat) -> dict[str, float]:
    """Metrics the table and the gates speak of: every `test.*` plus the business costs."""
    out = {k[5:]: v for k, v in flat.items() if k.startswith("test.") and is_number(v)}
    for key in BUSINESS:
        if is_number(flat.get(f"business.{key}")):
            out[key] = flat[f"business.{key}"]
    return out


def _ordered(names: Sequence[str], gates: GateParams, classes: Sequence[str]) -> list[str]:
    """The task's headline metric first, then the gated ones, then the rest of the task's test
    metrics in the registry's order (per-class ones by family, in the model's class order),
    anything else in `names` order, the costs last."""
    sets = metric_sets(gates.task, classes)
    order = [sets.headline, *(n for n in sets.test if n in gates.max_regression), *sets.test]
    first = [n for n in dict.fromkeys(order) if n in names]
    business = [n for n in BUSINESS if n in names]
    rest = [n for n in names if n not in first and n not in business]
    return first + rest + business


NOISE = "training_noise"  # the evaluate stage's refit spread (metrics/evaluate.json)


def training_sd(inputs: ReviewInputs) -> dict[str, float]:
    """Training-noise standard deviation of PR − base per metric, from both sides' refits."""
    prefix = f"{NOISE}.sd."

    def sds(flat: Flat) -> dict[str, float]:
        return {k[len(prefix) :]: float(v) for k, v in flat.items() if k.startswith(prefix)}

    return difference_sd(sds(inputs.side(EVALUATE, "old")), sds(inputs.side(EVALUATE, "new")))


def side_refits(inputs: ReviewInputs) -> tuple[Any, Any]:
    """The refits each side's training noise rests on (base, PR): absent on a side that
    measured none."""
    base, pr = (inputs.side(EVALUATE, side).get(f"{NOISE}.refits") for side in ("old", "new"))
    return base, pr


def training_df(inputs: ReviewInputs) -> float | None:
    """Degrees of freedom of the training-noise estimate: the fewer refits of the two sides,
    minus one (a lower bound of Welch-Satterthwaite's, so the interval errs wide)."""
    counts = [int(r) for r in side_refits(inputs) if is_number(r) and int(r) > 1]
    return float(min(counts) - 1) if counts else None


def differences(inputs: ReviewInputs) -> dict[str, Difference]:
    """PR − base with its interval per headline metric: paired when the comparison ran, else
    unpaired from each side's own bootstrap interval (metrics/evaluate.json `ci95`); both with
    the training noise, at the gates' family-wise level."""
    base, pr = inputs.side(EVALUATE, "old"), inputs.side(EVALUATE, "new")
    comparison = inputs.comparison
    if comparison is not None and comparison.paired:
        names = set(headline(base)) & set(headline(pr))
        return {k: v for k, v in comparison.differences.items() if k in names}
    out: dict[str, Difference] = {}
    level, sd, df = inputs.gates.interval_level(), training_sd(inputs), training_df(inputs)
    for name, new in headline(pr).items():
        old = headline(base).get(name)
        found = [f.get(f"ci95.{name}.{end}") for f in (base, pr) for end in ("low", "high")]
        bounds = [float(b) for b in found if is_number(b)]
        if old is not None and len(bounds) == 4:
            lo_a, hi_a, lo_b, hi_b = bounds
            out[name] = unpaired_difference(
                old,
                new,
                (lo_a, hi_a),
                (lo_b, hi_b),
                level=level,
                training_sd=sd.get(name),
                training_df=df,
                bounds=metric(name).bounds,
            )
    return out


def _noise_note(inputs: ReviewInputs) -> str:
    """What the intervals hold besides the test rows, and at which level (why so wide)."""
    gated = len(inputs.gates.max_regression)
    level = level_text(inputs.gates.interval_level())
    family = (
        f"{level} intervals: the {gated} regression-gated metrics together call randomness real "
        "at most 5% of the time (Bonferroni)"
        if gated > 1
        else f"{level} intervals"
    )
    base, pr = side_refits(inputs)
    if not training_sd(inputs) or not (is_number(base) or is_number(pr)):
        return f"{family}; no training noise measured (`evaluate.refits: 0`): test-set noise only"
    if is_number(base) and is_number(pr):
        sides = "base and PR, in quadrature"
    elif is_number(pr):
        sides = "the PR's counting for both: the base measured none"
    else:
        sides = "the base's counting for both: the PR measured none"
    refits = int(pr) if is_number(pr) else int(base or 0)
    return (
        f"{family}; they include the training noise (the spread of {refits} refits with other "
        f"seeds and subsamples, {sides})"
    )


def comparison_note(inputs: ReviewInputs) -> str:
    """One line saying how base and PR were compared, so a reader knows what "real" rests on."""
    comparison = inputs.comparison
    noise = _noise_note(inputs)
    if comparison is not None and comparison.paired:
        return (
            f"**Paired comparison**: {comparison.note}; {noise}. *Real* = the interval of "
            "PR − base excludes 0; *detectable* = its half-width, the smallest difference these "
            "two models on this test set can call real."
        )
    why = comparison.note if comparison is not None else "no paired comparison was made"
    return (
        f"**Unpaired comparison** ({why}): each interval of PR − base combines the base's and "
        f"the PR's own bootstrap intervals, so only larger changes can be called real; {noise}."
    )


def _verdict(name: str, delta: float, difference: Difference | None) -> str:
    better = (delta < 0) if lower_is_better(name) else (delta > 0)
    direction = "🟢 better" if better else "🔴 worse"
    if difference is None:
        return direction
    return f"{direction}, **real**" if difference.real else f"{direction}, within noise"


def metrics_section(inputs: ReviewInputs, gates: Sequence[GateResult]) -> tuple[str, bool]:
    """The headline table; returns (markdown, whether any metric changed)."""
    base, pr = inputs.side(EVALUATE, "old"), inputs.side(EVALUATE, "new")
    old_h, new_h = headline(base), headline(pr)
    diffs = differences(inputs)
    gate_by_metric: dict[str, list[GateResult]] = {}
    for g in gates:
        if g.metric:
            gate_by_metric.setdefault(g.metric, []).append(g)
    rows, any_change = [], False
    classes = inputs.pr_confusion_matrix.classes if inputs.pr_confusion_matrix else []
    for name in _ordered(list(dict.fromkeys([*new_h, *old_h])), inputs.gates, classes):
        old, new = old_h.get(name), new_h.get(name)
        mine = gate_by_metric.get(name, [])
        failing = [g.name.replace(name, "").strip() for g in mine if not g.passed]
        gate = ("❌ " + ", ".join(failing)) if failing else ("✅" if mine else "")
        shown = f"{escape(name)} {metric(name).arrow}"  # a per-class name holds the data's class
        spec = metric(name).spec
        difference = diffs.get(name)
        interval = (
            f"{signed(difference.low, '+' + spec)} … {signed(difference.high, '+' + spec)}"
            if difference
            else ""
        )
        detectable = f"±{num(difference.detectable, spec)}" if difference else ""
        if old is None or new is None:
            any_change = True
            state = "new (no base value)" if old is None else "removed in this PR"
            rows.append([shown, fmt(old), fmt(new), state, "", "", "", gate])
            continue
        delta = new - old
        if delta == 0:
            rows.append([shown, fmt(old), fmt(new), "±0", interval, "no change", detectable, gate])
            continue
        any_change = True
        rel = f" ({delta / abs(old):+.1%})" if old else ""
        rows.append(
            [
                shown,
                fmt(old),
                fmt(new),
                signed(delta, "+" + spec) + rel,
                interval,
                _verdict(name, delta, difference),
                detectable,
                gate,
            ]
        )
    if not rows:
        return f"### Metrics\n\n_No metrics found in `{EVALUATE}` on either side._", False
    level = f"{level_text(inputs.gates.interval_level())} interval"
    header = ["metric", "base", "PR", "change", level, "verdict", "detectable", "gate"]
    body = table(header, rows, "---|---:|---:|---:|---:|---|---:|:---:")
    note = "↑ higher is better, ↓ lower is better. " + comparison_note(inputs)
    return f"### Metrics (test set)\n\n{body}\n\n{note}", any_change


def other_metrics_section(inputs: ReviewInputs) -> str | None:
    """Every other changed metric (CV, intervals, data, export), folded."""
    shown = {f"business.{k}" for k in BUSINESS}
    rows = []
    for path in sorted(inputs.metrics):
        for key, entry in sorted(inputs.metrics[path].items()):
            if path == EVALUATE and (key in shown or key.startswith(("test.", "slices."))):
                continue
            if _changed(entry):
                rows.append(
                    [f"`{path}`", escape(key), *_distinct(entry.get("old"), entry.get("new"))]
                )
    if not rows:
        return None
    body = table(["file", "metric", "base", "PR"], rows, "---|---|---:|---:")
    return details(f"All other changed metrics ({len(rows)})", body)


def params_rows(inputs: ReviewInputs) -> list[list[str]]:
    rows = []
    for path in sorted(inputs.params):
        for key, entry in sorted(inputs.params[path].items()):
            if _changed(entry):
                name = key if path == "params.yaml" else f"{path}:{key}"
                rows.append([code(name), fmt(entry.get("old")), fmt(entry.get("new"))])
    return rows


def _stage_entries(lock: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    stages = (lock or {}).get("stages") or {}
    return {str(k): v for k, v in stages.items() if isinstance(v, dict)}


def _by_path(items: Any) -> dict[str, Any]:
    return {str(i.get("path")): i for i in items or [] if isinstance(i, dict)}


def stage_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, str]:
    """Stage -> why its dvc.lock entry differs (params, inputs, outputs, command)."""
    a, b = _stage_entries(old), _stage_entries(new)
    out: dict[str, str] = {}
    for stage in [*b, *(s for s in a if s not in b)]:  # pipeline order, removed ones last
        if stage not in a:
            out[stage] = "new stage"
            continue
        if stage not in b:
            out[stage] = "removed"
            continue
        why = []
        if a[stage].get("cmd") != b[stage].get("cmd"):
            why.append("command")
        old_p, new_p = a[stage].get("params") or {}, b[stage].get("params") or {}
        keys = sorted(f"{k}" for f in set(old_p) | set(new_p) for k in _param_keys(old_p, new_p, f))
        if keys:
            why.append("params " + ", ".join(code(k) for k in keys[:6]))
        for kind, what in (("deps", "inputs"), ("outs", "outputs")):
            x, y = _by_path(a[stage].get(kind)), _by_path(b[stage].get(kind))
            moved = sorted(p for p in set(x) | set(y) if x.get(p) != y.get(p))
            if moved:
                why.append(f"{what} " + ", ".join(code(p) for p in moved[:4]))
        if why:
            out[stage] = "; ".join(why)
    return out


def _param_keys(old: Mapping[str, Any], new: Mapping[str, Any], file: str) -> list[str]:
    x, y = old.get(file) or {}, new.get(file) or {}
    return [k for k in set(x) | set(y) if x.get(k) != y.get(k)]


def changes_section(inputs: ReviewInputs) -> tuple[str, bool]:
    """Params that changed and stages whose dvc.lock entry changed vs base."""
    rows = params_rows(inputs)
    params = table(["param", "base", "PR"], rows, "---|---|---") if rows else "No params changed."
    stages = stage_changes(inputs.base_lock, inputs.pr_lock)
    all_stages = list(_stage_entries(inputs.pr_lock) or _stage_entries(inputs.base_lock))
    if inputs.base_lock is None and inputs.pr_lock is not None:
        stage_text = "The base has no `dvc.lock`: every stage is new in this PR."
    elif stages:
        lines = [f"- **{escape(s)}**: {why}" for s, why in stages.items()]
        same = [escape(s) for s in all_stages if s not in stages]
        if same:
            lines.append(f"- unchanged: {', '.join(same)}")
        stage_text = "Stages whose recorded state differs from base (from `dvc.lock`):\n\n" + (
            "\n".join(lines)
        )
    else:
        stage_text = "No stage changed: `dvc.lock` records the same state as base."
    body = f"### Params changed\n\n{params}\n\n### Pipeline stages\n\n{stage_text}"
    return body, bool(rows or stages)


def charts_section(inputs: ReviewInputs) -> str | None:
    """The charts of the review's task (CHARTS), folded under one heading."""
    found = CHARTS[inputs.gates.task](inputs)
    if found is None:
        return None
    summary, body = found
    return "### Charts\n\n" + details(summary, body, True)


def _binary_charts(inputs: ReviewInputs) -> tuple[str, str] | None:
    """ROC and precision-recall curves, base vs PR, and both confusion matrices."""
    specs = (
        (ROC, "roc", "fpr", "tpr", "ROC curve", "False positive rate", "True positive rate"),
        (PRC, "precision_recall", "recall", "precision", "Precision-recall", "Recall", "Precision"),
    )
    parts = []
    for path, key, x, y, title, xl, yl in specs:
        base = charts.curve_on_grid((inputs.base_plots.get(path) or {}).get(key), x, y)
        pr = charts.curve_on_grid((inputs.pr_plots.get(path) or {}).get(key), x, y)
        if base or pr:
            parts.append(charts.xychart(title, xl, yl, base, pr))
    base_conf = inputs.side(EVALUATE, "old")
    pr_conf = inputs.side(EVALUATE, "new")
    conf = {k: pr_conf.get(f"confusion.{k}") for k in ("tn", "fp", "fn", "tp")}
    old_conf = {k: base_conf.get(f"confusion.{k}") for k in ("tn", "fp", "fn", "tp")}
    if not parts and not any(v is not None for v in conf.values()):
        return None
    legend = (
        "Grey line = base, blue line = this PR"
        if inputs.base_plots.get(ROC)
        else "Blue line = this PR (the base has no curves yet)"
    )
    body = f"{legend}; curves on a fixed grid of step {charts.GRID_STEP}.\n\n"
    body += "\n\n".join(parts)
    threshold = pr_conf.get("business.threshold")
    at = f" at threshold {threshold}" if threshold is not None else ""
    body += f"\n\n**Confusion matrix{at}** (test set)\n\n"
    body += charts.confusion_table(
        old_conf if any(v is not None for v in old_conf.values()) else None, conf
    )
    return "ROC, precision-recall, confusion matrices", body


def _numbers(values: Sequence[Any]) -> list[float] | None:
    """`values` as floats when every one is a number, else None (a side without them)."""
    return [float(v) for v in values if is_number(v)] if all(map(is_number, values)) else None


def _multiclass_charts(inputs: ReviewInputs) -> tuple[str, str] | None:
    """Each class's recall, base vs PR, and the PR's confusion matrix with its change per cell."""
    pr_matrix, base_matrix = inputs.pr_confusion_matrix, inputs.base_confusion_matrix
    if not pr_matrix or not pr_matrix.classes:
        return None
    classes = pr_matrix.classes
    base_counts = base_matrix.counts if base_matrix and base_matrix.classes == classes else None
    base_recall, pr_recall = (
        _numbers([side.get(f"test.recall[{c}]") for c in classes])
        for side in (inputs.side(EVALUATE, "old"), inputs.side(EVALUATE, "new"))
    )
    parts = []
    if pr_recall:
        legend = "Grey line = base, blue line = this PR" if base_recall else "Blue line = this PR"
        chart = charts.lines_chart(
            "Recall per class", "Class", classes, "Recall", (0.0, 1.0), base_recall, pr_recall
        )
        parts.append(f"{legend}.\n\n{chart}")
    matrix = charts.class_confusion_table(classes, base_counts, pr_matrix.counts)
    change = " (change from the base per cell)" if base_counts else ""
    parts.append(f"**Confusion matrix** (test set){change}\n\n{matrix}")
    return "Recall per class, confusion matrix", "\n\n".join(parts)


def _deciles(plots: Mapping[str, Any], path: str, key: str) -> dict[int, Mapping[str, Any]]:
    """The rows of a per-decile plot file (evaluate's regression plots) by decile."""
    rows = (plots.get(path) or {}).get(key) or []
    return {int(r["decile"]): r for r in rows if isinstance(r, Mapping) and "decile" in r}


def _regression_charts(inputs: ReviewInputs) -> tuple[str, str] | None:
    """Predicted vs actual by decile of the prediction (a line per side: the mean actual value
    of each decile; steeper is sharper, on the diagonal of the predicted mean is calibrated)
    and the residuals per decile, base vs PR."""
    old = _deciles(inputs.base_plots, PREDICTED_ACTUAL, "predicted_actual")
    new = _deciles(inputs.pr_plots, PREDICTED_ACTUAL, "predicted_actual")
    if not new:
        return None
    deciles = sorted(new)
    pr_actual = _numbers([new[d].get("mean_actual") for d in deciles])
    pr_predicted = _numbers([new[d].get("mean_predicted") for d in deciles])
    base_actual = (
        _numbers([old[d].get("mean_actual") for d in deciles]) if set(old) == set(new) else None
    )
    parts = []
    if pr_actual and pr_predicted:
        values = [*pr_actual, *pr_predicted, *(base_actual or [])]
        low, high = _axis(values)
        legend = (
            "Mean actual value per decile of the prediction: grey line = base, blue line = this PR"
            if base_actual
            else "Mean actual value per decile of the prediction (blue line = this PR)"
        )
        chart = charts.lines_chart(
            "Actual by decile of the prediction",
            "Decile of the prediction",
            [str(d) for d in deciles],
            "Mean actual",
            (low, high),
            base_actual,
            pr_actual,
        )
        parts.append(f"{legend}.\n\n{chart}")
    keys = ("mean_predicted", "mean_actual")
    spec = _spec([v for side in (old, new) for r in side.values() for v in map(r.get, keys)])
    rows = [
        [str(d), *(num((side.get(d) or {}).get(k), spec) for side in (old, new) for k in keys)]
        for d in deciles
    ]
    header = ["decile", "base: predicted", "base: actual", "PR: predicted", "PR: actual"]
    parts.append(
        "**Predicted vs actual** (test set, mean per decile of each model's prediction)\n\n"
        + table(header, rows, "---:|---:|---:|---:|---:")
    )
    residuals = _residual_table(inputs)
    if residuals:
        parts.append(residuals)
    return "Predicted vs actual by decile, residuals", "\n\n".join(parts)


def _residual_table(inputs: ReviewInputs) -> str | None:
    """Actual − predicted per decile of the prediction: its 10th, 50th and 90th percentile."""
    old = _deciles(inputs.base_plots, RESIDUALS, "residuals")
    new = _deciles(inputs.pr_plots, RESIDUALS, "residuals")
    if not new:
        return None

    def spread(row: Mapping[str, Any]) -> str:
        if not row:
            return MISSING
        low, mid, high = (row.get(f"residual_{k}") for k in ("p10", "median", "p90"))
        return f"{signed(mid, '+,.4g')} ({signed(low, '+,.4g')} … {signed(high, '+,.4g')})"

    rows = [[str(d), spread(old.get(d) or {}), spread(new[d])] for d in sorted(new)]
    header = ["decile", "base: median (10th … 90th pct)", "PR: median (10th … 90th pct)"]
    return "**Residuals** (actual − predicted, per decile of the prediction)\n\n" + table(
        header, rows, "---:|---:|---:"
    )


def _spec(values: Sequence[Any]) -> str:
    """One number format for a column of values in the target's unit: four significant digits
    of the largest, the same decimals for all."""
    largest = max((abs(v) for v in values if is_number(v) and math.isfinite(v)), default=0.0)
    decimals = max(0, 3 - math.floor(math.log10(largest))) if largest > 0 else 4
    return f",.{decimals}f"


def _axis(values: Sequence[float]) -> tuple[float, float]:
    """A y-axis range around `values` with a margin of a tenth of their spread."""
    low, high = min(values), max(values)
    margin = (high - low) / 10 or abs(high) / 10 or 1.0
    return float(f"{low - margin:.3g}"), float(f"{high + margin:.3g}")


# The charts of each task: (summary, markdown body), or None when there is nothing to draw.
CHARTS: dict[str, Callable[[ReviewInputs], tuple[str, str] | None]] = {
    "binary": _binary_charts,
    "multiclass": _multiclass_charts,
    "regression": _regression_charts,
}


def _worse(old: Any, new: Any, direction: Direction) -> bool:
    """Whether a change deserves the flag: worse in its direction, or a neutral identity."""
    if old is None or new is None or old == new or direction == "info":
        return False
    if direction == "neutral" or not (is_number(old) and is_number(new)):
        return direction == "neutral"
    return new < old if direction == "higher" else new > old


def _two_sided(rows: Sequence[tuple[str, Any, Any, Direction]]) -> tuple[str, bool]:
    """A base/PR table flagging only worse or identity changes; returns (table, any flag).
    Text values are markdown the caller built (`_text` for values read from files)."""
    out, flagged = [], False
    for name, old, new, direction in rows:
        flag = _worse(old, new, direction)
        flagged |= flag
        a, b = (v if isinstance(v, str) else fmt(v) for v in (old, new))
        out.append([name, a, b + (f" {FLAG}" if flag else "")])
    return table(["", "base", "PR"], out, "---|---:|---:"), flagged


def _text(value: Any) -> Any:
    """A value read from a file, for `_two_sided`: text escaped, anything else as it is."""
    return escape(value) if isinstance(value, str) else value


def _with_legend(text: str, flagged: bool) -> str:
    return f"{text}\n\n{FLAG_LEGEND}" if flagged else text


def recorded_data(lock: Mapping[str, Any] | None) -> dict[str, Any]:
    """The data file the `ingest` stage read (`data.source`), as dvc.lock records it."""
    stage = _stage_entries(lock).get("ingest") or {}
    source = ((stage.get("params") or {}).get(paths.PARAMS) or {}).get("data.source")
    dep = _by_path(stage.get("deps")).get(str(source)) or {}
    return {"source": source, "md5": dep.get("md5"), "bytes": dep.get("size")} if dep else {}


def _source_rows(inputs: ReviewInputs) -> list[tuple[str, Any, Any, Direction]]:
    """The data file ingest read and its hash, base vs PR, as each side's dvc.lock records it."""
    old, new = recorded_data(inputs.base_lock), recorded_data(inputs.pr_lock)
    if not (old or new):
        return []

    def md5(doc: Mapping[str, Any]) -> str | None:
        return code(str(doc["md5"])[:12]) if doc.get("md5") else None

    return [
        ("data source", _text(old.get("source")), _text(new.get("source")), "neutral"),
        ("data md5", md5(old), md5(new), "neutral"),
        ("data bytes", _text(old.get("bytes")), _text(new.get("bytes")), "info"),
    ]


RENAMED = {"positive_rate.": "churn_rate."}  # older bases wrote the positive rate under this


def _get(flat: Flat, key: str) -> Any:
    """flat[key], or the same value under its older name on a base from before the rename."""
    if key in flat:
        return flat[key]
    for new, old in RENAMED.items():
        if key.startswith(new):
            return flat.get(old + key[len(new) :])
    return None


SHARES = "class_shares."  # metrics/data.json: class_shares.<side>.<class>


def _by_side(key: str) -> tuple[bool, str]:
    side, _, name = key[len(SHARES) :].partition(".")
    return side != "train", name


def _share_name(key: str) -> str:
    side, _, name = key[len(SHARES) :].partition(".")
    return f"share of {escape(name)} ({escape(side)})"


def data_section(inputs: ReviewInputs) -> str | None:
    data_old, data_new = inputs.side(DATA, "old"), inputs.side(DATA, "new")
    val_old, val_new = inputs.side(VALIDATION, "old"), inputs.side(VALIDATION, "new")
    sources = _source_rows(inputs)
    if not (data_new or val_new or data_old or val_old or sources):
        return None
    keys: list[tuple[str, Flat, Flat, str, Direction]] = [
        ("rows (total)", data_old, data_new, "rows.total", "info"),
        ("rows (train)", data_old, data_new, "rows.train", "info"),
        ("rows (test)", data_old, data_new, "rows.test", "info"),
        ("positive rate (train)", data_old, data_new, "positive_rate.train", "info"),
        ("positive rate (test)", data_old, data_new, "positive_rate.test", "info"),
        ("target mean (train)", data_old, data_new, "target_mean.train", "info"),
        ("target mean (test)", data_old, data_new, "target_mean.test", "info"),
        ("target sd (train)", data_old, data_new, "target_std.train", "info"),
        ("target sd (test)", data_old, data_new, "target_std.test", "info"),
        ("split", data_old, data_new, "split.method", "neutral"),
        ("validation", val_old, val_new, "status", "neutral"),
        ("columns", val_old, val_new, "columns", "neutral"),
        ("failed checks", val_old, val_new, "failed_checks", "lower"),
        ("failing rows", val_old, val_new, "failing_rows", "lower"),
    ]
    shares = [k for k in dict.fromkeys([*data_new, *data_old]) if k.startswith(SHARES)]
    keys += [  # a multiclass target: each class's share of the rows on each side of the split
        (_share_name(k), data_old, data_new, k, "info") for k in sorted(shares, key=_by_side)
    ]
    rows = sources + [
        (name, _text(_get(old, k)), _text(_get(new, k)), d) for name, old, new, k, d in keys
    ]
    shown, flagged = _two_sided([r for r in rows if r[1] is not None or r[2] is not None])
    text = "### Data\n\n" + shown
    missing = sorted(
        {
            k
            for k in {**val_old, **val_new}
            if k.startswith("missing_rate.") and (val_old.get(k) or val_new.get(k))
        },
        key=lambda k: -float(val_new.get(k) or 0),
    )
    if missing:
        missing_table, more = _two_sided(
            [(code(k[13:]), _text(val_old.get(k)), _text(val_new.get(k)), "lower") for k in missing]
        )
        flagged |= more
        title = f"Missing values: {len(missing)} columns with any"
        text += "\n\n" + details(title, missing_table)
    return _with_legend(text, flagged)


def _largest_gap(groups: Mapping[str, SliceGroup], name: str) -> tuple[float, str] | None:
    """The largest gap of one metric between groups large enough to count, and which groups."""
    usable = {
        g: value for g, e in groups.items() if not e.small and (value := e.metric(name)) is not None
    }
    if len(usable) < 2:
        return None
    low, high = min(usable, key=usable.__getitem__), max(usable, key=usable.__getitem__)
    gap = usable[high] - usable[low]
    return gap, (f"{num(gap)} ({escape(low)} vs {escape(high)})" if gap > 0 else num(gap))


def slices_section(inputs: ReviewInputs) -> str | None:
    """Per slice column: each group's metrics base vs PR and the largest gap between groups;
    a gap that widened is flagged (the per-group values move with any model change)."""
    columns = sorted(set(inputs.base_slices) | set(inputs.pr_slices))
    if not columns:
        return None
    parts, flagged = [], False
    slice_metrics = metric_sets(inputs.gates.task).slice
    for column in columns:
        old = inputs.base_slices[column].groups if column in inputs.base_slices else {}
        new = inputs.pr_slices[column].groups if column in inputs.pr_slices else {}
        header = ["group", "rows"] + [f"{label(m)} (base → PR)" for m in slice_metrics]
        rows = []
        for group in [*new, *(g for g in old if g not in new)]:
            a, b = old.get(group), new.get(group)
            sides = [e for e in (b, a) if e is not None]
            name = escape(group) + (" (small)" if any(e.small for e in sides) else "")
            cells = [name, fmt(sides[0].rows)]
            for m in slice_metrics:
                spec = metric(m).spec
                was, now = (e.metric(m) if e else None for e in (a, b))
                cells.append(f"{num(was, spec)} → {num(now, spec)}")
            rows.append(cells)
        gap_rows = []
        for m in slice_metrics:
            before, after = _largest_gap(old, m), _largest_gap(new, m)
            wider = before is not None and after is not None and after[0] > before[0] + 1e-12
            flagged |= wider
            gap_rows.append(
                [
                    label(m),
                    before[1] if before else MISSING,
                    (after[1] if after else MISSING) + (f" {FLAG}" if wider else ""),
                ]
            )
        gaps = table(["largest gap between groups", "base", "PR"], gap_rows, "---|---|---")
        parts.append(f"**{code(column)}**\n\n{table(header, rows)}\n\n{gaps}")
    note = (
        "Groups of numeric columns are quantile bins of the test set; *(small)* groups have too "
        "few rows to count towards the gap."
    )
    body = _with_legend("\n\n".join(parts) + "\n\n" + note, flagged)
    names = ", ".join(escape(c) for c in columns)
    return "### Slices\n\n" + details(f"Metrics per group of {names}", body, True)


def model_section(inputs: ReviewInputs) -> str | None:
    old, new = inputs.side(EXPORT, "old"), inputs.side(EXPORT, "new")
    if not (old or new):
        return None

    def size(flat: Flat) -> str | None:
        value = flat.get("onnx.size_bytes")
        return f"{value / 1024:,.1f} KiB" if is_number(value) else None

    def sha(flat: Flat) -> str | None:
        value = flat.get("onnx.sha256")
        return code(str(value)[:12]) if value else None

    rows: list[tuple[str, Any, Any, Direction]] = [
        ("ONNX size", size(old), size(new), "info"),
        ("sha256", sha(old), sha(new), "neutral"),
        ("opset", old.get("onnx.opset"), new.get("onnx.opset"), "neutral"),
        _parity_row(new.get("parity.measure") or old.get("parity.measure"), old, new),
        (
            "parity: label flips",
            old.get("parity.label_flips"),
            new.get("parity.label_flips"),
            "lower",
        ),
        (
            "parity: rows checked",
            old.get("parity.rows_checked"),
            new.get("parity.rows_checked"),
            "info",
        ),
    ]
    shown, flagged = _two_sided(rows)
    text = "### Model (ONNX)\n\n" + shown
    extra = sorted(k for k in new if k.startswith(("parity.slices.", "versions.")))
    if extra:
        extra_rows: list[tuple[str, Any, Any, Direction]] = [
            (code(k), _text(old.get(k)), _text(new.get(k)), _parity_direction(k)) for k in extra
        ]
        extra_table, more = _two_sided(extra_rows)
        flagged |= more
        text += "\n\n" + details("Parity slices and library versions", extra_table)
    if new.get("onnx.sha256"):
        text += f"\n\nFull sha256 of the PR model: {code(new['onnx.sha256'])}"
    return _with_legend(text, flagged)


def _parity_row(measure: Any, old: Flat, new: Flat) -> tuple[str, Any, Any, Direction]:
    """The largest ONNX vs scikit-learn difference, named by the task's measure that export
    records (max |Δp|, or max |Δŷ| / sd(y)); older exports say neither."""
    shown = escape(measure) if measure else "max abs diff"
    key = "parity.max_abs_diff"
    return (f"parity: {shown}", _text(old.get(key)), _text(new.get(key)), "lower")


def _parity_direction(key: str) -> Direction:
    if key.endswith((".max_abs_diff", ".label_flips")):
        return "lower"
    return "neutral" if key.startswith("versions.") else "info"


def _workspace_changes(status: Mapping[str, Any]) -> list[str]:
    """Stages `dvc status` reports, except those that are only "always changed" (a stage a
    fork marks `always_changed: true` is listed on every run)."""
    return sorted(
        stage
        for stage, entries in status.items()
        if not (isinstance(entries, list) and entries and all(e == ALWAYS_CHANGED for e in entries))
    )


def warnings(inputs: ReviewInputs) -> list[str]:
    out = []
    if inputs.stale_files:
        out.append(f"{FLAG} **Stale committed outputs**: {stale_message(inputs.stale_files)}")
    changed = _workspace_changes(inputs.status)
    if changed:
        out.append(
            f"{FLAG} **Workspace not reproduced**: `dvc status` reports changes in "
            f"{', '.join(escape(s) for s in changed)}; the metrics below may not match the params."
        )
    out += [f"{FLAG} {escape(e)} (shown as missing)." for e in inputs.load_errors]
    gate_params = [r for r in params_rows(inputs) if r[0].startswith("`gates.")]
    if gate_params:
        out.append(f"{FLAG} **This PR changes the gates themselves** (see Params changed).")
    return out


# ----------------------------------------------------------------------------- render


def render(inputs: ReviewInputs, limit: int = COMMENT_LIMIT) -> Report:
    """The whole comment: verdict first, then details; never longer than `limit`."""
    base_h = headline(inputs.side(EVALUATE, "old"))
    pr_h = headline(inputs.side(EVALUATE, "new"))
    parity = {k[7:]: v for k, v in inputs.side(EXPORT, "new").items() if k.startswith("parity.")}
    gates = check_gates(
        inputs.gates, pr_h, base_h, parity or None, differences(inputs), inputs.pr_slices
    )
    failed = [g for g in gates if not g.passed]
    if not gates:
        verdict = "## ⚪ No gates configured (add a `gates:` section to params.yaml)"
    elif failed:
        names = "; ".join(f"**{escape(g.name)}** ({escape(g.detail)})" for g in failed)
        verdict = f"## ❌ {len(failed)} of {len(gates)} gates failed: {names}"
    else:
        verdict = f"## ✅ All {len(gates)} gates passed"
    base_label = f"{code(inputs.base_rev)} ({code(inputs.base_sha[:7])})"
    header = [verdict, f"Model report for this pull request against {base_label}."]
    header += warnings(inputs)
    metrics_md, metrics_changed = metrics_section(inputs, gates)
    changes_md, config_changed = changes_section(inputs)
    if not metrics_changed and not config_changed:
        header.append(
            f"**Nothing changed** compared with {base_label}: same params, same pipeline "
            "state in `dvc.lock` and identical metrics."
        )
    if gates:
        gate_rows = [
            [escape(g.name), "✅ pass" if g.passed else "❌ fail", escape(g.detail)] for g in gates
        ]
        header.append(details("Gates", table(["gate", "result", "detail"], gate_rows), True))
    sections = [
        "\n\n".join(header),
        metrics_md,
        other_metrics_section(inputs),
        changes_md,
        slices_section(inputs),
        charts_section(inputs),
        data_section(inputs),
        model_section(inputs),
        "---\n_Reproduce locally: `make pr-report BASE=<base branch>`. The full `dvc plots diff` "
        "is in the `pr-report` workflow artifact._",
    ]
    return Report(markdown=fit(sections, limit), gates=gates)


def fit(sections: Sequence[str | None], limit: int = COMMENT_LIMIT) -> str:
    """Join sections; drop whole sections from the end (never half a table) to stay under limit."""
    parts = [s for s in sections if s]
    text = "\n\n".join(parts) + "\n"
    if len(text) <= limit:
        return text
    note = (
        "\n\n> ✂️ **Report truncated** to fit a GitHub comment: {n} section(s) "
        "({chars:,} characters) left out. The full report is in the `pr-report` artifact.\n"
    )
    kept: list[str] = []
    budget = limit - len(note) - 40
    for part in parts:
        if len("\n\n".join([*kept, part])) > budget:
            break
        kept.append(part)
    if not kept:  # even the verdict is too long: cut it hard, it has no open fences
        kept = [parts[0][:budget]]
    omitted = parts[len(kept) :]
    chars = sum(len(p) for p in omitted) or len(parts[0]) - len(kept[0])
    return "\n\n".join(kept) + note.format(n=max(len(omitted), 1), chars=chars)


# ----------------------------------------------------------------------------- CLI


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="base revision, e.g. main or origin/main")
    parser.add_argument("--output", help="write the markdown here (default: stdout)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a gate fails (after writing)"
    )
    parser.add_argument("--params", default=paths.PARAMS, help="params file with `gates:`")


def run(args: argparse.Namespace) -> int:
    report = render(collect(args.base, args.params))
    if args.output:
        gio.write_text(args.output, report.markdown)
        first = report.markdown.splitlines()[0].lstrip("# ")
        print(f"report: {args.output} ({len(report.markdown):,} characters) — {first}")
    else:
        sys.stdout.write(report.markdown)
    if args.check and not report.passed:
        for gate in report.gates:
            if not gate.passed:
                print(f"gate failed: {gate.name}: {gate.detail}", file=sys.stderr)
        return 1
    return 0
