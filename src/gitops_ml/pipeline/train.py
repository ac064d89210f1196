"""train: fit the estimator named by `model.type` inside a scikit-learn Pipeline.

Feature engineering lives in the Pipeline (ColumnTransformer), so the exported ONNX graph takes
the raw contract columns and serving needs no preprocessing code. Every transformer used here
converts with skl2onnx; numeric preprocessing is chosen per estimator so that ONNX parity holds
(histogram gradient boosting takes NaN natively; a float32 imputer in front of trees would flip
labels after conversion, so random forests get a constant far outside every real value).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import ModelParams, load_params
from gitops_ml.contract import (
    MISSING_CATEGORY,
    Contract,
    load_contract,
    model_frame,
    target_vector,
)
from gitops_ml.errors import UserError

# A constant no real feature takes; exactly representable in float32, so no flips after export.
RANDOM_FOREST_MISSING_VALUE = -1.0e9


class ModelConfigError(UserError):
    """`model.type` or `model.hyperparams` in params.yaml is not usable."""


@dataclass(frozen=True)
class ModelSpec:
    estimator: Callable[[], ClassifierMixin]
    numeric: Callable[[], Any]  # numeric preprocessing step ("passthrough" or a transformer)
    seed_param: str = "random_state"


REGISTRY: dict[str, ModelSpec] = {
    "hist_gradient_boosting": ModelSpec(
        estimator=HistGradientBoostingClassifier, numeric=lambda: "passthrough"
    ),
    "random_forest": ModelSpec(
        estimator=lambda: RandomForestClassifier(n_jobs=1),
        numeric=lambda: SimpleImputer(strategy="constant", fill_value=RANDOM_FOREST_MISSING_VALUE),
    ),
    "logistic_regression": ModelSpec(
        estimator=lambda: LogisticRegression(max_iter=1000),
        numeric=lambda: Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        ),
    ),
}


def _category_lists(contract: Contract) -> list[list[str]] | str:
    """Fixed one-hot categories from the contract (plus "missing"), so encodings never depend
    on which categories happen to occur in the training window."""
    columns = [contract.column(name) for name in contract.categorical_features]
    if all(c.checks.allowed for c in columns):
        return [sorted({*(c.checks.allowed or ()), MISSING_CATEGORY}) for c in columns]
    return "auto"


def build_model(model_params: ModelParams, contract: Contract) -> Pipeline:
    """The unfitted Pipeline for `model.type`, with hyperparameters checked before any fitting."""
    spec = REGISTRY.get(model_params.type)
    if spec is None:
        raise ModelConfigError(
            f"params.yaml: model.type {model_params.type!r} is not registered; "
            f"choose one of {sorted(REGISTRY)}"
        )
    estimator = spec.estimator()
    known = estimator.get_params()
    unknown = sorted(set(model_params.hyperparams) - set(known))
    if unknown:
        raise ModelConfigError(
            f"params.yaml: model.hyperparams {unknown} are not parameters of {model_params.type}; "
            f"valid: {sorted(k for k in known if k != spec.seed_param)}"
        )
    estimator.set_params(**model_params.hyperparams, **{spec.seed_param: model_params.seed})
    try:
        estimator._validate_params()  # sklearn's own check: names the parameter and the rule
    except (ValueError, TypeError) as exc:
        raise ModelConfigError(f"params.yaml: model.hyperparams: {exc}") from None
    preprocess = ColumnTransformer(
        [
            ("numeric", spec.numeric(), contract.numeric_inputs),
            (
                "categorical",
                OneHotEncoder(
                    categories=_category_lists(contract),
                    handle_unknown="ignore",
                    sparse_output=False,
                    dtype=np.float32,
                ),
                contract.categorical_inputs,
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", estimator)])


def float32_floor(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 not above each threshold.

    For every float32 x, `x <= t` holds exactly when `x <= float32_floor(t)`, so snapping split
    thresholds changes no decision of the fitted model on its float32 inputs, while ONNX (which
    stores thresholds as float32) then makes bit-for-bit the same decisions. Without it a
    threshold a hair below a real value (122.5499992 vs 122.55) rounds up and flips that row.
    """
    as32 = thresholds.astype(np.float32)
    above = as32.astype(np.float64) > thresholds
    as32[above] = np.nextafter(as32[above], np.float32(-np.inf))
    return as32.astype(np.float64)


def snap_thresholds_to_float32(estimator: ClassifierMixin) -> None:
    """Snap the split thresholds of fitted tree ensembles in place (see float32_floor)."""
    if isinstance(estimator, HistGradientBoostingClassifier):
        for predictors in estimator._predictors:
            for predictor in predictors:
                nodes = predictor.nodes
                nodes["num_threshold"] = float32_floor(nodes["num_threshold"])
    elif isinstance(estimator, RandomForestClassifier):
        for tree in estimator.estimators_:
            tree.tree_.threshold[:] = float32_floor(tree.tree_.threshold)


def fit_model(frame: pd.DataFrame, contract: Contract, model_params: ModelParams) -> Pipeline:
    """Fit on the model's view of `frame` (see contract.model_frame)."""
    model = build_model(model_params, contract)
    target = target_vector(frame, contract)
    if len(np.unique(target)) < 2:
        raise ModelConfigError(
            f"the training data has a single class in {contract.target!r}; cannot fit a classifier"
        )
    # One thread: OpenMP in HistGradientBoosting oversubscribes shared CI runners (a 1 s fit
    # took 49 s on a loaded 2-core machine); results are identical either way.
    with threadpool_limits(1):
        model.fit(model_frame(frame, contract), target)
    snap_thresholds_to_float32(model.named_steps["classifier"])
    return model


def save_model(model: Pipeline, path: str | Path) -> None:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    gio.write_bytes(path, buffer.getvalue())


def load_model(path: str | Path) -> Pipeline:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model file not found; run `dvc repro train` first")
    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling fails in many ways; all mean "not our model file"
        raise UserError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, Pipeline):
        raise UserError(f"{path}: not a scikit-learn Pipeline written by the train stage")
    return model


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", default=paths.TRAIN)
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--output", default=paths.MODEL_JOBLIB)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    model_params = ModelParams.from_params(load_params(args.params))
    contract = load_contract(args.contract)
    frame = gio.read_table(args.train)
    print(f"train: fitting {model_params.type} on {len(frame):,} rows", flush=True)
    model = fit_model(frame, contract, model_params)
    save_model(model, args.output)
    print(f"train: wrote {args.output} in {time.perf_counter() - started:.1f}s", flush=True)
    return 0
