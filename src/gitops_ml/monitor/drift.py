"""drift: compare a window of production data with the reference profile, in bounded memory.

Rows stream through accumulators that keep only counts on the profile's bins and quantile grid,
so memory does not grow with the window. A feature drifts only when its change is both
statistically significant (Benjamini–Hochberg adjusted p < alpha) and large (PSI, missing-rate
change or unseen-category share over the warn/alert thresholds): on a million rows a test alone
flags everything, and on a hundred rows an effect size alone is noise.

Exit codes: 0 checked (no drift, or drift without --fail-on-drift); 1 drift found with
--fail-on-drift; 2 bad input (UserError); 3 not enough data with --fail-on-drift.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import traceback
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.cluster import joblib_backend
from gitops_ml.config import DriftParams, load_params
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.monitor import stats
from gitops_ml.monitor.findings import (
    LEVELS,
    SEVERITY,
    Chart,
    Distribution,
    DriftResult,
    FeatureFinding,
    MissingRates,
    PerformanceFinding,
    PredictionFinding,
    ProbabilityMean,
    Reference,
    Verdict,
)
from gitops_ml.monitor.outcomes import (
    JoinedBucket,
    OutcomeError,
    OutcomeJoin,
    Spill,
    join_bucket,
    prediction_columns,
    spill_outcomes,
)
from gitops_ml.monitor.performance import performance_accumulator, performance_finding
from gitops_ml.monitor.profile import (
    ProfileError,
    cell_index,
    cell_to_bin,
    count_categories,
    load_profile,
)
from gitops_ml.monitor.readers import (
    MAX_SKIPPED_EXAMPLES,
    SUPPORTED,
    Chunk,
    ModelScorer,
    expand_sources,
    iter_chunks,
    no_rows,
    window_table,
)
from gitops_ml.monitor.watched import watch, watched_column
from gitops_ml.monitor.windows import (
    Source,
    Window,
    WindowError,
    is_url,
    parse_duration,
    parse_since,
    parse_window,
    source_size,
    window_files,
)

MAX_UNSEEN_NAMES = 10_000  # distinct unseen categories remembered; more are pooled
PARTS_PER_WORKER = 4  # a window is cut into this many parts per worker: a slow one waits less
# A worker process costs about a second of CPU to start (its imports): with `workers: -1`, each
# one started must have at least this many bytes of the window's files to read.
MIN_BYTES_PER_WORKER = 16 * 2**20
EXIT_DRIFT = 1
EXIT_NOT_ENOUGH_DATA = 3


class NumericAccumulator:
    """Counts on the reference's fine grid, the missing count and the distance beyond its range."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.grid = np.asarray(reference["grid"], dtype=np.float64)
        self.cells = np.zeros(len(self.grid) + 1, dtype=np.int64)
        self.sums = np.zeros(len(self.grid) + 1, dtype=np.float64)
        self.missing = 0
        self.excess = 0.0  # summed distance of values beyond the reference's min and max

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        finite = values[~np.isnan(values)]
        self.missing += len(values) - len(finite)
        index = cell_index(self.grid, finite)
        self.cells += np.bincount(index, minlength=len(self.cells))
        self.sums += np.bincount(index, weights=finite, minlength=len(self.cells))
        low, high = self.grid[0], self.grid[-1]
        self.excess += float(np.sum(low - finite[finite < low]))
        self.excess += float(np.sum(finite[finite > high] - high))

    def merge(self, other: NumericAccumulator) -> None:
        self.cells += other.cells
        self.sums += other.sums
        self.missing += other.missing
        self.excess += other.excess

    @property
    def count(self) -> int:
        return int(self.cells.sum())


class CategoricalAccumulator:
    """Counts of the profiled categories, of unseen ones (bounded), and of missing values."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.known = dict.fromkeys(reference["categories"], 0)
        self.unseen: dict[str, int] = {}
        self.unseen_pooled = 0
        self.missing = 0

    def update(self, values: Any) -> None:
        counts, missing = count_categories(values)
        self.missing += missing
        self._add(counts)

    def merge(self, other: CategoricalAccumulator) -> None:
        """Exact, unseen names included, while each part met fewer than MAX_UNSEEN_NAMES of
        them (beyond, a name another part pooled stays pooled; the unseen count stays exact)."""
        self.missing += other.missing
        self._add(other.known)
        self._add(other.unseen)
        self.unseen_pooled += other.unseen_pooled

    def _add(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            if name in self.known:
                self.known[name] += n
            elif name in self.unseen or len(self.unseen) < MAX_UNSEEN_NAMES:
                self.unseen[name] = self.unseen.get(name, 0) + n
            else:
                self.unseen_pooled += n

    @property
    def unseen_count(self) -> int:
        return sum(self.unseen.values()) + self.unseen_pooled

    @property
    def count(self) -> int:
        return sum(self.known.values()) + self.unseen_count


ColumnAccumulator = NumericAccumulator | CategoricalAccumulator


def column_accumulator(reference: dict[str, Any]) -> ColumnAccumulator:
    """The accumulator of a profiled column of its kind (numeric or categorical)."""
    if reference["kind"] == "numeric":
        return NumericAccumulator(reference)
    return CategoricalAccumulator(reference)


def distribution(
    reference: dict[str, Any], acc: ColumnAccumulator, settings: DriftParams
) -> Distribution:
    """How a column's window compares with its reference, by its kind."""
    if isinstance(acc, NumericAccumulator):
        return numeric_distribution(reference, acc, settings)
    return categorical_distribution(reference, acc, settings)


class WindowAccumulator:
    """Everything the check needs from a window, updated chunk by chunk."""

    def __init__(
        self, profile: dict[str, Any], contract: Contract, scorer: ModelScorer | None = None
    ) -> None:
        self.profile = profile
        self.scorer = scorer
        self.rows = 0
        self.features = {ref["name"]: column_accumulator(ref) for ref in profile["features"]}
        self.score = column_accumulator(profile["score"]) if profile.get("score") else None
        self.contract = contract
        self.performance = performance_accumulator(contract, profile)
        self.scored_rows = 0  # rows with a model score (logged or from --model)
        self.probability_sums = np.zeros(len(contract.classes))  # multiclass, per class
        self.probability_rows = 0
        self.label_columns = 0  # chunks that carried a label column at all
        self.labelled_rows = 0  # rows with a known outcome, scored or not
        self.skipped_lines = 0  # torn log lines, skipped (see readers._log_tables)
        self.skipped_examples: list[str] = []

    def update(self, chunk: Chunk) -> np.ndarray | None:
        """Count the chunk; returns its predictions (logged or scored), None without them."""
        self.rows += chunk.rows
        self.skipped_lines += chunk.skipped_lines
        room = MAX_SKIPPED_EXAMPLES - len(self.skipped_examples)
        self.skipped_examples += chunk.skipped_examples[: max(room, 0)]
        for name, values in chunk.columns.items():
            if name in self.features:
                self.features[name].update(values)
        if chunk.labels is not None:
            self.label_columns += 1
            self.labelled_rows += int(np.count_nonzero(~np.isnan(chunk.labels)))
        predictions = chunk.predictions
        if predictions is None and self.scorer is not None and chunk.rows:
            predictions = self.scorer.score(chunk.frame)
        if predictions is None:
            return None
        self.scored_rows += len(predictions)
        if self.score is not None:
            self.score.update(watched_column(predictions, self.contract))
        if watch(self.contract).per_class:
            complete = ~np.isnan(predictions).any(axis=1)
            self.probability_sums += predictions[complete].sum(axis=0)
            self.probability_rows += int(complete.sum())
        if chunk.labels is not None:
            self.performance.update(predictions, chunk.labels)
        return predictions

    def merge(self, other: WindowAccumulator) -> None:
        """Add the accumulator of the window's next part: the result is what one accumulator
        updated with this part's chunks and then the other's holds (floating-point sums up to
        rounding)."""
        self.rows += other.rows
        self.skipped_lines += other.skipped_lines
        room = MAX_SKIPPED_EXAMPLES - len(self.skipped_examples)
        self.skipped_examples += other.skipped_examples[: max(room, 0)]
        for name, acc in self.features.items():
            acc.merge(other.features[name])  # type: ignore[arg-type]
        if self.score is not None and other.score is not None:
            self.score.merge(other.score)  # type: ignore[arg-type]
        self.performance.merge(other.performance)
        self.scored_rows += other.scored_rows
        self.probability_sums += other.probability_sums
        self.probability_rows += other.probability_rows
        self.label_columns += other.label_columns
        self.labelled_rows += other.labelled_rows

    def probability_means(self) -> dict[str, ProbabilityMean] | None:
        """Each class's mean probability, reference and current (multiclass, when scored)."""
        reference = (self.profile.get("score") or {}).get("probability_means")
        if not reference or not self.probability_rows:
            return None
        current = self.probability_sums / self.probability_rows
        return {
            name: ProbabilityMean(float(reference[name]), float(value))
            for name, value in zip(self.contract.classes, current, strict=True)
            if name in reference
        }

    def unscored_reason(self) -> str | None:
        """Why model scores are unavailable, or None when the window has them."""
        if self.scored_rows:
            return None
        return "no model scores: the window logs none and no --model was given to score it"

    def performance_reason(self) -> str | None:
        """Why performance cannot be measured at all, or None when some rows allow it."""
        target = (self.profile.get("target") or {}).get("name") or "target"
        if self.unscored_reason():
            return self.unscored_reason()
        if not self.label_columns:
            return f"no labels: the window has no {target!r} column (or 'label' in the log)"
        if not self.labelled_rows:
            return f"no labelled rows: every {target!r} value in the window is missing"
        if not self.performance.count:
            return "no row has both a model score and a known outcome"
        return None


# ------------------------------------------------------------------------------------------------
# From counts to findings
# ------------------------------------------------------------------------------------------------


def _level(value: float, warn: float, alert: float) -> int:
    if not np.isfinite(value):
        return 0
    return 2 if value >= alert else 1 if value >= warn else 0


def _missing(ref: dict[str, Any], cur_missing: int, cur_rows: int) -> MissingRates:
    ref_rows = ref["count"] + ref["missing"]
    return MissingRates(
        ref["missing"] / ref_rows if ref_rows else 0.0,
        cur_missing / cur_rows if cur_rows else 0.0,
        stats.two_proportion_p(ref["missing"], ref_rows, cur_missing, cur_rows),
    )


def numeric_distribution(
    ref: dict[str, Any], acc: NumericAccumulator, settings: DriftParams
) -> Distribution:
    """PSI over deciles + missing bin, grid KS, normalised W1, JS and the missing-rate test."""
    grid = acc.grid
    edges = np.asarray(ref["bin_edges"], dtype=np.float64)
    cur_bins = np.bincount(cell_to_bin(grid, edges), weights=acc.cells, minlength=len(edges) + 1)
    ref_vec = np.append(np.asarray(ref["bin_counts"], dtype=np.float64), ref["missing"])
    cur_vec = np.append(cur_bins, acc.missing)
    n_cur = acc.count
    missing = _missing(ref, acc.missing, n_cur + acc.missing)
    statistic = p_distribution = wasserstein = None
    p_value = missing.p
    if n_cur >= settings.min_feature_rows:
        ref_cells = np.asarray(ref["grid_counts"], dtype=np.float64)
        statistic, p_distribution = stats.ks_from_grid(ref_cells, acc.cells, ref["count"], n_cur)
        w1 = stats.wasserstein_from_grid(
            grid, ref_cells, np.asarray(ref["grid_sums"]), acc.cells, acc.sums, acc.excess
        )
        wasserstein = w1 / ref["std"] if ref["std"] > 0 else None
        # Two tests per feature (values, missing rate): Bonferroni inside the feature.
        p_value = min(1.0, 2.0 * min(p_distribution, missing.p))
    return Distribution(
        kind="numeric",
        rows=n_cur + acc.missing,
        test="ks",
        statistic=statistic,
        p_distribution=p_distribution,
        p_value=p_value,
        psi=stats.psi(ref_vec, cur_vec, settings.epsilon),
        js=stats.js_distance(ref_vec, cur_vec),
        wasserstein_norm=wasserstein,
        chart=_chart(bin_labels(edges), ref_vec, cur_vec),
        mean_ref=ref["mean"],
        mean_cur=float(acc.sums.sum()) / n_cur if n_cur else None,
        missing=missing,
    )


def categorical_distribution(
    ref: dict[str, Any], acc: CategoricalAccumulator, settings: DriftParams
) -> Distribution:
    """Chi-square homogeneity over categories + other + missing, PSI, JS and unseen share."""
    names = list(ref["categories"])
    ref_vec = np.array([*(ref["categories"][n] for n in names), ref["other"], ref["missing"]])
    cur_vec = np.array([*(acc.known[n] for n in names), acc.unseen_count, acc.missing])
    statistic, p_value = stats.chi2_homogeneity(ref_vec, cur_vec)
    top_unseen = sorted(acc.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return Distribution(
        kind="categorical",
        rows=acc.count + acc.missing,
        test="chi2",
        statistic=statistic,
        p_distribution=p_value,
        p_value=p_value,
        psi=stats.psi(ref_vec, cur_vec, settings.epsilon),
        js=stats.js_distance(ref_vec, cur_vec),
        wasserstein_norm=None,
        chart=_chart([*names, "(other)"], ref_vec, cur_vec),
        unseen=acc.unseen_count / acc.count if acc.count else 0.0,
        unseen_top=dict(top_unseen),
        missing=_missing(ref, acc.missing, acc.count + acc.missing),
    )


def _chart(labels: list[str], ref_vec: np.ndarray, cur_vec: np.ndarray) -> Chart:
    """Shares of all rows per bin; the last entry of each vector is the missing bin."""
    keep = len(labels) + (1 if ref_vec[-1] or cur_vec[-1] else 0)
    return Chart(
        labels=[*labels, "(missing)"][:keep],
        reference=stats.proportions(ref_vec)[:keep].tolist(),
        current=stats.proportions(cur_vec)[:keep].tolist(),
    )


def bin_labels(edges: np.ndarray) -> list[str]:
    """Short x-axis labels for the decile bins: ≤e0, ≤e1, …, >e_last."""
    if len(edges) == 0:
        return ["all"]
    return [*(f"≤{_short(e)}" for e in edges), f">{_short(edges[-1])}"]


def _short(value: float) -> str:
    return f"{value:.3g}"


def grade(distribution: Distribution, adjusted_p: float, settings: DriftParams) -> Distribution:
    """The level: significant (adjusted p < alpha) AND large; 'large' is the worst effect size."""
    size = max(
        _level(distribution.psi, settings.psi_warn, settings.psi_alert),
        _level(abs(distribution.missing.change), settings.missing_warn, settings.missing_alert),
        _level(distribution.unseen or 0.0, settings.unseen_warn, settings.unseen_alert),
    )
    significant = bool(adjusted_p < settings.alpha)
    return replace(
        distribution,
        p_adjusted=adjusted_p,
        significant=significant,
        level=LEVELS[size] if significant else "ok",
    )


def prediction_finding(
    profile: dict[str, Any],
    acc: ColumnAccumulator | None,
    settings: DriftParams,
    reason: str | None = None,
    watched: str = "score",
) -> PredictionFinding:
    """Drift of the model's predictions (`watched`: the score, the predicted value or the
    predicted class, see monitor.watched) against the training predictions in the profile."""
    if acc is None:
        why = "the profile holds no reference predictions (built without a model)"
        return PredictionFinding("not_computed", why, watched=watched)
    if reason is not None or acc.count == 0:
        why = reason or "no model predictions in the window"
        return PredictionFinding("not_computed", why, watched=watched)
    compared = distribution(profile["score"], acc, settings)
    if acc.count < settings.min_rows:
        why = f"{acc.count} scored rows < min_rows {settings.min_rows}"
        return PredictionFinding("not_enough_data", why, compared, watched)
    assert compared.p_distribution is not None  # min_rows ≥ min_feature_rows: tested
    graded = grade(compared, compared.p_distribution, settings)
    return PredictionFinding(graded.level, None, graded, watched)


def feature_findings(window: WindowAccumulator, settings: DriftParams) -> list[FeatureFinding]:
    """Every profiled feature, graded with Benjamini–Hochberg over the testable ones."""
    findings: list[FeatureFinding] = []
    for ref in window.profile["features"]:
        compared = distribution(ref, window.features[ref["name"]], settings)
        findings.append(FeatureFinding(ref["name"], ref["type"], compared))
    testable = [
        i for i, f in enumerate(findings) if f.distribution.rows >= settings.min_feature_rows
    ]
    adjusted = stats.benjamini_hochberg([findings[i].distribution.p_value for i in testable])
    for index, p_adj in zip(testable, adjusted, strict=True):
        finding = findings[index]
        findings[index] = replace(
            finding, distribution=grade(finding.distribution, p_adj, settings)
        )
    return sorted(findings, key=_severity_key)


THRESHOLD_KEYS = (
    "alpha",
    "psi_warn",
    "psi_alert",
    "missing_warn",
    "missing_alert",
    "unseen_warn",
    "unseen_alert",
    "drift_share",
    "min_rows",
    "min_feature_rows",
    "performance_tolerance",
    "epsilon",
)


def evaluate_window(window: WindowAccumulator, settings: DriftParams) -> DriftResult:
    """The drift result from an accumulated window: findings, levels and verdict."""
    profile = window.profile
    findings = feature_findings(window, settings)
    prediction = prediction_finding(
        profile,
        window.score,
        settings,
        window.unscored_reason(),
        watch(window.contract).watched,
    )
    prediction = replace(prediction, probability_means=window.probability_means())
    performance = performance_finding(
        profile, window.contract, window.performance, settings, window.performance_reason()
    )
    verdict, reason = dataset_verdict(window.rows, findings, prediction, performance, settings)
    return DriftResult(
        verdict=verdict,
        reason=reason,
        rows=window.rows,
        features=findings,
        prediction=prediction,
        performance=performance,
        reference=Reference(profile["rows"], profile.get("model_sha256"), profile.get("metrics")),
        thresholds={key: getattr(settings, key) for key in THRESHOLD_KEYS},
        skipped_lines=window.skipped_lines,
        skipped_line_examples=list(window.skipped_examples),
    )


def _severity_key(finding: FeatureFinding) -> tuple[int, float, str]:
    return SEVERITY[finding.level], -float(finding.distribution.psi or 0.0), finding.name


def dataset_verdict(
    rows: int,
    findings: list[FeatureFinding],
    prediction: PredictionFinding,
    performance: PerformanceFinding,
    settings: DriftParams,
) -> tuple[Verdict, str]:
    """The documented rule, first match wins.

    1. fewer than `min_rows` rows → not_enough_data;
    2. any feature, the prediction or the performance at alert, or at least `drift_share` of the
       tested features at warn or above → drift;
    3. anything at warn → warn;
    4. otherwise → no_drift.
    """
    if rows < settings.min_rows:
        return "not_enough_data", f"{rows} rows < min_rows {settings.min_rows}"
    tested = [f for f in findings if f.level != "not_enough_data"]
    alerts = [f.name for f in tested if f.level == "alert"]
    flagged = [f.name for f in tested if f.level in ("warn", "alert")]
    extra = [("prediction", prediction.level), ("performance", performance.level)]
    reasons: list[str] = []
    if alerts:
        reasons.append(f"features at alert: {', '.join(alerts)}")
    if tested and len(flagged) / len(tested) >= settings.drift_share:
        reasons.append(
            f"{len(flagged)}/{len(tested)} features drift (≥ {settings.drift_share:.0%})"
        )
    reasons += [f"{label} drift at alert" for label, level in extra if level == "alert"]
    if reasons:
        return "drift", "; ".join(reasons)
    warned = flagged + [label for label, level in extra if level == "warn"]
    if warned:
        return "warn", f"at warn level: {', '.join(warned)}"
    return "no_drift", "no feature, prediction or performance change is both significant and large"


def check_drift(
    profile: dict[str, Any],
    contract: Contract,
    chunks: Iterable[Chunk],
    settings: DriftParams,
    scorer: ModelScorer | None = None,
) -> DriftResult:
    """Stream `chunks` through the accumulators and evaluate: the pure core of `gitops-ml drift`
    in one pass (the CLI maps parts of the window and merges them, see accumulate_window)."""
    return evaluate_window(accumulate(profile, contract, chunks, scorer), settings)


def accumulate(
    profile: dict[str, Any],
    contract: Contract,
    chunks: Iterable[Chunk],
    scorer: ModelScorer | None = None,
) -> WindowAccumulator:
    """`chunks` through one window accumulator."""
    window = WindowAccumulator(profile, contract, scorer)
    for chunk in chunks:
        window.update(chunk)
    return window


def accumulate_part(
    profile: dict[str, Any],
    contract: Contract,
    sources: Sequence[Source],
    chunk_rows: int,
    model: str | None = None,
    join: OutcomeJoin | None = None,
    part: int = 0,
) -> WindowAccumulator:
    """The map: one part of a window (some of its files, in order) through one accumulator,
    in whichever process joblib runs it. It returns counts, never rows; with `join` it also
    spills each line's id, time and prediction to the join's buckets. Without a model or a
    join Parquet is read one column at a time."""
    scorer = None if model is None else ModelScorer(model, contract)
    keys = join is not None
    chunks = iter_chunks(
        sources, contract, chunk_rows, scorer is not None or keys, keys, require_rows=False
    )
    window = WindowAccumulator(profile, contract, scorer)
    spill = None if join is None else Spill(join, "predictions", f"{part:05d}")
    for chunk in chunks:
        predictions = window.update(chunk)
        if spill is not None and chunk.ids is not None and chunk.logged_at is not None:
            spill.add(prediction_columns(chunk.ids, chunk.logged_at, predictions, contract))
    if spill is not None:
        spill.close()
    window.scorer = None  # an onnxruntime session stays in the process that made it
    return window


def in_parallel(tasks: list[Any], workers: int) -> list[Any]:
    """joblib's delayed `tasks`, run by `workers` processes at once (-1: one per core), results
    in task order. No backend is named here: a joblib.parallel_config around the check sends
    the same tasks elsewhere (a Ray cluster); a task's error is raised here as it was raised."""
    jobs = min(len(tasks), effective_n_jobs(workers))
    return list(Parallel(n_jobs=jobs, prefer="processes")(tasks))


def workers_for(sources: Sequence[Source], workers: int) -> int:
    """The workers a check starts: as many as asked, or for -1 one per core, but no more than
    the window's size pays for (a small window is read in this process)."""
    if workers != -1:
        return workers
    size = sum(source_size(source) for source in sources)
    return max(1, min(effective_n_jobs(-1), int(size // MIN_BYTES_PER_WORKER)))


def accumulate_window(
    profile: dict[str, Any],
    contract: Contract,
    sources: Sequence[Source],
    settings: DriftParams,
    workers: int,
    model: str | None = None,
    join: OutcomeJoin | None = None,
) -> WindowAccumulator:
    """Map and merge: the window's files cut into parts of about equal size, each part
    accumulated by `workers` processes at once, the parts merged in file order. The result is
    the single pass's (WindowAccumulator.merge), which one worker runs itself: one part, in
    this process. An error in any part (a corrupt file) is raised here as the reader raised it."""
    jobs = effective_n_jobs(workers)
    parts = file_parts(sources, 1 if jobs == 1 else PARTS_PER_WORKER * jobs)
    task = delayed(accumulate_part)
    done = in_parallel(
        [
            task(profile, contract, sources[part], settings.chunk_rows, model, join, number)
            for number, part in enumerate(parts)
        ],
        workers,
    )
    window = WindowAccumulator(profile, contract)
    for part in done:
        window.merge(part)
    if not window.rows:
        raise no_rows(sources, window.skipped_lines)
    return window


def spill_every_outcome(
    join: OutcomeJoin, paths: Sequence[Source], shown: list[str], contract: Contract, workers: int
) -> None:
    """The outcome files checked and spilled to the join's buckets, in parts of about equal
    size (as the window's files), `workers` parts at once."""
    files = [(n, path, name) for n, (path, name) in enumerate(zip(paths, shown, strict=True))]
    task = delayed(spill_outcomes)
    parts = file_parts(paths, PARTS_PER_WORKER * effective_n_jobs(workers))
    rows = in_parallel(
        [task(join, number, files[part], contract) for number, part in enumerate(parts)], workers
    )
    if not sum(rows):
        raise OutcomeError(f"{', '.join(shown)}: no outcome rows")


def join_outcomes(window: WindowAccumulator, join: OutcomeJoin, workers: int) -> JoinedBucket:
    """The reduce of the join: each bucket's predictions joined to its outcomes, `workers`
    buckets at once, their performance added to the window's; returns the join's counters."""
    task = delayed(join_bucket)
    done = in_parallel(
        [task(join, n, window.contract, window.profile) for n in range(join.buckets)], workers
    )
    joined = done[0]
    for bucket in done[1:]:
        joined.merge(bucket)
    window.performance.merge(joined.performance)
    window.labelled_rows += joined.joined
    window.label_columns += int(joined.joined > 0)
    return joined


def file_parts(paths: Sequence[Source], parts: int) -> list[slice]:
    """`paths` in order, cut into at most `parts` runs of about equal bytes (as slices)."""
    sizes = np.array([source_size(path) for path in paths], dtype=np.float64)
    middle = np.cumsum(sizes) - sizes / 2  # each file's middle byte in the window
    part = np.minimum((middle * parts / max(sizes.sum(), 1.0)).astype(np.int64), parts - 1)
    bounds = [0, *(np.flatnonzero(np.diff(part)) + 1).tolist(), len(paths)]
    return [slice(start, end) for start, end in itertools.pairwise(bounds)]


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=paths.PROFILE)
    parser.add_argument(
        "--current", required=True, help="CSV/Parquet/JSONL file, directory or glob ('*.parquet')"
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--since",
        default=None,
        help="only captured partitions (date=…/hour=…) of the last 7d, 36h, 2w (UTC)",
    )
    when.add_argument(
        "--window",
        default=None,
        help="only captured partitions in START..END, e.g. 2026-11-01..2026-11-07 (UTC)",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="outcomes (id, timestamp, label) to join to the logged predictions by id: a file, "
        "directory, glob or URL prefix (docs/monitoring.md)",
    )
    parser.add_argument(
        "--max-delay",
        default="30d",
        help="an outcome joins a prediction at most this long after it (default: %(default)s)",
    )
    parser.add_argument("--model", default=None, help="ONNX model to score rows without scores")
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        help="processes accumulating the window's files at once (default: drift.workers in "
        "params; -1 = one per core)",
    )
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--output-dir", default=paths.DRIFT_REPORT_DIR)
    parser.add_argument(
        "--save-window",
        default=None,
        metavar="FILE.parquet",
        help="also write the rows this check read, in the contract's columns and labelled "
        "(outcomes joined), as the table `gitops-ml retrain --window` takes",
    )
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 1 when drift is found (3 when there is not enough data)",
    )


def worker_count(text: str) -> int:
    """--workers: -1 (one per core) or a positive count."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count == -1 or count >= 1:
        return count
    raise argparse.ArgumentTypeError(f"{text!r}: use -1 (one per core) or a positive count")


class CheckFailed(UserError):
    """The check itself failed (exit 2): never reported as drift, whatever went wrong."""


def run(args: argparse.Namespace) -> int:
    """Exit 1 means drift and nothing else: every failure that is not a finding exits 2."""
    try:
        with joblib_backend() as cluster:
            if cluster is not None:
                print(f"drift: partitions on the Ray cluster at {cluster}")
            return _run(args)
    except UserError:
        raise
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise CheckFailed(f"{where}{exc.strerror or exc}") from None
    except Exception as exc:  # a bug, not a finding: say so, with the traceback for the report
        traceback.print_exc(file=sys.stderr)
        raise CheckFailed(
            f"the drift check failed unexpectedly ({type(exc).__name__}: {exc}); this is not "
            "a drift finding"
        ) from None


def _run(args: argparse.Namespace) -> int:
    contract = load_contract(args.contract)
    settings = DriftParams.from_params(load_params(args.params))
    profile = load_profile(args.profile, contract)
    with ExitStack() as stack:
        window = selected_window(args)
        if window is None and is_url(args.current):
            raise WindowError(
                f"--current {args.current}: a URL is read as a capture root; give --since 7d "
                "or --window START..END"
            )
        sources: Sequence[Source]
        if window is None:
            sources = expand_sources(args.current)
            shown = [_display_path(p) for p in sources]
        else:
            shown, sources = window_files(args.current, window, SUPPORTED)
        workers = workers_for(sources, settings.workers if args.workers is None else args.workers)
        join = None
        if args.labels is not None:
            delay = parse_duration(args.max_delay, "--max-delay")
            paths: Sequence[Source]
            if is_url(args.labels):
                named, paths = window_files(args.labels, None, SUPPORTED)
            else:
                local = expand_sources(args.labels)
                named, paths = [_display_path(p) for p in local], local
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gitops-ml-")))
            size = sum(source_size(source) for source in [*sources, *paths])
            join = OutcomeJoin.sized(scratch, size, delay, args.max_delay)
            spill_every_outcome(join, paths, named, contract, workers)
        code = _check(args, contract, settings, profile, sources, shown, workers, join)
        if args.save_window is not None:
            table = window_table(sources, contract, join)
            gio.write_parquet(args.save_window, table)
            print(f"window: {args.save_window} ({len(table)} rows)")
        return code


def selected_window(args: argparse.Namespace) -> Window | None:
    """The --since/--window time window, or None for the whole --current."""
    if args.since is not None:
        return parse_since(args.since, datetime.now(UTC))
    if args.window is not None:
        return parse_window(args.window)
    return None


def _check(
    args: argparse.Namespace,
    contract: Contract,
    settings: DriftParams,
    profile: dict[str, Any],
    sources: Sequence[Source],
    shown: list[str],
    workers: int,
    join: OutcomeJoin | None = None,
) -> int:
    from gitops_ml.monitor.report import (
        render_markdown,
        skipped_lines_text,
        write_github_outputs,
    )

    scorer = None
    if args.model is not None:
        scorer = ModelScorer(args.model, contract)
        expected = profile.get("model_sha256")
        if expected and expected != scorer.sha256:
            raise ProfileError(
                f"{args.model} (sha256 {scorer.sha256[:12]}…) is not the model the profile was "
                f"built for ({expected[:12]}…); rebuild the profile with `gitops-ml profile`"
            )
    window = accumulate_window(profile, contract, sources, settings, workers, args.model, join)
    joined = None
    if join is not None:
        joined = join_outcomes(window, join, workers).summary(window.rows, join.max_delay_text)
    result = replace(evaluate_window(window, settings), sources=shown, outcomes=joined)
    out_dir = Path(args.output_dir)
    markdown = render_markdown(result)
    try:
        gio.write_json(out_dir / "drift.json", result.to_json())
        gio.write_text(out_dir / "drift.md", markdown)
    except OSError as exc:
        raise CheckFailed(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    write_github_outputs(result, markdown, out_dir, os.environ)
    if result.skipped_lines:
        print(f"warning: {skipped_lines_text(result)}", file=sys.stderr)
    if joined is not None:
        print(f"outcomes: {joined.text()}")
    print(f"drift verdict: {result.verdict} ({result.reason}); report: {out_dir}/drift.md")
    if args.fail_on_drift and result.verdict == "drift":
        return EXIT_DRIFT
    if args.fail_on_drift and result.verdict == "not_enough_data":
        return EXIT_NOT_ENOUGH_DATA
    return 0


def _display_path(path: Path) -> str:
    """Relative to the working directory when possible: no absolute paths in artifacts."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name
