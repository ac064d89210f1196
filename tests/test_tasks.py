"""The task a contract declares: parsing, refusals that say what to write, the target as learned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor

from gitops_ml.contract import ContractError, contract_to_dict, parse_contract
from gitops_ml.model_view import target_vector
from gitops_ml.tasks import ONNX_OUTPUTS, TASKS, predictions, task_spec


def contract_with(target: dict) -> dict:
    return {"columns": [{"name": "x", "type": "float"}, {"role": "target", **target}]}


def test_a_contract_without_a_task_is_binary_as_before() -> None:
    contract = parse_contract(contract_with({"name": "y", "type": "bool"}))
    assert contract.task == "binary"
    assert contract.classes == ()


def test_multiclass_classes_keep_their_order_and_the_target_is_their_index() -> None:
    contract = parse_contract(
        contract_with(
            {"name": "y", "type": "category", "task": "multiclass", "classes": ["lo", "mid", "hi"]}
        )
    )
    assert contract.classes == ("lo", "mid", "hi")
    frame = pd.DataFrame({"y": ["hi", "lo", "mid", "hi"]})
    assert target_vector(frame, contract).tolist() == [2, 0, 1, 2]
    assert contract_to_dict(contract)["columns"][1]["classes"] == ["lo", "mid", "hi"]


def test_integer_classes_are_spelt_as_the_data_writes_them() -> None:
    contract = parse_contract(
        contract_with({"name": "y", "type": "int", "task": "multiclass", "classes": [3, 1, 2]})
    )
    assert contract.classes == ("3", "1", "2")
    assert target_vector(pd.DataFrame({"y": [1, 2, 3]}), contract).tolist() == [1, 2, 0]
    assert contract_to_dict(contract)["columns"][1]["classes"] == [3, 1, 2]


def test_a_value_outside_the_classes_is_named() -> None:
    contract = parse_contract(
        contract_with(
            {"name": "y", "type": "category", "task": "multiclass", "classes": list("abc")}
        )
    )
    with pytest.raises(ValueError, match=r"\['z'\]"):
        target_vector(pd.DataFrame({"y": ["a", "z"]}), contract)


def test_a_regression_target_is_its_numbers() -> None:
    contract = parse_contract(contract_with({"name": "y", "type": "int", "task": "regression"}))
    assert target_vector(pd.DataFrame({"y": [3, 140]}), contract).dtype == np.float64


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"name": "y", "type": "float"}, "task: regression"),
        ({"name": "y", "type": "float", "task": "binary"}, "a binary target is bool"),
        (
            {"name": "y", "type": "bool", "task": "regression"},
            "a regression target is float or int",
        ),
        ({"name": "y", "type": "category", "task": "multiclass"}, "needs 'classes'"),
        (
            {"name": "y", "type": "category", "task": "multiclass", "classes": ["a", "b"]},
            "two classes are task binary",
        ),
        (
            {"name": "y", "type": "category", "task": "multiclass", "classes": ["a", "b", "a"]},
            r"\['a'\] more than once",
        ),
        ({"name": "y", "type": "float", "task": "regression", "positive": "1"}, "binary target"),
        ({"name": "y", "type": "bool", "classes": ["a", "b", "c"]}, "multiclass target"),
        ({"name": "y", "type": "float", "task": "ranking"}, "not one of"),
    ],
)
def test_a_target_that_does_not_fit_its_task_is_refused_with_what_to_write(
    target: dict, message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        parse_contract(contract_with(target), "s.yaml")


def test_task_keys_belong_to_the_target() -> None:
    raw = contract_with({"name": "y", "type": "bool"})
    raw["columns"][0]["task"] = "regression"
    with pytest.raises(ContractError, match="target column only"):
        parse_contract(raw, "s.yaml")


def test_predictions_have_the_shape_each_task_promises() -> None:
    features = np.zeros((4, 1))
    binary = DummyClassifier(strategy="prior").fit(features, [0, 1, 1, 1])
    multiclass = DummyClassifier(strategy="prior").fit(features, [0, 1, 2, 2])
    regressor = DummyRegressor().fit(features, [1.0, 2.0, 3.0, 6.0])
    assert predictions(binary, features, "binary").tolist() == [0.75] * 4
    assert predictions(multiclass, features, "multiclass").shape == (4, 3)
    assert predictions(regressor, features, "regression").tolist() == [3.0] * 4


def test_no_input_may_take_an_output_name_of_any_task() -> None:
    assert set(ONNX_OUTPUTS) == {n for spec in TASKS.values() for n in spec.onnx_outputs}
    with pytest.raises(KeyError, match="choose one of"):
        task_spec("ranking")
