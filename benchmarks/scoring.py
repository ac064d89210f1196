"""The test-set bootstrap of every task: the vectorised weighted metrics (gitops_ml.scoring)
against scikit-learn's metric functions called once per resample, on the same resamples.

Usage: make bench-scoring  (or .venv/bin/python benchmarks/scoring.py [--rows N] [--samples B])
Prints, per task, the seconds of each way (best of --repeat runs) and the largest difference
between their values, which must stay at floating-point noise.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from sklearn import metrics as skm

from gitops_ml.metric_registry import metric_sets
from gitops_ml.scoring import bootstrap_weights, score

Rows = tuple[np.ndarray, np.ndarray, tuple[str, ...]]
SklearnMetrics = Callable[[np.ndarray, np.ndarray], dict[str, float]]


def binary_rows(n: int, rng: np.random.Generator) -> Rows:
    y = (rng.random(n) < 0.3).astype(np.int64)
    return y, np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0.0, 1.0), ()


def multiclass_rows(n: int, rng: np.random.Generator) -> Rows:
    y = rng.choice(5, size=n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    logits = rng.normal(0, 1, (n, 5)) + 1.5 * np.eye(5)[y]
    return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), tuple("abcde")


def regression_rows(n: int, rng: np.random.Generator) -> Rows:
    y = rng.normal(100, 20, n)
    return y, y + rng.normal(0, 10, n), ()


def binary_sklearn(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    flagged = p >= 0.5
    return {
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "accuracy": skm.accuracy_score(y, flagged),
        "precision": skm.precision_score(y, flagged, zero_division=0),
        "recall": skm.recall_score(y, flagged),
        "f1": skm.f1_score(y, flagged),
        "log_loss": skm.log_loss(y, p, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p),
    }


def multiclass_sklearn(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    predicted = p.argmax(axis=1)
    labels = list(range(p.shape[1]))
    recall = skm.recall_score(y, predicted, labels=labels, average=None, zero_division=0)
    precision = skm.precision_score(y, predicted, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": skm.accuracy_score(y, predicted),
        "balanced_accuracy": skm.balanced_accuracy_score(y, predicted),
        "macro_f1": skm.f1_score(y, predicted, average="macro"),
        "log_loss": skm.log_loss(y, p, labels=labels),
        **{f"recall[{c}]": recall[i] for i, c in enumerate("abcde")},
        **{f"precision[{c}]": precision[i] for i, c in enumerate("abcde")},
    }


def regression_sklearn(y: np.ndarray, y_hat: np.ndarray) -> dict[str, float]:
    return {
        "rmse": skm.root_mean_squared_error(y, y_hat),
        "mae": skm.mean_absolute_error(y, y_hat),
        "r2": skm.r2_score(y, y_hat),
        "median_absolute_error": skm.median_absolute_error(y, y_hat),
    }


TASKS: dict[str, tuple[Callable[[int, np.random.Generator], Rows], SklearnMetrics]] = {
    "binary": (binary_rows, binary_sklearn),
    "multiclass": (multiclass_rows, multiclass_sklearn),
    "regression": (regression_rows, regression_sklearn),
}


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def sklearn_loop(
    y: np.ndarray, pred: np.ndarray, weights: np.ndarray, sklearn_metrics: SklearnMetrics
) -> list[dict[str, float]]:
    """scikit-learn's functions on each resample's rows (row i drawn weights[b, i] times)."""
    positions = np.arange(len(y))
    drawn = [np.repeat(positions, w) for w in weights]
    return [sklearn_metrics(y[rows], pred[rows]) for rows in drawn]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"bootstrap of the test metrics: {args.samples} resamples × {args.rows:,} rows")
    print(f"{'task':<12}{'metrics':>8}{'vectorised s':>14}{'scikit-learn s':>16}{'max |diff|':>12}")
    for task, (rows, sklearn_metrics) in TASKS.items():
        rng = np.random.default_rng(0)
        y, pred, classes = rows(args.rows, rng)
        weights = bootstrap_weights(args.rows, args.samples, rng)
        names = metric_sets(task, classes).test

        fast_s, fast = best_of(args.repeat, partial(score, task, y, pred, weights, classes=classes))
        slow_s, slow = best_of(1, partial(sklearn_loop, y, pred, weights, sklearn_metrics))
        assert isinstance(fast, dict) and isinstance(slow, list)
        diff = max(
            abs(float(fast[name][b]) - slow[b][name])
            for name in names
            for b in range(args.samples)
            if not np.isnan(fast[name][b])
        )
        print(f"{task:<12}{len(names):>8}{fast_s:>14.2f}{slow_s:>16.2f}{diff:>12.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
