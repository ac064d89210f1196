"""train: the estimator registry per (model.type, task), hyperparameter checks and
float32-exact thresholds."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from project_fixtures import CONTRACT_PATH, TaskFixture, task_fixture
from sklearn.base import is_classifier, is_regressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score

from gitops_ml.cli import main
from gitops_ml.config import ModelParams
from gitops_ml.contract import Contract
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.pipeline.train import (
    REGISTRY,
    ModelConfigError,
    build_model,
    fit_model,
    fit_pipeline,
    float32_floor,
    model_types,
)
from gitops_ml.synthetic import generate_churn
from gitops_ml.tasks import TASKS, predictions

LINEAR = {
    "binary": "logistic_regression",
    "multiclass": "logistic_regression",
    "regression": "ridge",
}


@pytest.fixture(scope="module")
def wine() -> TaskFixture:
    return task_fixture("multiclass")


@pytest.fixture(scope="module")
def diabetes() -> TaskFixture:
    return task_fixture("regression")


def task_contract(task: str, contract: Contract) -> Contract:
    """The fixture contract of `task` (churn's for binary)."""
    return contract if task == "binary" else task_fixture(task).contract


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_has_boosting_a_forest_and_its_linear_model(task: str) -> None:
    assert model_types(task) == sorted(["hist_gradient_boosting", "random_forest", LINEAR[task]])


@pytest.mark.parametrize(("model_type", "task"), sorted(REGISTRY))
def test_the_contracts_task_picks_a_classifier_or_a_regressor(
    model_type: str, task: str, contract: Contract
) -> None:
    model = build_model(
        ModelParams(type=model_type, seed=0, hyperparams={}), task_contract(task, contract)
    )
    classification = TASKS[task].classification
    assert is_classifier(model[-1]) is classification
    assert is_regressor(model[-1]) is not classification
    assert model.steps[-1][0] == ("classifier" if classification else "regressor")


@pytest.mark.parametrize(
    ("model_type", "task"), [("logistic_regression", "regression"), ("ridge", "multiclass")]
)
def test_a_linear_model_of_the_other_kind_is_refused_with_the_valid_names(
    model_type: str, task: str, contract: Contract
) -> None:
    with pytest.raises(ModelConfigError) as caught:
        build_model(
            ModelParams(type=model_type, seed=0, hyperparams={}), task_contract(task, contract)
        )
    assert str(caught.value) == (
        f"params.yaml: model.type {model_type!r} is for "
        f"{'regression' if task != 'regression' else 'binary, multiclass'} tasks, not {task}; "
        f"for the contract's task {task} choose one of {model_types(task)}"
    )


def test_unknown_model_type_names_the_choices(contract: Contract) -> None:
    with pytest.raises(ModelConfigError, match=r"model.type 'xgboost'.*hist_gradient_boosting"):
        build_model(ModelParams(type="xgboost", seed=0, hyperparams={}), contract)


def test_unknown_hyperparameter_is_rejected_with_the_valid_names(contract: Contract) -> None:
    with pytest.raises(ModelConfigError, match=r"\['n_trees'\].*valid: .*max_iter"):
        build_model(
            ModelParams(type="hist_gradient_boosting", seed=0, hyperparams={"n_trees": 10}),
            contract,
        )


def test_out_of_range_hyperparameter_is_rejected_before_fitting(contract: Contract) -> None:
    with pytest.raises(ModelConfigError, match="learning_rate"):
        build_model(
            ModelParams(type="hist_gradient_boosting", seed=0, hyperparams={"learning_rate": -1.0}),
            contract,
        )


def test_out_of_range_hyperparameter_of_a_regressor_is_rejected(diabetes: TaskFixture) -> None:
    with pytest.raises(
        ModelConfigError, match=r"model.hyperparams of ridge: The 'alpha' parameter"
    ):
        build_model(
            ModelParams(type="ridge", seed=0, hyperparams={"alpha": -1.0}), diabetes.contract
        )


def test_parameters_that_do_not_go_together_are_rejected_before_fitting(
    contract: Contract,
) -> None:
    """Each value is valid on its own; scikit-learn refuses the pair when `fit` starts."""
    with pytest.raises(ModelConfigError, match=r"lbfgs supports only 'l2' or None penalties"):
        build_model(
            ModelParams(type="logistic_regression", seed=0, hyperparams={"penalty": "l1"}),
            contract,
        )


def test_seed_and_hyperparameters_reach_the_estimator(contract: Contract) -> None:
    model = build_model(
        ModelParams(type="random_forest", seed=123, hyperparams={"n_estimators": 7}), contract
    )
    estimator = model[-1]
    assert estimator.random_state == 123
    assert estimator.n_estimators == 7


def test_training_data_with_one_class_is_a_clear_error(contract: Contract) -> None:
    frame = generate_churn(300, seed=1)
    frame["churned"] = False
    with pytest.raises(ModelConfigError, match="single class"):
        fit_model(frame, contract, ModelParams(type="logistic_regression", seed=0, hyperparams={}))


@pytest.mark.parametrize("model_type", model_types("multiclass"))
def test_a_multiclass_model_gives_one_probability_per_class_in_the_contracts_order(
    model_type: str, wine: TaskFixture
) -> None:
    train, test = wine.split()
    model = fit_model(train, wine.contract, ModelParams(type=model_type, seed=0, hyperparams={}))
    features = model_frame(test, wine.contract)
    p = predictions(model, features, "multiclass")
    assert list(model[-1].classes_) == [0, 1, 2]  # one estimator, natively multiclass
    assert p.shape == (len(test), len(wine.contract.classes))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    accuracy = np.mean(p.argmax(axis=1) == target_vector(test, wine.contract))
    assert accuracy > 0.85  # the three cultivars are well separated: a real model, not noise


@pytest.mark.parametrize("model_type", model_types("regression"))
def test_a_regressor_predicts_the_target_better_than_its_mean(
    model_type: str, diabetes: TaskFixture
) -> None:
    train, test = diabetes.split()
    model = fit_model(
        train, diabetes.contract, ModelParams(type=model_type, seed=0, hyperparams={})
    )
    predicted = predictions(model, model_frame(test, diabetes.contract), "regression")
    assert r2_score(target_vector(test, diabetes.contract), predicted) > 0.2


def test_a_class_without_training_rows_is_named_with_the_choices(wine: TaskFixture) -> None:
    train, _ = wine.split()
    without = train[train["cultivar"] != "class_2"]
    with pytest.raises(ModelConfigError) as caught:
        fit_model(without, wine.contract, ModelParams(type="random_forest", seed=0, hyperparams={}))
    assert str(caught.value) == (
        "the training data has no rows of class(es) ['class_2'] of 'cultivar'; every class of "
        "the contract needs training rows: merge the class into another, drop its rows, "
        "or add data"
    )


def test_a_constant_regression_target_is_a_clear_error(diabetes: TaskFixture) -> None:
    train, _ = diabetes.split()
    with pytest.raises(ModelConfigError, match="single value in 'progression'"):
        fit_model(
            train.assign(progression=100),
            diabetes.contract,
            ModelParams(type="ridge", seed=0, hyperparams={}),
        )


def test_a_forest_regressors_thresholds_are_float32_exact(diabetes: TaskFixture) -> None:
    train, _ = diabetes.split()
    model = fit_model(
        train,
        diabetes.contract,
        ModelParams(type="random_forest", seed=0, hyperparams={"n_estimators": 5}),
    )
    forest = model[-1]
    assert isinstance(forest, RandomForestRegressor)
    for tree in forest.estimators_:
        thresholds = tree.tree_.threshold
        np.testing.assert_array_equal(thresholds.astype(np.float32), thresholds)


@pytest.mark.parametrize(
    ("model_type", "dtype"),
    [("hist_gradient_boosting", np.float64), ("random_forest", np.float32)],
)
def test_the_estimator_gets_its_input_in_the_dtype_it_fits_in(
    contract: Contract, model_type: str, dtype: type
) -> None:
    """Boosting bins float64 and a forest splits float32: the encoded matrix reaches each as it
    is, not as a converted copy as large as the data."""
    frame = generate_churn(500, seed=1)
    params = ModelParams(type=model_type, seed=0, hyperparams={})
    model = fit_model(frame, contract, params)

    assert model[:-1].transform(model_frame(frame, contract)).dtype == dtype


def test_float64_one_hot_columns_fit_the_same_boosted_trees_as_float32(
    contract: Contract,
) -> None:
    frame = generate_churn(1500, seed=3)
    features, target = model_frame(frame, contract), target_vector(frame, contract)
    params = ModelParams(type="hist_gradient_boosting", seed=5, hyperparams={"max_iter": 30})
    as_float32 = build_model(params, contract).set_params(preprocess__categorical__dtype=np.float32)

    expected = as_float32.fit(features, target).predict_proba(features)

    got = fit_model(frame, contract, params).predict_proba(features)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("model_type", ["hist_gradient_boosting", "logistic_regression"])
def test_fitting_step_by_step_on_rows_is_pipeline_fit_on_those_rows(
    contract: Contract, model_type: str
) -> None:
    frame = generate_churn(800, seed=4)
    features, target = model_frame(frame, contract), target_vector(frame, contract)
    rows = np.arange(0, 800, 3)
    params = ModelParams(type=model_type, seed=1, hyperparams={})
    expected = build_model(params, contract).fit(features.iloc[rows], target[rows])

    got = fit_pipeline(build_model(params, contract), features, target, rows)

    np.testing.assert_array_equal(got.predict_proba(features), expected.predict_proba(features))


def test_fits_side_by_side_build_their_input_matrices_one_at_a_time(contract: Contract) -> None:
    """Building a matrix briefly holds it twice: two builds at once would double that peak."""
    frame = generate_churn(300, seed=2)
    features, target = model_frame(frame, contract), target_vector(frame, contract)
    params = ModelParams(type="hist_gradient_boosting", seed=0, hyperparams={"max_iter": 2})
    lock, building, most = threading.Lock(), [0], [0]

    def model() -> Any:
        pipeline = build_model(params, contract)
        build = pipeline[0].fit_transform

        def counted(*args: Any, **kwargs: Any) -> Any:
            with lock:
                building[0] += 1
                most[0] = max(most[0], building[0])
            time.sleep(0.05)  # long enough for the other thread to start its build
            try:
                return build(*args, **kwargs)
            finally:
                with lock:
                    building[0] -= 1

        pipeline[0].fit_transform = counted
        return pipeline

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda m: fit_pipeline(m, features, target), [model(), model()]))

    assert most[0] == 1


def test_same_seed_gives_identical_predictions(contract: Contract) -> None:
    frame = generate_churn(1500, seed=3)
    params = ModelParams(type="hist_gradient_boosting", seed=5, hyperparams={"max_iter": 30})
    first = fit_model(frame, contract, params)
    second = fit_model(frame, contract, params)
    from gitops_ml.model_view import model_frame

    features = model_frame(frame, contract)
    np.testing.assert_array_equal(first.predict_proba(features), second.predict_proba(features))


@given(
    x=st.floats(width=32, allow_nan=False, allow_infinity=False),
    t=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30),
)
def test_float32_floor_keeps_every_float32_decision(x: float, t: float) -> None:
    snapped = float32_floor(np.array([t]))[0]
    assert np.float32(snapped) == snapped  # exactly representable: ONNX stores the same value
    assert (np.float64(np.float32(x)) <= t) == (np.float64(np.float32(x)) <= snapped)


def test_train_cli_reports_bad_model_type_without_traceback(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("model:\n  type: magic\n  seed: 1\n  hyperparams: {}\n")
    train = tmp_path / "train.parquet"
    generate_churn(200, seed=2).to_parquet(train)
    output = tmp_path / "model.joblib"
    paths = ["--params", str(params), "--train", str(train), "--output", str(output)]
    code = main(["train", *paths, "--contract", str(CONTRACT_PATH)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: params.yaml: model.type 'magic' is not registered")
    assert "Traceback" not in err


def test_a_misspelt_params_key_names_the_file_the_key_and_the_nearest_valid_name(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("model:\n  type: random_forest\n  seed: 1\n  hyperparameters: {}\n")
    code = main(["train", "--params", str(params), "--contract", str(CONTRACT_PATH)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"error: {params}: unknown key 'model.hyperparameters' (did you mean 'hyperparams'?); "
        "valid in 'model': type, seed, hyperparams\n"
    )


def test_corrupt_model_file_is_a_clear_error(tmp_path) -> None:
    from gitops_ml.errors import UserError
    from gitops_ml.pipeline.train import load_model

    broken = tmp_path / "model.joblib"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(UserError, match=r"model\.joblib: cannot load the model"):
        load_model(broken)


def test_a_seed_among_the_hyperparameters_is_refused_in_favour_of_model_seed(
    contract: Contract,
) -> None:
    with pytest.raises(ModelConfigError) as caught:
        build_model(
            ModelParams(type="random_forest", seed=1, hyperparams={"random_state": 7}), contract
        )
    assert str(caught.value) == (
        "params.yaml: model.hyperparams.random_state is the seed; set it as model.seed"
    )
