"""Every task's metrics on weighted rows, and the bootstrap built on them.

Ground shared by the evaluate stage (intervals, slices), the PR report (the paired base-vs-PR
comparison) and the drift check; `score` is the one entry point. Weights are what makes the
bootstrap fast: a resample of n rows is the same rows with integer counts, so B resamples are
one (B, n) matrix and each metric is a handful of matrix operations; unit weights give the plain
test-set metrics. Scoring two models with the SAME weight matrix is the paired bootstrap: the
noise of the test set cancels in the difference.

The test set is one source of noise; training is the other: another seed or another 95 % of the
training rows gives a genuinely different model, which the bootstrap of the test rows cannot
see. The evaluate stage measures that spread by refitting (`training_noise`), and a difference is
called real only when it exceeds both, at a level that holds for all gated metrics at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from gitops_ml.metric_registry import (
    UNBOUNDED,
    ConfusionTally,
    ErrorTally,
    Tally,
    metric,
    metric_sets,
)
from gitops_ml.tasks import Task, task_spec

PROBABILITY_EPS = float(np.finfo(np.float64).eps)  # log-loss clipping, as scikit-learn does
BOOTSTRAP_CHUNK_CELLS = 1_000_000  # resample × row values scored at once (~8 MB per matrix)
COST = "cost_per_1000"
FAMILY_ERROR = 0.05  # chance that randomness alone is called real in ANY of the gated metrics
CI_LEVEL = 1.0 - FAMILY_ERROR  # one interval on its own (metrics/evaluate.json `ci95`)


def _weight_matrix(weights: np.ndarray) -> np.ndarray:
    return np.atleast_2d(np.asarray(weights, dtype=np.float64))


def tally(y: np.ndarray, p: np.ndarray, weights: np.ndarray, threshold: float) -> Tally:
    """The weighted sums every binary metric is a formula of, for each row of `weights`
    (shape (B, n)): one pass over the scores serves all resamples at once."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    w = _weight_matrix(weights)
    pos = y.astype(np.float64)
    neg = 1.0 - pos
    predicted = (p >= threshold).astype(np.float64)
    tp = w @ (pos * predicted)
    fp = w @ (neg * predicted)
    fn = w @ (pos * (1.0 - predicted))
    tn = w.sum(axis=1) - tp - fp - fn
    p_true = np.where(y == 1, p, 1.0 - p)
    row_log_loss = -np.log(np.clip(p_true, PROBABILITY_EPS, 1 - PROBABILITY_EPS))

    # Rank sums: group rows by distinct score, highest first.
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    w_sorted = w[:, order]
    pos_per_score = np.add.reduceat(w_sorted * pos[order], starts, axis=1)
    neg_per_score = np.add.reduceat(w_sorted * neg[order], starts, axis=1)
    tp_cum = np.cumsum(pos_per_score, axis=1)
    fp_cum = np.cumsum(neg_per_score, axis=1)
    # A positive beats every negative scored strictly lower, and ties half of those level.
    neg_lower = (fp + tn)[:, None] - fp_cum
    precision_at = np.divide(
        tp_cum, tp_cum + fp_cum, out=np.zeros_like(tp_cum), where=(tp_cum + fp_cum) > 0
    )
    return Tally(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        log_loss=w @ row_log_loss,
        squared_error=w @ (p - pos) ** 2,
        ranked_pairs=(pos_per_score * (neg_lower + 0.5 * neg_per_score)).sum(axis=1),
        precision_area=(pos_per_score * precision_at).sum(axis=1),
    )


def confusion_tally(
    y: np.ndarray, probabilities: np.ndarray, weights: np.ndarray, classes: Sequence[str]
) -> ConfusionTally:
    """The weighted confusion matrix (B, k, k) and log loss (B,) for each row of `weights`; `y`
    holds class indices, `probabilities` (n, k) columns in `classes` order, and the predicted
    class is the most probable one (the first among ties, as scikit-learn's predict)."""
    y = np.asarray(y, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    w = _weight_matrix(weights)
    k = probabilities.shape[1]
    cell = y * k + np.argmax(probabilities, axis=1)
    # Sum the weights per confusion cell: group rows by cell, one reduceat for all resamples.
    order = np.argsort(cell, kind="stable")
    sorted_cell = cell[order]
    starts = np.flatnonzero(np.r_[True, sorted_cell[1:] != sorted_cell[:-1]])
    confusion = np.zeros((w.shape[0], k * k))
    if len(cell):
        confusion[:, sorted_cell[starts]] = np.add.reduceat(w[:, order], starts, axis=1)
    p_true = probabilities[np.arange(len(y)), y]
    row_log_loss = -np.log(np.clip(p_true, PROBABILITY_EPS, 1 - PROBABILITY_EPS))
    return ConfusionTally(
        confusion=confusion.reshape(w.shape[0], k, k),
        log_loss=w @ row_log_loss,
        classes=tuple(classes) or tuple(str(i) for i in range(k)),
    )


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The median of `values` under each row of `weights` (B, n): for integer weights exactly
    np.median of the rows repeated that often (the mean of the two middle values for an even
    count). One sort serves all rows; NaN for a row of zero weight."""
    w = _weight_matrix(weights)
    if not len(values):
        return np.full(w.shape[0], np.nan)
    order = np.argsort(values, kind="stable")
    ordered = np.asarray(values, dtype=np.float64)[order]
    cumulative = np.cumsum(w[:, order], axis=1)
    half = cumulative[:, -1:] / 2
    last = len(order) - 1
    lower = np.minimum((cumulative < half).sum(axis=1), last)  # first reaching half the weight
    upper = np.minimum((cumulative <= half).sum(axis=1), last)  # first passing it
    return np.where(half[:, 0] > 0, (ordered[lower] + ordered[upper]) / 2, np.nan)


def error_tally(y: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> ErrorTally:
    """The weighted error and target sums (B,) every regression metric is a formula of."""
    y = np.asarray(y, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - y
    w = _weight_matrix(weights)
    centered = y - (y.mean() if len(y) else 0.0)
    return ErrorTally(
        weight=w.sum(axis=1),
        squared_error=w @ error**2,
        absolute_error=w @ np.abs(error),
        target=w @ centered,
        target_squared=w @ centered**2,
        median_absolute_error=weighted_median(np.abs(error), w),
    )


# Per task: (targets, predictions, weights (B, n), threshold, classes) → the task's tally.
TALLIES: dict[Task, Callable[[np.ndarray, np.ndarray, np.ndarray, float, Sequence[str]], Any]] = {
    "binary": lambda y, p, w, threshold, _: tally(y, p, w, threshold),
    "multiclass": lambda y, p, w, _, classes: confusion_tally(y, p, w, classes),
    "regression": lambda y, p, w, _threshold, _classes: error_tally(y, p, w),
}


def score(
    task: str,
    y: np.ndarray,
    predictions: np.ndarray,
    weights: np.ndarray,
    names: Iterable[str] | None = None,
    *,
    threshold: float = 0.5,
    classes: Sequence[str] = (),
    costs: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """The metrics `names` (default: the task's test metrics) of `task` for each row of
    `weights` (shape (B, n)); returns arrays of shape (B,).

    `y` and `predictions` are what gitops_ml.model_view.target_vector and gitops_ml.tasks.
    predictions give: binary 0/1 and P(positive), scored at `threshold`; multiclass class
    indices and (n, k) probabilities in `classes` order; regression values and ŷ. Each metric
    is the registry's formula of the task's tally, equal to scikit-learn's with sample weights:
    ROC AUC is the Mann-Whitney statistic (ties count one half), PR AUC average precision, the
    median absolute error np.median of the resampled rows. Undefined values (a resample
    without one class) are NaN. With `costs` (false positive, false negative) the cost per
    1,000 rows at `threshold` is added, for a task with a cost view.
    """
    sets = metric_sets(task, classes)
    sums = TALLIES[task_spec(task).name](y, predictions, weights, threshold, classes)
    out = {name: sets.formula(name)(sums) for name in (sets.test if names is None else names)}
    if costs is not None:
        if sets.cost is None:
            raise ValueError(f"a {task} model has no cost view")
        out[COST] = sets.cost(sums, costs)
    return out


def point_metrics(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float = 0.5,
    *,
    task: str = "binary",
    classes: Sequence[str] = (),
) -> dict[str, float]:
    """The point estimates of the task's test metrics on the test set (every row once)."""
    values = score(task, y, p, np.ones((1, len(y))), threshold=threshold, classes=classes)
    return {name: float(value[0]) for name, value in values.items()}


def bootstrap_weights(n_rows: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, n_rows) counts: how often each row is drawn in each resample of n_rows rows."""
    draws = rng.integers(0, n_rows, size=(samples, n_rows))
    offsets = (np.arange(samples) * n_rows)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=samples * n_rows).reshape(
        samples, n_rows
    )


def weight_chunks(
    n_rows: int,
    samples: int,
    seed: int,
    max_cells: int = BOOTSTRAP_CHUNK_CELLS,
    counts: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """`samples` seeded resamples in chunks of at most `max_cells` values, to bound memory; the
    draws come from one generator in order, so results do not depend on the chunk size.

    With `counts`, row i stands for counts[i] identical rows (a histogram of scores and labels):
    a resample redraws all of them at once as multinomial counts, the same as the row bootstrap
    of the rows the histogram holds, at O(len(counts)) per resample."""
    rng = np.random.default_rng(seed)
    chunk = max(1, max_cells // max(n_rows, 1))
    if counts is not None:
        total = int(np.sum(counts))
        shares = np.asarray(counts, dtype=np.float64) / max(total, 1)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        if counts is None:
            yield bootstrap_weights(n_rows, size, rng)
        else:
            yield rng.multinomial(total, shares, size=size)


def percentile_intervals(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    samples: int,
    seed: int,
    names: Iterable[str] | None = None,
    counts: np.ndarray | None = None,
    max_cells: int = BOOTSTRAP_CHUNK_CELLS,
    *,
    task: str = "binary",
    classes: Sequence[str] = (),
) -> dict[str, dict[str, float]]:
    """Percentile CI_LEVEL intervals of the metrics `names` (default: the task's test metrics)
    over `samples` seeded resamples of the rows (with `counts`: of the rows a histogram holds,
    see `weight_chunks`). A metric undefined in every resample gets no interval."""
    names = metric_sets(task, classes).test if names is None else tuple(names)
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for weights in weight_chunks(len(y), samples, seed, max_cells, counts):
        part = score(task, y, p, weights, names, threshold=threshold, classes=classes)
        for name in names:
            values[name].append(part[name])
    tail = 50.0 * (1.0 - CI_LEVEL)
    intervals: dict[str, dict[str, float]] = {}
    for name in names:
        stacked = np.concatenate(values[name]) if values[name] else np.array([np.nan])
        if np.all(np.isnan(stacked)):
            continue
        low, high = np.nanpercentile(stacked, [tail, 100.0 - tail])
        intervals[name] = {"low": float(low), "high": float(high)}
    return intervals


def histogram_rows(
    negatives: np.ndarray, positives: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A histogram of scores by label as weighted rows (labels, bin midpoints, counts), empty
    bins left out: the metrics of these rows are those of the binned scores (scores within one
    bin tie; a threshold on a bin edge splits the bins exactly)."""
    mid = (np.asarray(edges[:-1], dtype=np.float64) + np.asarray(edges[1:], dtype=np.float64)) / 2
    counts = np.concatenate([negatives, positives]).astype(np.int64)
    labels = np.repeat([0, 1], len(mid))
    scores = np.concatenate([mid, mid])
    kept = counts > 0
    return labels[kept], scores[kept], counts[kept]


def family_level(tests: int) -> float:
    """Confidence level of each interval so that `tests` of them together are wrong with
    probability at most FAMILY_ERROR (Bonferroni): 95 % for one gated metric, 98.3 % for three."""
    return 1.0 - FAMILY_ERROR / max(tests, 1)


def z_value(level: float) -> float:
    """The two-sided normal quantile of `level` (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass(frozen=True)
class Difference:
    """PR minus base for one metric, with the interval of that difference at `level`.

    The interval holds the test-set noise (bootstrap) and, when the evaluate stage measured it,
    the training noise: `training` is the half-width the latter adds, in quadrature. `detectable`
    is the half-width of the whole interval: the smallest difference these two models on this
    test set can call real. `paired` says whether both models were scored on the same rows
    (paired bootstrap) or the interval was combined from two separate ones (unpaired).
    """

    delta: float
    low: float
    high: float
    paired: bool
    level: float = CI_LEVEL
    training: float = 0.0

    @property
    def real(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0

    @property
    def detectable(self) -> float:
        return (self.high - self.low) / 2

    def within(self, bounds: tuple[float, float], base: float) -> Difference:
        """The interval cut to what PR − base can be when the metric lies within `bounds`: a
        few refits (Student's t of one degree of freedom) or rows can widen it past that. 0 is
        always possible, so whether the difference is real never changes."""
        if not math.isfinite(base):
            return self
        low, high = max(self.low, bounds[0] - base), min(self.high, bounds[1] - base)
        return replace(self, low=low, high=high)


def t_value(level: float, df: float) -> float:
    """The two-sided Student's t quantile of `level` with `df` degrees of freedom (2.78 for
    0.95 and 4): the multiplier of a standard deviation estimated from df + 1 values."""
    # scipy.special's inverse of the t distribution, which scipy.stats's t.ppf calls: the
    # report's process then never imports scipy.stats (0.6 s of CPU). Serving never scores.
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + level / 2))


def with_training(difference: Difference, sd: float | None, df: float | None = None) -> Difference:
    """`difference` with the training noise of standard deviation `sd` added to each side of its
    interval in quadrature (independent sources add variances); unchanged for None or 0.

    `sd` is estimated from a handful of refits, so it is itself noisy: with `df` (the refits
    behind it, minus one) its multiplier is Student's t rather than the normal quantile, which
    keeps the level honest when five refits happen to agree more than trainings do."""
    if not sd:
        return difference
    extra = (z_value(difference.level) if df is None else t_value(difference.level, df)) * sd
    d = difference
    low = d.delta - float(np.hypot(d.delta - d.low, extra))
    high = d.delta + float(np.hypot(d.high - d.delta, extra))
    return Difference(d.delta, low, high, d.paired, d.level, extra)


def difference_sd(
    base: Mapping[str, float] | None, pr: Mapping[str, float] | None
) -> dict[str, float]:
    """Training-noise standard deviation of PR − base per metric: two independent trainings, so
    the variances add. When one side did not measure it (an older base), the other side's
    spread stands in for both (the same procedure retrained is the null being tested)."""
    base, pr = base or {}, pr or {}
    out: dict[str, float] = {}
    for name in sorted(set(base) | set(pr)):
        a = base.get(name, pr.get(name, 0.0))
        b = pr.get(name, a)
        out[name] = float(np.hypot(a, b))
    return out


def paired_differences(
    y: np.ndarray,
    p_base: np.ndarray,
    p_pr: np.ndarray,
    thresholds: tuple[float, float],
    samples: int,
    seed: int,
    costs: tuple[float, float] | None = None,
    max_cells: int = BOOTSTRAP_CHUNK_CELLS,
    *,
    level: float = CI_LEVEL,
    training_sd: Mapping[str, float] | None = None,
    training_df: float | None = None,
    task: str = "binary",
    classes: Sequence[str] = (),
) -> dict[str, Difference]:
    """Paired bootstrap of PR − base for every test metric of `task` (and the cost, given
    `costs`).

    Both models score the same resampled rows, each at its own decision threshold (base, PR;
    binary only); the interval is the central `level` percentile range of the per-resample
    differences, widened by the training noise `training_sd` (per metric, see
    `difference_sd`) when given.
    """

    def scored(p: np.ndarray, weights: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
        return score(task, y, p, weights, threshold=threshold, classes=classes, costs=costs)

    ones = np.ones((1, len(y)))
    base_point = scored(p_base, ones, thresholds[0])
    pr_point = scored(p_pr, ones, thresholds[1])
    deltas: dict[str, list[np.ndarray]] = {name: [] for name in pr_point}
    for weights in weight_chunks(len(y), samples, seed, max_cells):
        base = scored(p_base, weights, thresholds[0])
        pr = scored(p_pr, weights, thresholds[1])
        for name in deltas:
            deltas[name].append(pr[name] - base[name])
    tail = 50.0 * (1.0 - level)
    out: dict[str, Difference] = {}
    for name, parts in deltas.items():
        low, high = np.nanpercentile(np.concatenate(parts), [tail, 100.0 - tail])
        delta = float(pr_point[name][0] - base_point[name][0])
        test_only = Difference(delta, float(low), float(high), paired=True, level=level)
        widened = with_training(test_only, (training_sd or {}).get(name), training_df)
        out[name] = widened.within(metric(name).bounds, float(base_point[name][0]))
    return out


def unpaired_difference(
    old: float,
    new: float,
    old_interval: tuple[float, float],
    new_interval: tuple[float, float],
    *,
    level: float = CI_LEVEL,
    training_sd: float | None = None,
    training_df: float | None = None,
    bounds: tuple[float, float] = UNBOUNDED,
) -> Difference:
    """PR − base from two independent CI_LEVEL intervals: the half-widths add in quadrature,
    scaled to `level` as normal intervals scale, then the training noise is added.

    Wider than a paired interval (the test-set noise of both sides adds up instead of
    cancelling): the fallback when the two models were not scored on the same rows.
    """
    half = float(
        np.hypot((old_interval[1] - old_interval[0]) / 2, (new_interval[1] - new_interval[0]) / 2)
    ) * (z_value(level) / z_value(CI_LEVEL))
    delta = new - old
    test_only = Difference(delta, delta - half, delta + half, paired=False, level=level)
    return with_training(test_only, training_sd, training_df).within(bounds, old)
