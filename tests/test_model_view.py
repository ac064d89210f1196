"""The one view of the data the model is fitted on and ONNX receives: features only, numbers as
float32, categories as their text held as codes, missing categories named."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_contract import RAW

from gitops_ml.contract import MISSING_CATEGORY, parse_contract
from gitops_ml.model_view import model_frame, text_categories


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
