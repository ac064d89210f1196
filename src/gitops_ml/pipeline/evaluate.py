"""evaluate: test metrics with bootstrap intervals, cross-validation, a business view and plots.

A single test-set number cannot tell a reviewer whether a change helped or moved within noise,
so every test metric carries a seeded percentile-bootstrap 95 % interval, and the training window
is cross-validated. The bootstrap is vectorised (resampling = integer weights per row): 200
resamples of 10,000 rows take about 0.5 s, against about 13 s calling scikit-learn 1,600 times.

The metrics are the task's set (gitops_ml.metric_registry.metric_sets); what else the stage
writes per task is one row of VIEWS: binary the confusion counts and ROC, precision-recall,
calibration and confusion plots; multiclass the confusion matrix; regression predicted vs
actual and the residuals by decile of the prediction. The business view (costs of false
positives and negatives) is binary only: a regression or multiclass cost view is not built, and
configured costs are refused for those tasks rather than ignored.

The cost-minimising threshold is chosen on out-of-fold CV predictions of the training window and
only then scored on the test set: choosing it on the test set would flatter it.

The bootstrap sees only the test set's noise. Another seed or another 95 % of the training rows
gives a genuinely different model, so the stage also refits the model a few times and records
how much each test metric spreads (`training_noise`): the review's "real" has to beat both.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import ctypes.util
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, cpu_count, delayed
from sklearn.base import clone
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.cluster import joblib_backend
from gitops_ml.config import AUTO_JOBS, Costs, EvaluateParams, Jobs, ModelParams, load_params
from gitops_ml.contract import Column, Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.metric_registry import MetricSet, class_names, metric, metric_sets
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.pipeline.train import (
    ModelRows,
    build_model,
    fit_features,
    fit_pipeline,
    load_model,
    model_rows,
    training_columns,
)
from gitops_ml.scoring import BOOTSTRAP_CHUNK_CELLS, percentile_intervals, point_metrics, score
from gitops_ml.tasks import Task, predictions

DECIMALS = 6  # every float in the outputs, so reruns are byte-identical
THRESHOLD_GRID = np.round(np.arange(1, 100) / 100, 2)  # 0.01 … 0.99 for the best threshold
CURVE_GRID = np.round(np.arange(0, 101) / 100, 2)  # 0, 0.01 … 1.0 for the ROC and PR plots
CALIBRATION_BINS = 10
PREDICTION_BINS = 10  # deciles of a regression model's prediction (plots)
MIN_BOOTSTRAP_SAMPLES = 10
# File names inside --plots-dir (JSON plots: the file's one key is the plot's name).
ROC_FILE = Path(paths.ROC_PLOT).name
PR_FILE = Path(paths.PR_PLOT).name
CALIBRATION_FILE = Path(paths.CALIBRATION_PLOT).name
CONFUSION_FILE = Path(paths.CONFUSION_PLOT).name
PREDICTED_ACTUAL_FILE = Path(paths.PREDICTED_ACTUAL_PLOT).name
RESIDUALS_FILE = Path(paths.RESIDUALS_PLOT).name
# evaluate.jobs "auto" (concurrent_fits): the fits in flight may take this share of the machine's
# memory, each estimated at this many bytes per training row and model input column: the peak
# of one HistGradientBoosting fold fit on the 1M-row demo table (525 bytes per row for 35
# input columns: its rows of the model's view, the float64 matrix the one-hot encoding and
# the numbers are stacked into, the uint8 bins; tracemalloc, docs/performance.md).
FIT_MEMORY_SHARE = 0.5
FIT_BYTES_PER_VALUE = 15
# glibc's mallopt: allocations of at least MMAP_THRESHOLD bytes get a memory map of their own
# (see fixed_mmap_threshold).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024
# Below this many training rows the libraries, not the fits, make the peak, and a memory map per
# array costs more than it saves: 45 % more CPU for the demo's 2,400 rows with two refits side by
# side (page faults on every fresh map, the threads contending for the address space).
FIXED_MMAP_THRESHOLD_ROWS = 250_000


class EvaluateError(UserError, ValueError):
    """The data cannot be evaluated (e.g. a split with a single class)."""


@dataclass(frozen=True)
class Evaluation:
    """What the stage writes: `metrics` → metrics/evaluate.json, `plots` → one file per entry
    in plots/ (a mapping as JSON, a string as it is: the confusion CSV)."""

    metrics: dict[str, Any]
    plots: dict[str, dict[str, Any] | str]


Log = Callable[[str], None]


def _silent(_: str) -> None:
    return None


def _check_columns(frame: pd.DataFrame, contract: Contract, source: str) -> None:
    """Name the file and the columns rather than fail deep inside scikit-learn."""
    missing = [c for c in [*contract.feature_names, contract.target] if c not in frame.columns]
    if missing:
        raise EvaluateError(
            f"{source}: {len(missing)} column(s) of the data contract are missing: {missing}"
        )


def _check_classes(y: np.ndarray, contract: Contract, name: str) -> None:
    """A classifier is evaluated on every class: name the ones `y` lacks."""
    names = class_names(contract.task, contract.classes)
    found = np.unique(y)
    if names and len(found) < len(names):
        raise EvaluateError(
            f"{name}: the target needs every class of {list(names)} to be evaluated, found "
            f"{[names[i] for i in found]} in {len(y):,} rows"
        )


def bootstrap_intervals(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    samples: int,
    seed: int,
    max_cells: int = BOOTSTRAP_CHUNK_CELLS,
    *,
    task: str = "binary",
    classes: tuple[str, ...] = (),
) -> dict[str, dict[str, float]]:
    """Percentile 95 % intervals of every test metric of `task` over `samples` seeded
    resamples, drawn and scored in chunks of at most `max_cells` (resample × row) values
    (scoring.py)."""
    if samples < MIN_BOOTSTRAP_SAMPLES:
        raise EvaluateError(
            f"params.yaml: 'evaluate.bootstrap_samples' is {samples}; percentile intervals need "
            f"at least {MIN_BOOTSTRAP_SAMPLES} resamples (200 is a good default)"
        )
    return percentile_intervals(
        y, p, threshold, samples, seed, max_cells=max_cells, task=task, classes=classes
    )


# --------------------------------------------------------------------------------------------
# Cross-validation and the business view
# --------------------------------------------------------------------------------------------


def _check_folds(y: np.ndarray, contract: Contract, folds: int) -> None:
    """Folds need `folds` training rows (stratified folds: of every class)."""
    names = class_names(contract.task, contract.classes)
    if names:
        counts = np.bincount(y, minlength=len(names))
        short = [f"{counts[i]:,} rows of {names[i]!r}" for i in np.flatnonzero(counts < folds)]
    else:
        short = [f"{len(y):,} rows"] if len(y) < folds else []
    if short:
        raise EvaluateError(
            f"evaluate.cv_folds is {folds} but the training window has only {', '.join(short)}; "
            "lower evaluate.cv_folds, merge or drop a rare class, or add data"
        )


def cross_validate(
    train: ModelRows,
    contract: Contract,
    model_params: ModelParams,
    folds: int,
    seed: int,
    threshold: float = 0.5,
    jobs: Jobs = AUTO_JOBS,
) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
    """Mean ± std of the task's CV metrics over shuffled folds (stratified on the class for a
    classifier), plus the out-of-fold predictions and the targets. The folds are fitted at
    most `jobs` at once (see `concurrent_fits`)."""
    task, classes = contract.task, contract.classes
    features, y = train.features, train.target
    _check_classes(y, contract, "training window")
    _check_folds(y, contract, folds)
    template = build_model(model_params, contract)
    splitter = VIEWS[task].folds(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(features, y))
    at_once = concurrent_fits(jobs, folds, fit_bytes(features, contract, len(splits[0][0])))
    fold_predictions = _side_by_side(
        [
            delayed(fold_predictions_of)(template, features, y, fit_rows, holdout_rows, task)
            for fit_rows, holdout_rows in splits
        ],
        at_once,
    )
    out_of_fold = np.empty((len(y), *fold_predictions[0].shape[1:]), dtype=np.float64)
    names = metric_sets(task).cv
    scores: dict[str, list[float]] = {name: [] for name in names}
    for (_, holdout_idx), p in zip(splits, fold_predictions, strict=True):
        out_of_fold[holdout_idx] = p
        fold = score(
            task,
            y[holdout_idx],
            p,
            np.ones((1, len(p))),
            names,
            threshold=threshold,
            classes=classes,
        )
        for name in names:
            scores[name].append(float(fold[name][0]))
    summary = {
        name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in scores.items()
    }
    return summary, out_of_fold, y


def fold_predictions_of(
    template: Pipeline,
    features: pd.DataFrame,
    y: np.ndarray,
    fit_rows: np.ndarray,
    holdout_rows: np.ndarray,
    task: Task,
) -> np.ndarray:
    """One CV fold: `template` fitted on the `fit_rows` of the shared features, its
    predictions for the `holdout_rows`. Module-level with plain arguments, so any joblib
    backend can run it, in this process or another."""
    with threadpool_limits(limits=1):
        model = fit_pipeline(clone(template), features, y, fit_rows)
        return predictions(model, features.iloc[holdout_rows], task)


def refit_scores(
    features: pd.DataFrame,
    y: np.ndarray,
    rows: np.ndarray,
    test_features: pd.DataFrame,
    y_test: np.ndarray,
    contract: Contract,
    model_params: ModelParams,
    params: EvaluateParams,
) -> dict[str, np.ndarray]:
    """One refit of the training noise: the model fitted on `rows` of the shared training
    features with `model_params`, scored on the test rows (module-level, as
    `fold_predictions_of`)."""
    model = fit_features(features, y, contract, model_params, rows)
    p = predictions(model, test_features, contract.task)
    return score(
        contract.task,
        y_test,
        p,
        np.ones((1, len(p))),
        threshold=params.threshold,
        classes=contract.classes,
        costs=params.cost_pair,
    )


def machine_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
        return None


def fit_bytes(features: pd.DataFrame, contract: Contract, rows: int) -> int:
    """Estimated peak bytes one fit on `rows` rows of `features` adds: FIT_BYTES_PER_VALUE per
    row and model input column (a number, or one per category of a one-hot encoded column:
    the values the training rows hold, plus one for missing)."""
    columns = len(contract.numeric_inputs) + sum(
        int(features[name].nunique()) + 1 for name in contract.categorical_inputs
    )
    return rows * columns * FIT_BYTES_PER_VALUE


def concurrent_fits(
    jobs: Jobs,
    fits: int,
    fit_size: int,
    *,
    cores: int | None = None,
    memory: int | None = None,
) -> int:
    """How many of `fits` independent fits, each adding about `fit_size` bytes, run at once.

    `evaluate.jobs` as a number is taken as it is (never more than there are fits). "auto" is
    the cores joblib sees (its cpu_count honours a container's CPU quota), capped so that the
    fits in flight take at most FIT_MEMORY_SHARE of the machine's memory: on a 16 GB runner
    four fits of 1.5 GB run side by side, four of 3 GB two at a time."""
    if isinstance(jobs, int):
        return max(1, min(jobs, fits))
    cores = cpu_count() if cores is None else cores
    memory = machine_memory() if memory is None else memory
    by_memory = fits if memory is None else int(memory * FIT_MEMORY_SHARE) // max(fit_size, 1)
    return max(1, min(fits, cores, by_memory))


def _side_by_side(calls: list[Any], jobs: int) -> list[Any]:
    """Run delayed model fits `jobs` at once, in threads by default (or on the backend the
    caller configures: gitops_ml.cluster sends them to a Ray cluster), one OpenMP thread per
    estimator; the calls share their data (index arrays into one frame), not copies of it.

    Tree fitting releases the GIL, so threads side by side beat one wide OpenMP team: on a busy
    2-core machine the default team spin-waits and made a 5-fold CV of the default model ~14x
    slower (measured 10 s with one thread, 149 s with two). Threads are a preference, not a
    backend: `joblib.parallel_config(backend=...)` around the stage sends the same calls
    elsewhere (each fit is a module-level function of picklable arguments).
    """
    with threadpool_limits(limits=1):
        return list(Parallel(n_jobs=jobs, prefer="threads")(calls))


def training_noise(
    train: ModelRows,
    test: pd.DataFrame,
    contract: Contract,
    model_params: ModelParams,
    params: EvaluateParams,
) -> dict[str, Any] | None:
    """How much each test metric moves when only training randomness changes (None when off).

    Refit k (1 … `refits`) uses seed `evaluate.seed + k` for the model and for drawing
    `refit_fraction` of the training rows; the standard deviation of each metric over the
    refits, on the same test rows at the same threshold, is the training noise the review adds
    to the bootstrap of PR − base. Few refits make a rough estimate, which is why the review
    combines it with a family-wise level rather than relying on it alone. The refits run at
    most `evaluate.jobs` at once, on rows of one shared view of the training data.
    """
    if params.refits == 0:
        return None
    test_features, y_test = model_frame(test, contract), target_vector(test, contract)
    features, y = train.features, train.target
    size = max(2, round(params.refit_fraction * len(train)))
    calls = []
    for k in range(1, params.refits + 1):
        seed = params.seed + k
        rows = np.sort(np.random.default_rng(seed).choice(len(train), size=size, replace=False))
        seeded = model_params.model_copy(update={"seed": seed})
        calls.append(
            delayed(refit_scores)(
                features, y, rows, test_features, y_test, contract, seeded, params
            )
        )
    at_once = concurrent_fits(params.jobs, params.refits, fit_bytes(features, contract, size))
    scores = _side_by_side(calls, at_once)
    sd = {name: float(np.std([s[name][0] for s in scores], ddof=1)) for name in sorted(scores[0])}
    return {"refits": params.refits, "fraction": params.refit_fraction, "sd": sd}


def cost_per_1000(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray, costs: Costs) -> np.ndarray:
    """Expected cost per 1,000 customers when everyone scored ≥ threshold gets the offer."""
    thresholds = np.atleast_1d(thresholds)
    predicted = p[None, :] >= thresholds[:, None]
    positive = y.astype(bool)[None, :]
    false_pos = (predicted & ~positive).sum(axis=1)
    false_neg = (~predicted & positive).sum(axis=1)
    total = false_pos * costs.false_positive + false_neg * costs.false_negative
    return np.asarray(total / len(y) * 1000.0, dtype=np.float64)


def best_threshold(y: np.ndarray, p: np.ndarray, costs: Costs) -> float:
    """The grid threshold (0.01 … 0.99) with the lowest cost; the lowest one among ties."""
    return float(THRESHOLD_GRID[int(np.argmin(cost_per_1000(y, p, THRESHOLD_GRID, costs)))])


def business_view(
    y_test: np.ndarray,
    p_test: np.ndarray,
    y_oof: np.ndarray,
    p_oof: np.ndarray,
    threshold: float,
    costs: Costs,
) -> dict[str, float]:
    best = best_threshold(y_oof, p_oof, costs)
    at_threshold, at_best = cost_per_1000(y_test, p_test, np.array([threshold, best]), costs)
    return {
        "threshold": threshold,
        "cost_per_1000": float(at_threshold),
        "best_threshold": best,
        "cost_per_1000_at_best": float(at_best),
    }


# --------------------------------------------------------------------------------------------
# Plot data on fixed grids, so a change shows up as a small, readable diff
# --------------------------------------------------------------------------------------------


def roc_points(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    """For each FPR on the grid, the best reachable operating point with FPR ≤ it."""
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    index = np.searchsorted(fpr, CURVE_GRID, side="right") - 1
    return [
        {"fpr": float(f), "tpr": float(tpr[i]), "threshold": float(min(thresholds[i], 1.0))}
        for f, i in zip(CURVE_GRID, index, strict=True)
    ]


def precision_recall_points(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    """For each recall on the grid, the operating point with the highest threshold reaching it."""
    precision, recall, thresholds = precision_recall_curve(y, p, drop_intermediate=False)
    # Points run from the lowest threshold (recall 1) to the end point (recall 0, precision 1,
    # no threshold of its own: it stands for "nobody flagged", threshold 1.0 here).
    thresholds = np.r_[thresholds, 1.0]
    points = []
    for r in CURVE_GRID:
        i = int(np.flatnonzero(recall >= r - 1e-12)[-1])
        points.append(
            {
                "recall": float(r),
                "precision": float(precision[i]),
                "threshold": float(thresholds[i]),
            }
        )
    return points


def calibration_bins(y: np.ndarray, p: np.ndarray) -> list[dict[str, Any]]:
    """Ten equal-width probability bins; empty bins stay (null values) so the grid is fixed."""
    index = np.minimum((p * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    counts = np.bincount(index, minlength=CALIBRATION_BINS)
    sum_p = np.bincount(index, weights=p, minlength=CALIBRATION_BINS)
    sum_y = np.bincount(index, weights=y, minlength=CALIBRATION_BINS)
    return [
        {
            "bin": b,
            "mean_predicted": float(sum_p[b] / counts[b]) if counts[b] else None,
            "fraction_positive": float(sum_y[b] / counts[b]) if counts[b] else None,
            "count": int(counts[b]),
        }
        for b in range(CALIBRATION_BINS)
    ]


def prediction_deciles(prediction: np.ndarray) -> np.ndarray:
    """The decile (0 … PREDICTION_BINS − 1) of each row by its prediction's rank: equal-count
    bins even when predictions tie (ties broken by row order), fewer bins for fewer rows."""
    rows = len(prediction)
    bins = max(1, min(PREDICTION_BINS, rows))
    rank = np.empty(rows, dtype=np.int64)
    rank[np.argsort(prediction, kind="stable")] = np.arange(rows)
    return np.asarray(rank * bins // max(rows, 1), dtype=np.int64)


def predicted_vs_actual(y: np.ndarray, prediction: np.ndarray) -> list[dict[str, Any]]:
    """Per decile of the prediction: the mean predicted and the mean actual value (a calibrated
    model keeps them level) and the rows."""
    decile = prediction_deciles(prediction)
    return [
        {
            "decile": int(d + 1),
            "mean_predicted": float(prediction[decile == d].mean()),
            "mean_actual": float(y[decile == d].mean()),
            "count": int(np.sum(decile == d)),
        }
        for d in np.unique(decile)
    ]


def residual_deciles(y: np.ndarray, prediction: np.ndarray) -> list[dict[str, Any]]:
    """Per decile of the prediction: the residual (actual − predicted) at its 10th, 50th and
    90th percentile, so bias and spread that change with the prediction show."""
    decile = prediction_deciles(prediction)
    residual = y - prediction
    rows = []
    for d in np.unique(decile):
        low, median, high = np.percentile(residual[decile == d], [10, 50, 90])
        rows.append(
            {
                "decile": int(d + 1),
                "mean_predicted": float(prediction[decile == d].mean()),
                "residual_p10": float(low),
                "residual_median": float(median),
                "residual_p90": float(high),
            }
        )
    return rows


def confusion_csv(actual: Iterable[Any], predicted: Iterable[Any]) -> str:
    """The DVC confusion-template file: `actual,predicted` then one pair per test row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    writer.writerows(zip(actual, predicted, strict=True))
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Slices: the same metrics per group of a `slice: true` column, so a reviewer sees whether a
# change hurts one group more than another
# --------------------------------------------------------------------------------------------

SLICE_BINS = 4  # quantile bins of a numeric slice column
MIN_SLICE_ROWS = 50  # smaller groups are pooled into OTHER_GROUP, or flagged `small` if still small
OTHER_GROUP = "other"
MISSING_GROUP = "missing"


def _value_text(value: Any, integer: bool) -> str:
    return f"{int(value)}" if integer else f"{value:.3g}"


def slice_groups(values: pd.Series, column: Column) -> list[tuple[str, np.ndarray]]:
    """(label, row mask) per group, in reading order: numeric columns in SLICE_BINS quantile
    bins labelled by the values they hold ("18–31"), other columns by value with two or more
    groups under MIN_SLICE_ROWS pooled into "other"; missing values form their own group."""
    missing = values.isna().to_numpy()
    groups: list[tuple[str, np.ndarray]] = []
    if column.is_numeric and column.type != "bool":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        present = numbers[~missing]
        quantiles = np.arange(1, SLICE_BINS) / SLICE_BINS
        edges = np.unique(np.quantile(present, quantiles)) if present.size else np.array([])
        index = np.searchsorted(edges, numbers, side="right")
        integer = column.type == "int"
        for b in range(len(edges) + 1):
            mask = (index == b) & ~missing
            if mask.any():
                low, high = numbers[mask].min(), numbers[mask].max()
                text = _value_text(low, integer)
                if high != low:
                    text += f"–{_value_text(high, integer)}"
                groups.append((text, mask))
    else:
        texts = (
            values.astype(object)
            .map(lambda v: str(v).lower() if isinstance(v, bool | np.bool_) else str(v))
            .to_numpy(dtype=object)
        )
        small: list[tuple[str, np.ndarray]] = []
        for value in sorted(set(texts[~missing])):
            mask = (texts == value) & ~missing
            (groups if mask.sum() >= MIN_SLICE_ROWS else small).append((str(value), mask))
        if len(small) == 1:  # pooling one group would only hide its name
            groups += small
        elif small:
            groups.append((OTHER_GROUP, np.logical_or.reduce([m for _, m in small])))
    if missing.any():
        groups.append((MISSING_GROUP, missing))
    return groups


def calibration_error(y: np.ndarray, p: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Expected calibration error per mask row: |mean predicted − observed rate| over the ten
    probability bins of `calibration_bins`, weighted by the rows in each bin."""
    index = np.minimum((p * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    onehot = np.eye(CALIBRATION_BINS)[index]  # (n, bins)
    counts = masks @ onehot
    gap = np.abs(masks @ (onehot * p[:, None]) - masks @ (onehot * y[:, None]))
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = gap.sum(axis=1) / counts.sum(axis=1)
    return result


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


# Slice metrics that are not a formula of the task's tally: (targets, predictions, group masks
# (G, n)) → one value per group.
BINNED_SLICE_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "calibration_error": calibration_error,
}


def slice_metrics(
    test: pd.DataFrame, y: np.ndarray, p: np.ndarray, contract: Contract, threshold: float
) -> dict[str, Any]:
    """Per slice column: each group's rows and the task's slice metrics, and the largest gap
    per metric between groups of at least MIN_SLICE_ROWS rows (null when fewer than two such
    groups)."""
    task = contract.task
    names = metric_sets(task).slice
    out: dict[str, Any] = {}
    for column in contract.slices:
        if column.name not in test.columns:
            raise EvaluateError(f"slice column {column.name!r} is missing from the test split")
        groups = slice_groups(test[column.name], column)
        masks = np.array([mask for _, mask in groups], dtype=np.float64)
        tallied = [m for m in names if m not in BINNED_SLICE_METRICS]
        values = score(task, y, p, masks, tallied, threshold=threshold, classes=contract.classes)
        values.update(
            {m: BINNED_SLICE_METRICS[m](y, p, masks) for m in names if m in BINNED_SLICE_METRICS}
        )
        table: dict[str, Any] = {}
        for i, (label, mask) in enumerate(groups):
            rows = int(mask.sum())
            entry: dict[str, Any] = {"rows": rows, **VIEWS[task].group(y[mask])}
            entry.update({m: _finite(values[m][i]) for m in names})
            if rows < MIN_SLICE_ROWS:
                entry["small"] = True
            table[label] = entry
        gaps: dict[str, float | None] = {}
        for m in names:
            usable = [e[m] for e in table.values() if not e.get("small") and e[m] is not None]
            gaps[m] = max(usable) - min(usable) if len(usable) >= 2 else None
        out[column.name] = {"groups": table, "gap": gaps}
    return out


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, float):
        return round(value, DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value


def predict(model: Pipeline, frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """What the model predicts for `frame` (gitops_ml.tasks.predictions), after checking that a
    classifier knows exactly the contract's classes."""
    names = class_names(contract.task, contract.classes)
    known = list(getattr(model, "classes_", []))
    if names and known != list(range(len(names))):
        raise EvaluateError(
            f"the model predicts classes {known}; the contract's target has {len(names)} "
            f"({list(names)}), learned as 0 … {len(names) - 1}: retrain with `dvc repro train`"
        )
    return predictions(model, model_frame(frame, contract), contract.task)


def _binary_metrics(y: np.ndarray, p: np.ndarray, _: Contract, threshold: float) -> dict[str, Any]:
    predicted = (p >= threshold).astype(np.int64)
    cells = {"tn": (0, 0), "fp": (0, 1), "fn": (1, 0), "tp": (1, 1)}
    return {
        "confusion": {k: int(np.sum((y == a) & (predicted == b))) for k, (a, b) in cells.items()}
    }


def _binary_plots(y: np.ndarray, p: np.ndarray, _: Contract, threshold: float) -> dict[str, Any]:
    return {
        ROC_FILE: {"roc": roc_points(y, p)},
        PR_FILE: {"precision_recall": precision_recall_points(y, p)},
        CALIBRATION_FILE: {"calibration": calibration_bins(y, p)},
        CONFUSION_FILE: confusion_csv(y.tolist(), (p >= threshold).astype(np.int64).tolist()),
    }


def _confusion_matrix(
    y: np.ndarray, probabilities: np.ndarray, contract: Contract, _: float
) -> dict[str, Any]:
    k = len(contract.classes)
    cells = y * k + probabilities.argmax(axis=1)
    counts = np.bincount(cells, minlength=k * k).reshape(k, k)
    return {"confusion_matrix": {"classes": list(contract.classes), "counts": counts.tolist()}}


def _class_confusion_csv(
    y: np.ndarray, probabilities: np.ndarray, contract: Contract, _: float
) -> dict[str, Any]:
    names = np.asarray(contract.classes, dtype=object)
    return {CONFUSION_FILE: confusion_csv(names[y], names[probabilities.argmax(axis=1)])}


def _regression_plots(y: np.ndarray, p: np.ndarray, _: Contract, __: float) -> dict[str, Any]:
    return {
        PREDICTED_ACTUAL_FILE: {"predicted_actual": predicted_vs_actual(y, p)},
        RESIDUALS_FILE: {"residuals": residual_deciles(y, p)},
    }


def _nothing(*_: Any) -> dict[str, Any]:
    return {}


Extra = Callable[[np.ndarray, np.ndarray, Contract, float], dict[str, Any]]


@dataclass(frozen=True)
class TaskView:
    """What the stage writes for a task beyond its metric set: each callable takes the test
    targets, the predictions, the contract and the threshold."""

    metrics: Extra  # more keys of metrics/evaluate.json
    plots: Extra  # plots/ file name → content (see Evaluation)
    group: Callable[[np.ndarray], dict[str, Any]]  # counts of one slice group's targets
    folds: type[KFold] | type[StratifiedKFold]  # the cross-validation splitter


VIEWS: dict[Task, TaskView] = {
    "binary": TaskView(
        _binary_metrics, _binary_plots, lambda y: {"positives": int(y.sum())}, StratifiedKFold
    ),
    "multiclass": TaskView(_confusion_matrix, _class_confusion_csv, _nothing, StratifiedKFold),
    "regression": TaskView(_nothing, _regression_plots, _nothing, KFold),
}
# Every plot file any task writes: a file of another task is removed, never left stale.
PLOT_FILES: tuple[str, ...] = (
    ROC_FILE,
    PR_FILE,
    CALIBRATION_FILE,
    CONFUSION_FILE,
    PREDICTED_ACTUAL_FILE,
    RESIDUALS_FILE,
)


def _check_costs(sets: MetricSet[Any], params: EvaluateParams) -> None:
    if params.costs is not None and sets.cost is None:
        raise EvaluateError(
            f"params.yaml: 'evaluate.costs' prices false positives and false negatives, which a "
            f"{sets.task} model does not make; remove 'evaluate.costs' (a {sets.task} cost view "
            "is not built)"
        )


def evaluate(
    model: Pipeline,
    train: ModelRows,
    test: pd.DataFrame,
    contract: Contract,
    model_params: ModelParams,
    params: EvaluateParams,
    log: Log = _silent,
) -> Evaluation:
    """Everything the stage reports, computed in memory (no files): `train` serves the fits
    alone, in the model's view; `test` is the raw test table (its slices are read raw)."""
    started = time.perf_counter()
    task, classes = contract.task, contract.classes
    sets = metric_sets(task, classes)
    _check_costs(sets, params)
    y = target_vector(test, contract)
    _check_classes(y, contract, "test set")
    with threadpool_limits(limits=1):  # see cross_validate: one OpenMP thread is faster here
        p = predict(model, test, contract)
    point = point_metrics(y, p, params.threshold, task=task, classes=classes)
    log(f"evaluate: test metrics on {len(y):,} rows ({time.perf_counter() - started:.1f}s)")

    step = time.perf_counter()
    intervals = bootstrap_intervals(
        y, p, params.threshold, params.bootstrap_samples, params.seed, task=task, classes=classes
    )
    log(
        f"evaluate: bootstrap {params.bootstrap_samples} resamples × {len(y):,} rows "
        f"({time.perf_counter() - step:.1f}s)"
    )

    step = time.perf_counter()
    cv, p_oof, y_oof = cross_validate(
        train, contract, model_params, params.cv_folds, params.seed, params.threshold, params.jobs
    )
    log(
        f"evaluate: {params.cv_folds}-fold CV on {len(train):,} training rows "
        f"({time.perf_counter() - step:.1f}s)"
    )

    step = time.perf_counter()
    noise = training_noise(train, test, contract, model_params, params)
    if noise is not None:
        log(
            f"evaluate: {params.refits} refits on {params.refit_fraction:.0%} of the training rows "
            f"for the training noise ({time.perf_counter() - step:.1f}s)"
        )

    view = VIEWS[task]
    metrics: dict[str, Any] = {
        "task": task,
        "test": point,
        "ci95": intervals,
        "cv": cv,
        **view.metrics(y, p, contract, params.threshold),
        "rows": {"test": len(y)},
    }
    if params.costs is not None:
        metrics["business"] = business_view(y, p, y_oof, p_oof, params.threshold, params.costs)
    if noise is not None:
        metrics["training_noise"] = noise
    if contract.slices:
        metrics["slices"] = slice_metrics(test, y, p, contract, params.threshold)
    plots = view.plots(y, p, contract, params.threshold)
    return Evaluation(metrics=_round(_finite_values(metrics)), plots=_round(plots))


def _finite_values(value: Any) -> Any:
    """NaN (a metric undefined on these rows, e.g. R² of a constant target) as JSON null."""
    if isinstance(value, dict):
        return {k: _finite_values(v) for k, v in value.items()}
    if isinstance(value, float):
        return _finite(value)
    return value


def write_evaluation(result: Evaluation, metrics_path: str | Path, plots_dir: str | Path) -> None:
    plots_dir = Path(plots_dir)
    gio.write_json(metrics_path, result.metrics)
    for filename in PLOT_FILES:
        content = result.plots.get(filename)
        if content is None:
            (plots_dir / filename).unlink(missing_ok=True)  # another task's plot
        elif isinstance(content, str):
            gio.write_text(plots_dir / filename, content)
        else:
            gio.write_json(plots_dir / filename, content)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=paths.MODEL_JOBLIB)
    parser.add_argument("--train", default=paths.TRAIN)
    parser.add_argument("--test", default=paths.TEST)
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--metrics", default=paths.EVALUATE_METRICS)
    parser.add_argument("--plots-dir", default=paths.PLOTS_DIR)


def _print(message: str) -> None:
    print(message, flush=True)


def run(args: argparse.Namespace) -> int:
    with joblib_backend() as cluster:
        if cluster is not None:
            _print(f"evaluate: fits on the Ray cluster at {cluster}")
        return _run(args)


def _training_rows(path: str, contract: Contract) -> ModelRows:
    """The training table as the fits take it: its features and target only, categories read
    as codes; the raw table is gone once the model's view is built."""
    frame = gio.read_table(
        path, columns=training_columns(contract), categorical=contract.categorical_features
    )
    _check_columns(frame, contract, path)
    return model_rows(frame, contract)


def fixed_mmap_threshold() -> bool:
    """On glibc, give every array of MMAP_THRESHOLD bytes or more its own memory map, returned
    to the system as soon as it is freed; False where the C library is not glibc.

    glibc's default moves that threshold up to the largest such block freed so far (up to
    32 MiB), after which a fit's column-sized arrays (bins, gradients, the one-hot encoder's
    codes) come from per-thread heaps that keep their pages once freed; with two fits side by
    side the pages one thread freed do not serve the other. At 1M rows evaluate's peak RSS
    was 1.30 GB with the moving threshold and 1.11-1.12 GB with it fixed (docs/performance.md).
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt  # glibc and uClibc; musl has none
    except (AttributeError, OSError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    params: Mapping[str, Any] = load_params(args.params)
    model_params = ModelParams.from_params(params)
    evaluate_params = EvaluateParams.from_params(params)
    contract = load_contract(args.contract)
    model = load_model(args.model)
    train = _training_rows(args.train, contract)
    if len(train) >= FIXED_MMAP_THRESHOLD_ROWS:
        fixed_mmap_threshold()
    # The test rows: their features and target, and their slices (categories read as codes).
    columns = training_columns(contract)
    slices = [c.name for c in contract.slices if c.name not in columns]
    test = gio.read_table(
        args.test, columns=[*columns, *slices], categorical=contract.categorical_features
    )
    _check_columns(test, contract, args.test)
    result = evaluate(model, train, test, contract, model_params, evaluate_params, log=_print)
    write_evaluation(result, args.metrics, args.plots_dir)
    headline = metric(metric_sets(contract.task).headline)
    value, ci = result.metrics["test"][headline.name], result.metrics["ci95"].get(headline.name)
    interval = f" [{ci['low']:{headline.spec}}, {ci['high']:{headline.spec}}]" if ci else ""
    business = result.metrics.get("business")
    cost = (
        f"cost/1000 {business['cost_per_1000']:.0f} at {business['threshold']} → "
        f"{business['cost_per_1000_at_best']:.0f} at {business['best_threshold']}; "
        if business
        else ""
    )
    _print(
        f"evaluate: {headline.label} {value:{headline.spec}}{interval}, {cost}"
        f"wrote {args.metrics} and {args.plots_dir}/ in {time.perf_counter() - started:.1f}s"
    )
    return 0
