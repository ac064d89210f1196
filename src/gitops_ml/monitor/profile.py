"""profile: a small JSON summary of the training data and model scores for the drift check.

Drift is later measured against this profile, not against the raw training data, so the check
needs neither the training set nor its memory: per numeric feature the reference-quantile bins
(PSI, charts) and a fine quantile grid (KS, Wasserstein), per categorical feature the category
counts, the reference score distribution and the training metrics. Versioned with the model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DriftParams, EvaluateParams, load_params
from gitops_ml.contract import MISSING_CATEGORY, Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.evaluate_metrics import EvaluateMetrics, read_evaluate_metrics
from gitops_ml.metric_registry import metric_sets
from gitops_ml.monitor.watched import watch, watched_column

PROFILE_VERSION = 1


class ProfileError(UserError):
    """The profile file is missing, unreadable or does not match the contract or model."""


def numeric_values(values: Any) -> np.ndarray:
    """float64 values with NaN for missing; bools become 0/1 like they do for the model."""
    return pd.to_numeric(pd.Series(values), errors="raise").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def count_categories(values: Any) -> tuple[dict[str, int], int]:
    """(count per category as a string, missing count); MISSING_CATEGORY "" counts as missing.

    Counts first and converts only the distinct keys, so a million rows cost one value_counts.
    """
    counts: dict[str, int] = {}
    missing = 0
    pairs: list[tuple[Any, Any]]
    if isinstance(values, pa.Array | pa.ChunkedArray):
        table = pc.value_counts(values)
        keys, numbers = table.field("values").to_pylist(), table.field("counts").to_pylist()
        pairs = list(zip(keys, numbers, strict=True))
    else:
        pairs = list(pd.Series(values).value_counts(dropna=False, sort=False).items())
    for key, n in pairs:
        if pd.isna(key) or key == MISSING_CATEGORY:
            missing += int(n)
        else:
            name = str(key)
            counts[name] = counts.get(name, 0) + int(n)
    return counts, missing


def cell_index(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Cell of each value: cell j is (grid[j-1], grid[j]]; 0 is ≤ grid[0], len(grid) is beyond.

    `np.searchsorted(grid, values)` for values without NaN, as a binary search that every
    value takes in step (one vector operation per halving): no branch per value to mispredict,
    so on the profile's grids (≤ 101 points) it takes 40 % of searchsorted's CPU time. A
    million values at a time, so its temporary arrays stay small whatever the column's length.
    """
    size = 1 << len(grid).bit_length()  # a power of two above len(grid), padded with +inf
    padded = np.concatenate([np.asarray(grid, dtype=np.float64), np.full(size - len(grid), np.inf)])
    cells = np.zeros(len(values), dtype=np.intp)
    at_once = 1 << 20
    for start in range(0, len(values), at_once):
        part, index = values[start : start + at_once], cells[start : start + at_once]
        step = size >> 1
        while step:  # index counts the grid points below each value
            index += step * (padded[index + (step - 1)] < part)
            step >>= 1
    return cells


def cell_to_bin(grid: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Which coarse bin each fine cell falls in (the bin edges are a subset of the grid)."""
    upper = np.append(grid, np.inf)
    return np.searchsorted(edges, upper, side="left")


def numeric_profile(values: np.ndarray, settings: DriftParams) -> dict[str, Any]:
    """Quantile grid, cell counts, decile bins and moments of one numeric column."""
    finite = values[~np.isnan(values)]
    missing = int(len(values) - len(finite))
    if len(finite) == 0:
        raise ProfileError("cannot profile a numeric column with no non-missing values")
    levels = np.linspace(0.0, 1.0, settings.quantile_grid + 1)
    full_grid = np.quantile(finite, levels, method="inverted_cdf")
    step = settings.quantile_grid // settings.bins
    edges = np.unique(full_grid[step:-1:step])
    grid = np.unique(full_grid)
    index = cell_index(grid, finite)
    cells = np.bincount(index, minlength=len(grid) + 1)
    sums = np.bincount(index, weights=finite, minlength=len(grid) + 1)
    bins = np.bincount(cell_to_bin(grid, edges), weights=cells, minlength=len(edges) + 1)
    return {
        "kind": "numeric",
        "count": len(finite),
        "missing": missing,
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "grid": grid.tolist(),
        "grid_counts": cells.astype(int).tolist(),
        "grid_sums": sums.tolist(),
        "bin_edges": edges.tolist(),
        "bin_counts": bins.astype(int).tolist(),
    }


def categorical_profile(
    values: Any, settings: DriftParams, known: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Counts of the most frequent categories (ties by name), the rest pooled as `other`;
    `known` categories (a multiclass target's classes) are listed even when never seen."""
    counts, missing = count_categories(values)
    counts = {**dict.fromkeys(known, 0), **counts}
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "kind": "categorical",
        "count": sum(counts.values()),
        "missing": missing,
        "categories": dict(ordered[: settings.max_categories]),
        "other": sum(n for _, n in ordered[settings.max_categories :]),
    }


def training_metrics(evaluate: EvaluateMetrics | None, task: str) -> dict[str, Any] | None:
    """The test metrics the drift check compares with (the task's monitor metrics) and their
    CIs, from metrics/evaluate.json (see docs/interfaces.md)."""
    if evaluate is None:
        return None
    names = metric_sets(task).monitor
    return {
        "test": {k: evaluate.test[k] for k in names if k in evaluate.test},
        "ci95": {k: evaluate.ci95[k].model_dump() for k in names if k in evaluate.ci95},
        "rows": evaluate.rows.test if evaluate.rows else None,
    }


def build_profile(
    frame: pd.DataFrame,
    contract: Contract,
    settings: DriftParams,
    scores: np.ndarray | None = None,
    evaluate: EvaluateMetrics | None = None,
    threshold: float = 0.5,
    model_sha256: str | None = None,
) -> dict[str, Any]:
    """The reference profile of `frame` (the training split) and the model's scores on it."""
    require_features(frame, contract)
    features: list[dict[str, Any]] = []
    for column in contract.features:
        try:
            if column.is_categorical:
                entry = categorical_profile(frame[column.name], settings)
            else:
                entry = numeric_profile(numeric_values(frame[column.name]), settings)
        except (ProfileError, ValueError, TypeError) as exc:
            raise ProfileError(f"column {column.name!r}: {exc}") from None
        features.append({"name": column.name, "type": column.type, **entry})
    target = None
    if contract.target in frame.columns:
        target = {
            "name": contract.target,
            **target_profile(frame[contract.target], contract, settings),
        }
    stamp = contract.timestamp
    period = None
    if stamp and stamp in frame.columns and frame[stamp].notna().any():
        times = pd.to_datetime(frame[stamp])
        period = {"name": stamp, "min": str(times.min()), "max": str(times.max())}
    return {
        "version": PROFILE_VERSION,
        "contract": contract.name,
        "task": contract.task,  # what `score` and `target` hold (gitops_ml.monitor.watched)
        "rows": len(frame),
        "features": features,
        "target": target,
        "timestamp": period,  # the training period: simulated traffic starts after it
        "score": None if scores is None else prediction_profile(scores, contract, settings),
        "threshold": threshold,
        "metrics": training_metrics(evaluate, contract.task),
        "model_sha256": model_sha256,
        "settings": {
            "bins": settings.bins,
            "quantile_grid": settings.quantile_grid,
            "max_categories": settings.max_categories,
        },
    }


def prediction_profile(
    predictions: np.ndarray, contract: Contract, settings: DriftParams
) -> dict[str, Any]:
    """The reference of the watched column of the model's predictions (monitor.watched): the
    score or the predicted value on a quantile grid, or the predicted classes' shares with the
    mean probability of each class."""
    column = watched_column(predictions, contract)
    if watch(contract).kind == "numeric":
        return numeric_profile(numeric_values(column), settings)
    means = np.asarray(predictions, dtype=np.float64).mean(axis=0)
    return {
        **categorical_profile(column, settings, contract.classes),
        "probability_means": dict(zip(contract.classes, means.tolist(), strict=True)),
    }


def target_profile(values: pd.Series, contract: Contract, settings: DriftParams) -> dict[str, Any]:
    """The outcomes' reference: the positive rate (binary), each class's count (multiclass), the
    quantile grid of the values (regression)."""
    kind = watch(contract).outcomes
    if kind == "rate":
        return {"rate": float(values.astype(bool).mean())}
    if kind == "categorical":
        return categorical_profile(values, settings, contract.classes)
    return numeric_profile(numeric_values(values), settings)


def build_model_profile(
    frame: pd.DataFrame,
    contract: Contract,
    settings: DriftParams,
    model_path: str | Path,
    evaluate: EvaluateMetrics | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """build_profile with the ONNX model's scores on `frame` and the model's sha256."""
    # Imported here so that profiling the statistics alone never needs onnxruntime.
    from gitops_ml.monitor.readers import ModelScorer

    require_features(frame, contract)
    scorer = ModelScorer(model_path, contract)
    return build_profile(
        frame,
        contract,
        settings,
        scores=scorer.score(frame),
        evaluate=evaluate,
        threshold=threshold,
        model_sha256=scorer.sha256,
    )


def require_features(frame: pd.DataFrame, contract: Contract) -> None:
    missing = [name for name in contract.feature_names if name not in frame.columns]
    if missing:
        raise ProfileError(f"training data lacks contract feature column(s) {missing}")


def load_profile(path: str | Path, contract: Contract | None = None) -> dict[str, Any]:
    """Read a profile, checking its version and (when given) that it covers the contract."""
    try:
        profile = gio.read_json(path)
    except FileNotFoundError:
        raise ProfileError(f"profile not found: {path} (run `gitops-ml profile`)") from None
    except OSError as exc:  # a directory, no permission …
        raise ProfileError(f"{path}: cannot read the profile: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ProfileError(f"{path}: not valid JSON: {exc}") from None
    if (
        not isinstance(profile, dict)
        or profile.get("version") != PROFILE_VERSION
        or not isinstance(profile.get("features"), list)
    ):
        raise ProfileError(f"{path}: not a version-{PROFILE_VERSION} reference profile")
    if contract is not None:
        task = profile.get("task", "binary")  # a profile from before tasks is a binary one
        if task != contract.task:
            raise ProfileError(
                f"{path}: a profile of a {task} model, but the contract's task is "
                f"{contract.task}; rebuild the profile (gitops-ml profile)"
            )
        names = [f["name"] for f in profile["features"]]
        if names != contract.feature_names:
            raise ProfileError(
                f"{path}: profiled features {names} differ from the contract's "
                f"{contract.feature_names}; rebuild the profile"
            )
    return profile


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", default=paths.TRAIN, help="training split")
    parser.add_argument("--model", default=paths.MODEL_ONNX, help="ONNX model to score with")
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument(
        "--metrics", default=paths.EVALUATE_METRICS, help="training metrics (skipped if absent)"
    )
    parser.add_argument("--output", default=paths.PROFILE)


def run(args: argparse.Namespace) -> int:
    contract = load_contract(args.contract)
    params = load_params(args.params)
    settings = DriftParams.from_params(params)
    threshold = EvaluateParams.from_params(params).threshold
    frame = gio.read_table(args.train)
    evaluate = read_evaluate_metrics(args.metrics) if Path(args.metrics).exists() else None
    profile = build_model_profile(frame, contract, settings, args.model, evaluate, threshold)
    gio.write_json(args.output, profile)
    print(f"profile: {args.output} ({len(frame)} rows, {len(profile['features'])} features)")
    return 0
