"""train: the estimator registry, hyperparameter checks and float32-exact thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from project_fixtures import CONTRACT_PATH

from gitops_ml.cli import main
from gitops_ml.config import ModelParams
from gitops_ml.contract import Contract
from gitops_ml.pipeline.train import (
    REGISTRY,
    ModelConfigError,
    build_model,
    fit_model,
    float32_floor,
)
from gitops_ml.synthetic import generate_churn


def test_registry_offers_the_three_documented_model_types() -> None:
    assert {"hist_gradient_boosting", "random_forest", "logistic_regression"} <= set(REGISTRY)


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


def test_seed_and_hyperparameters_reach_the_estimator(contract: Contract) -> None:
    model = build_model(
        ModelParams(type="random_forest", seed=123, hyperparams={"n_estimators": 7}), contract
    )
    estimator = model.named_steps["classifier"]
    assert estimator.random_state == 123
    assert estimator.n_estimators == 7


def test_training_data_with_one_class_is_a_clear_error(contract: Contract) -> None:
    frame = generate_churn(300, seed=1)
    frame["churned"] = False
    with pytest.raises(ModelConfigError, match="single class"):
        fit_model(frame, contract, ModelParams(type="logistic_regression", seed=0, hyperparams={}))


def test_same_seed_gives_identical_predictions(contract: Contract) -> None:
    frame = generate_churn(1500, seed=3)
    params = ModelParams(type="hist_gradient_boosting", seed=5, hyperparams={"max_iter": 30})
    first = fit_model(frame, contract, params)
    second = fit_model(frame, contract, params)
    from gitops_ml.contract import model_frame

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
