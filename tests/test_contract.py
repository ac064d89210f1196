"""The data contract: each column once, with errors that name the file and the column, written
back as it was read, and the one view of the data the model is fitted on and ONNX receives."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gitops_ml.contract import (
    MISSING_CATEGORY,
    ContractError,
    contract_to_dict,
    model_frame,
    parse_contract,
    text_categories,
)

RAW: dict[str, Any] = {
    "name": "accounts",
    "columns": [
        {"name": "account id", "type": "category", "role": "id"},
        {"name": "opened", "type": "datetime", "role": "timestamp"},
        {"name": "balance-eur", "type": "float", "nullable": True, "checks": {"min": 0}},
        {"name": "plan", "type": "category", "checks": {"allowed": ["a", "b"]}, "slice": True},
        {"name": "active", "type": "bool"},
        {"name": "closed", "type": "bool", "role": "target", "positive": "yes"},
    ],
}


def _with(edit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    edit(raw)
    return raw


def test_roles_give_the_features_target_timestamp_and_slices() -> None:
    contract = parse_contract(RAW, "schema.yaml")

    assert contract.feature_names == ["balance-eur", "plan", "active"]
    assert contract.target == "closed" and contract.timestamp == "opened"
    assert [c.name for c in contract.slices] == ["plan"]


def test_a_contract_is_written_back_as_it_was_read() -> None:
    contract = parse_contract(RAW, "schema.yaml")

    assert parse_contract(contract_to_dict(contract), "again.yaml") == contract


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["columns"].append(dict(r["columns"][2])),
            "column 'balance-eur' is declared twice",
        ),
        (
            lambda r: r["columns"][2].update(type="decimal"),
            "column 'balance-eur' has type 'decimal'",
        ),
        (lambda r: r["columns"][3].update(role="label"), "column 'plan' has role 'label'"),
        (lambda r: r["columns"][2].update(positive="yes"), "are for the target column only"),
        (lambda r: r["columns"][1].update(role="feature"), "feature 'opened' is a datetime"),
        (lambda r: r.update(columns=[r["columns"][5]]), "declares no feature columns"),
        (lambda r: r.update(columns="none"), "expected a mapping with a 'columns' list"),
    ],
)
def test_a_contract_that_cannot_hold_is_refused_naming_the_file_and_column(
    edit: Any, message: str
) -> None:
    with pytest.raises(ContractError, match=rf"^schema\.yaml: .*{message}"):
        parse_contract(_with(edit), "schema.yaml")


def test_the_model_sees_features_only_numbers_as_float32_and_missing_categories_named() -> None:
    contract = parse_contract(RAW, "schema.yaml")
    frame = pd.DataFrame(
        {
            "account id": ["x", "y"],
            "opened": pd.to_datetime(["2025-01-01", "2025-01-02"]),
            "balance-eur": [12.5, None],
            "plan": ["a", None],
            "active": [True, False],
            "closed": [False, True],
        }
    )

    features = model_frame(frame, contract)

    assert list(features.columns) == [contract.onnx_inputs[n] for n in contract.feature_names]
    balance = features[contract.onnx_inputs["balance-eur"]]
    assert balance.dtype == np.float32 and np.isnan(balance.iloc[1])
    assert features[contract.onnx_inputs["plan"]].tolist() == ["a", MISSING_CATEGORY]
    assert features[contract.onnx_inputs["active"]].tolist() == [1.0, 0.0]


def test_categories_reach_the_model_as_their_text_held_as_codes() -> None:
    values = pd.Series([1, "1", None, "a", np.nan, MISSING_CATEGORY], dtype=object)

    categories = text_categories(values)

    assert isinstance(categories.dtype, pd.CategoricalDtype)
    assert categories.tolist() == [
        "1",
        "1",
        MISSING_CATEGORY,
        "a",
        MISSING_CATEGORY,
        MISSING_CATEGORY,
    ]
    assert sorted(categories.categories) == sorted({"1", "a", MISSING_CATEGORY})  # each text once
    assert categories.codes.itemsize == 1
