"""train: fit the estimator of `model.type` for the contract's task inside a scikit-learn Pipeline.

Feature engineering lives in the Pipeline (ColumnTransformer), so the exported ONNX graph takes
the raw contract columns and serving needs no preprocessing code. Every transformer used here
converts with skl2onnx; numeric preprocessing is chosen per estimator so that ONNX parity holds
(histogram gradient boosting takes NaN natively; a float32 imputer in front of trees would flip
labels after conversion, so random forests get a constant far outside every real value).
"""

from __future__ import annotations

import argparse
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import ModelParams, load_params
from gitops_ml.contract import MISSING_CATEGORY, Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.tasks import TASKS, task_spec

# A constant no real feature takes; exactly representable in float32, so no flips after export.
RANDOM_FOREST_MISSING_VALUE = -1.0e9
# Held while a fit builds its estimator's input matrix (fit_pipeline): fits side by side in this
# process build one matrix at a time.
_BUILDING = threading.Lock()


class ModelConfigError(UserError):
    """`model.type` or `model.hyperparams` in params.yaml is not usable."""


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


def _snap_hist_gradient_boosting(estimator: Any) -> None:
    # `_predictors` is private: HistGradientBoosting offers no public view of its trees, and
    # skl2onnx reads the same attribute to convert them. Without the snap, parity fails (label
    # flips, jumps in a regressor's prediction); it stays until scikit-learn exposes the trees.
    for predictors in estimator._predictors:
        for predictor in predictors:
            nodes = predictor.nodes
            nodes["num_threshold"] = float32_floor(nodes["num_threshold"])


def _snap_random_forest(estimator: Any) -> None:
    for tree in estimator.estimators_:
        tree.tree_.threshold[:] = float32_floor(tree.tree_.threshold)


def _no_thresholds(estimator: Any) -> None:
    """A linear model has no split thresholds to snap."""


def _passthrough() -> str:
    """Histogram gradient boosting takes NaN natively: numbers reach it as they are."""
    return "passthrough"


def _far_constant() -> SimpleImputer:
    """Random forests need a value for NaN: one far outside every real value (module docstring)."""
    return SimpleImputer(strategy="constant", fill_value=RANDOM_FOREST_MISSING_VALUE)


def _median_scaled() -> Pipeline:
    """Linear models: missing values get the median, then every number is standardised."""
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


@dataclass(frozen=True)
class ModelSpec:
    estimator: Callable[[], BaseEstimator]
    numeric: Callable[[], Any]  # numeric preprocessing step ("passthrough" or a transformer)
    snap: Callable[[Any], None]  # makes a fitted model's thresholds float32-exact (export)
    seed_param: str = "random_state"
    # The one-hot columns' dtype: the one the estimator fits in, so that the encoded matrix
    # reaches it without a converted copy (histogram gradient boosting bins float64, which
    # holds every float32 number and 0/1 exactly: the same bins, the same trees).
    encoded: type[np.floating[Any]] = np.float32


CLASSIFICATION = tuple(name for name, spec in TASKS.items() if spec.classification)

# The estimator per (model.type, task). Classification tasks share their classifier, which
# handles many classes natively; the linear type is named for what it fits: logistic_regression
# for the classification tasks, ridge for regression.
REGISTRY: dict[tuple[str, str], ModelSpec] = {
    **{
        ("hist_gradient_boosting", task): ModelSpec(
            HistGradientBoostingClassifier,
            _passthrough,
            _snap_hist_gradient_boosting,
            encoded=np.float64,
        )
        for task in CLASSIFICATION
    },
    **{
        ("random_forest", task): ModelSpec(
            lambda: RandomForestClassifier(n_jobs=1), _far_constant, _snap_random_forest
        )
        for task in CLASSIFICATION
    },
    **{
        ("logistic_regression", task): ModelSpec(
            lambda: LogisticRegression(max_iter=1000), _median_scaled, _no_thresholds
        )
        for task in CLASSIFICATION
    },
    ("hist_gradient_boosting", "regression"): ModelSpec(
        HistGradientBoostingRegressor,
        _passthrough,
        _snap_hist_gradient_boosting,
        encoded=np.float64,
    ),
    ("random_forest", "regression"): ModelSpec(
        lambda: RandomForestRegressor(n_jobs=1), _far_constant, _snap_random_forest
    ),
    ("ridge", "regression"): ModelSpec(Ridge, _median_scaled, _no_thresholds),
}


def model_types(task: str) -> list[str]:
    """The `model.type` names there are for `task`."""
    return sorted(name for name, registered in REGISTRY if registered == task)


def model_spec(model_type: str, task: str) -> ModelSpec:
    """The registry row for `model.type` and the contract's task, or an error naming the
    model types that task has."""
    spec = REGISTRY.get((model_type, task))
    if spec is not None:
        return spec
    tasks = [registered for name, registered in REGISTRY if name == model_type]
    why = f"is for {', '.join(tasks)} tasks, not {task}" if tasks else "is not registered"
    raise ModelConfigError(
        f"params.yaml: model.type {model_type!r} {why}; for the contract's task {task} "
        f"choose one of {model_types(task)}"
    )


class _DataReached(Exception):
    """The estimator's `fit` accepted its parameters and began to read the data."""


class _NoData:
    """Stands in for X and y in a `fit` that must stop before any fitting: scikit-learn checks
    an estimator's parameters when `fit` starts, before it first looks at the data."""

    def __getattr__(self, name: str) -> Any:
        raise _DataReached

    def __len__(self) -> int:
        raise _DataReached

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise _DataReached


def check_hyperparameters(estimator: BaseEstimator, model_type: str) -> None:
    """scikit-learn's own check of the estimator's parameters, through its public `fit`:
    each value against its rule, and the rules between parameters (a solver that does not
    support a penalty), with scikit-learn's message naming the parameter and the rule."""
    try:
        clone(estimator).fit(_NoData(), _NoData())
    except _DataReached:
        return
    except (ValueError, TypeError) as exc:
        raise ModelConfigError(f"params.yaml: model.hyperparams of {model_type}: {exc}") from None
    raise AssertionError(f"{type(estimator).__name__}.fit read no data")  # pragma: no cover


def _category_lists(contract: Contract) -> list[list[str]] | str:
    """Fixed one-hot categories from the contract (plus "missing"), so encodings never depend
    on which categories happen to occur in the training window."""
    columns = [contract.column(name) for name in contract.categorical_features]
    if all(c.checks.allowed for c in columns):
        return [sorted({*(c.checks.allowed or ()), MISSING_CATEGORY}) for c in columns]
    return "auto"


def build_model(model_params: ModelParams, contract: Contract) -> Pipeline:
    """The unfitted Pipeline for `model.type` and the contract's task, with hyperparameters
    checked before any fitting. The last step is named `classifier` or `regressor`."""
    spec = model_spec(model_params.type, contract.task)
    estimator = spec.estimator()
    known = estimator.get_params()
    unknown = sorted(set(model_params.hyperparams) - set(known))
    if unknown:
        raise ModelConfigError(
            f"params.yaml: model.hyperparams {unknown} are not parameters of {model_params.type}; "
            f"valid: {sorted(k for k in known if k != spec.seed_param)}"
        )
    if spec.seed_param in model_params.hyperparams:
        raise ModelConfigError(
            f"params.yaml: model.hyperparams.{spec.seed_param} is the seed; set it as model.seed"
        )
    estimator.set_params(**model_params.hyperparams, **{spec.seed_param: model_params.seed})
    check_hyperparameters(estimator, model_params.type)
    preprocess = ColumnTransformer(
        [
            ("numeric", spec.numeric(), contract.numeric_inputs),
            (
                "categorical",
                OneHotEncoder(
                    categories=_category_lists(contract),
                    handle_unknown="ignore",
                    sparse_output=False,
                    dtype=spec.encoded,
                ),
                contract.categorical_inputs,
            ),
        ],
        verbose_feature_names_out=False,
    )
    step = "classifier" if is_classifier(estimator) else "regressor"
    return Pipeline([("preprocess", preprocess), (step, estimator)])


def _check_target(target: np.ndarray, contract: Contract) -> None:
    """Classification needs training rows of every class (a class without rows would drop a
    column from the probabilities); regression needs more than one value."""
    name = contract.target
    if not task_spec(contract.task).classification:
        if len(np.unique(target)) < 2:
            raise ModelConfigError(
                f"the training data has a single value in {name!r}; cannot fit a regressor"
            )
        return
    present = np.unique(target)
    if len(present) < 2:
        raise ModelConfigError(
            f"the training data has a single class in {name!r}; cannot fit a classifier"
        )
    absent = [c for i, c in enumerate(contract.classes) if i not in present]
    if absent:
        raise ModelConfigError(
            f"the training data has no rows of class(es) {absent} of {name!r}; every class of "
            "the contract needs training rows: merge the class into another, drop its rows, "
            "or add data"
        )


def training_columns(contract: Contract) -> list[str]:
    """The columns a fit reads (its features and target): the others of the training table
    need not be read at all."""
    return [*contract.feature_names, contract.target]


@dataclass(frozen=True)
class ModelRows:
    """Rows as a fit takes them: the features in the model's view (model_view.model_frame) and
    their target (model_view.target_vector). Built once, the raw table they came from can go."""

    features: pd.DataFrame
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def model_rows(frame: pd.DataFrame, contract: Contract) -> ModelRows:
    return ModelRows(model_frame(frame, contract), target_vector(frame, contract))


def fit_model(frame: pd.DataFrame, contract: Contract, model_params: ModelParams) -> Pipeline:
    """Fit on the model's view of `frame` (see model_view.model_frame)."""
    rows = model_rows(frame, contract)
    return fit_features(rows.features, rows.target, contract, model_params)


def fit_features(
    features: pd.DataFrame,
    target: np.ndarray,
    contract: Contract,
    model_params: ModelParams,
    rows: np.ndarray | None = None,
) -> Pipeline:
    """Fit on `rows` (default: all) of features already in the model's view
    (model_view.model_frame) and their target (model_view.target_vector): the evaluate stage's
    refits take rows of one shared view."""
    model = build_model(model_params, contract)
    _check_target(target if rows is None else target[rows], contract)
    fit_pipeline(model, features, target, rows)
    model_spec(model_params.type, contract.task).snap(model[-1])
    return model


def fit_pipeline(
    model: Pipeline, features: pd.DataFrame, target: np.ndarray, rows: np.ndarray | None = None
) -> Pipeline:
    """`model.fit` on `rows` (default: all) of `features` and `target`, step by step so that
    fits side by side hold less: building the estimator's input matrix briefly takes about
    twice the matrix (the one-hot block is stacked with the numbers into a new array), so it
    is done under a lock, one build at a time in this process, and the selected rows are gone
    before the estimator fits on the matrix. The fitted steps are the ones `model.fit` makes."""
    # One thread: OpenMP in HistGradientBoosting oversubscribes shared CI runners (a 1 s fit
    # took 49 s on a loaded 2-core machine); results are identical either way.
    with threadpool_limits(1):
        with _BUILDING:
            if rows is not None:
                features, target = features.iloc[rows], target[rows]
            matrix = model[:-1].fit_transform(features, target)
            del features
        model[-1].fit(matrix, target)
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
    # Every training row at once (the estimator fits on all of them), but no other column.
    frame = gio.read_table(
        args.train, columns=training_columns(contract), categorical=contract.categorical_features
    )
    print(f"train: fitting {model_params.type} on {len(frame):,} rows", flush=True)
    model = fit_model(frame, contract, model_params)
    save_model(model, args.output)
    print(f"train: wrote {args.output} in {time.perf_counter() - started:.1f}s", flush=True)
    return 0
