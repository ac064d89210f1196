"""The model's view of the data: what the scikit-learn pipeline is fitted on and what ONNX
receives, built from a table by its contract.

Apart from `gitops_ml.contract` so that the server, which reads the contract but never a table,
does not import pandas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.contract import MISSING_CATEGORY, Contract


def text_categories(values: pd.Series) -> pd.Categorical:
    """Each value as its text (`str`), nulls as MISSING_CATEGORY, as a pandas categorical: a
    small integer code per row and each text once, where a string object per row would cost
    about 60 bytes. Values with the same text (1 and "1") are one category."""
    codes, uniques = pd.factorize(values)  # nulls: code -1, the last text below
    texts = np.array([*(str(value) for value in uniques), MISSING_CATEGORY], dtype=object)
    categories, category_of_text = np.unique(texts, return_inverse=True)
    return pd.Categorical.from_codes(category_of_text[codes], categories=pd.Index(categories))


def model_frame(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Feature columns exactly as the model sees them, in contract order, named by their
    ONNX input names (`Contract.onnx_inputs`): scikit-learn and ONNX take the same inputs.

    Numerics and bools become float32 (NaN = missing) so that scikit-learn is fitted on the same
    values ONNX will receive; categories become plain strings with MISSING_CATEGORY for nulls,
    held as a pandas categorical (`text_categories`).
    """
    columns: dict[str, Any] = {}
    for column in contract.features:
        values = frame[column.name]
        if column.is_categorical:
            columns[contract.onnx_inputs[column.name]] = text_categories(values)
        else:
            columns[contract.onnx_inputs[column.name]] = pd.to_numeric(
                values, errors="raise"
            ).to_numpy(dtype=np.float32, na_value=np.nan)
    return pd.DataFrame(columns, index=frame.index)


def target_vector(frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """The target as the model learns it: binary 0/1 int64 (the positive class is 1),
    multiclass the int64 index into `contract.classes`, regression float64."""
    values = frame[contract.target]
    if contract.task == "regression":
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64)
    if contract.task == "multiclass":
        index = {name: i for i, name in enumerate(contract.classes)}
        codes = values.astype(str).map(index)
        unknown = sorted(set(values.astype(str)[codes.isna()]))
        if unknown:
            raise ValueError(
                f"target {contract.target!r} has values {unknown[:10]} that are not in the "
                f"contract's classes {list(contract.classes)}"
            )
        return codes.to_numpy(dtype=np.int64)
    return values.astype(bool).to_numpy(dtype=np.int64)


def onnx_feeds(features: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """ONNX feeds (one [N, 1] input per feature) from a model_frame(), built per column."""
    feeds: dict[str, np.ndarray] = {}
    for column in contract.features:
        name = contract.onnx_inputs[column.name]
        values = features[name].to_numpy()
        if column.is_categorical:
            feeds[name] = values.astype(str).reshape(-1, 1)
        else:
            feeds[name] = values.astype(np.float32).reshape(-1, 1)
    return feeds
