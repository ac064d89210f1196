"""What the drift check watches of a model and its outcomes, per task: one table.

A model's predictions are read in the shape `gitops_ml.tasks` gives them, from the ONNX model
or from the prediction log: binary the positive class's probability (n,), multiclass one
probability per class in `Contract.classes` order (n, k), regression the predicted value (n,).
The profile and the check then treat one column derived from them like a feature: the score
(binary) and the predicted value (regression) like a numeric feature, on the reference-quantile
grid; the predicted class (multiclass) like a categorical one, by its class shares.

Outcomes are read as the data spells the target (the contract's tokens for binary, a class as
written for multiclass, a number for regression) and kept as float codes, NaN while unknown:
binary 0/1, multiclass the index into `Contract.classes`, regression the value itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from gitops_ml.coercion import parse_column
from gitops_ml.contract import Contract
from gitops_ml.tasks import task_spec

Kind = Literal["numeric", "categorical"]
OutcomeKind = Literal["rate", "numeric", "categorical"]


def _as_is(predictions: np.ndarray, contract: Contract) -> np.ndarray:
    return predictions


def _predicted_class(predictions: np.ndarray, contract: Contract) -> np.ndarray:
    """The class with the highest probability (the first on a tie, as scikit-learn's predict);
    None (missing) for a row without probabilities (a log line that has none)."""
    unknown = np.isnan(predictions).any(axis=1)
    best = np.argmax(np.where(unknown[:, None], 0.0, predictions), axis=1)
    names = np.asarray(contract.classes, dtype=object)[best]
    names[unknown] = None
    return names


def _decided(predictions: np.ndarray, contract: Contract, threshold: float) -> np.ndarray:
    """The binary decision at the threshold, 1 or 0."""
    return (predictions >= threshold).astype(np.int64)


def _class_decided(predictions: np.ndarray, contract: Contract, threshold: float) -> np.ndarray:
    return _predicted_class(predictions, contract)


def _undecided(predictions: np.ndarray, contract: Contract, threshold: float) -> None:
    return None


def _numbers(values: pd.Series, contract: Contract) -> np.ndarray:
    return values.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)


def _class_index(values: pd.Series, contract: Contract) -> np.ndarray:
    """The index into the classes; NaN for a missing outcome and for a class not listed."""
    index = {name: float(i) for i, name in enumerate(contract.classes)}
    return values.astype("str").map(index).to_numpy(dtype=np.float64, na_value=np.nan)


def _unknown_as_none(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.asarray(values).astype(object)
    out[np.isnan(codes)] = None
    return out


def _flags(codes: np.ndarray, contract: Contract) -> np.ndarray:
    return _unknown_as_none(codes, codes == 1)


def _class_names(codes: np.ndarray, contract: Contract) -> np.ndarray:
    names = np.asarray(contract.classes, dtype=object)
    return _unknown_as_none(codes, names[np.nan_to_num(codes).astype(np.int64)])


def _values(codes: np.ndarray, contract: Contract) -> np.ndarray:
    return _unknown_as_none(codes, codes)


@dataclass(frozen=True)
class Watch:
    """The per-task facts of monitoring (see the module docstring)."""

    kind: Kind  # the watched column is profiled and compared like a feature of this kind
    watched: str  # what it is, for people
    logged: str  # the prediction log's key in "prediction" (the task's, gitops_ml.tasks)
    column: Callable[[np.ndarray, Contract], np.ndarray]  # predictions → the watched column
    # The label a prediction log writes beside the predictions (binary: at the threshold).
    label: Callable[[np.ndarray, Contract, float], np.ndarray | None]
    codes: Callable[[pd.Series, Contract], np.ndarray]  # the target as read → float codes
    values: Callable[[np.ndarray, Contract], np.ndarray]  # float codes → the target's values
    outcomes: OutcomeKind  # the target's reference: a rate, a quantile grid, class counts
    per_class: bool = False  # predictions hold one probability per class: (n, k)


WATCHES: dict[str, Watch] = {
    "binary": Watch(
        kind="numeric",
        watched="score",
        logged=task_spec("binary").logged,
        column=_as_is,
        label=_decided,
        codes=_numbers,
        values=_flags,
        outcomes="rate",
    ),
    "multiclass": Watch(
        kind="categorical",
        watched="predicted class",
        logged=task_spec("multiclass").logged,
        column=_predicted_class,
        label=_class_decided,
        codes=_class_index,
        values=_class_names,
        outcomes="categorical",
        per_class=True,
    ),
    "regression": Watch(
        kind="numeric",
        watched="predicted value",
        logged=task_spec("regression").logged,
        column=_as_is,
        label=_undecided,
        codes=_numbers,
        values=_values,
        outcomes="numeric",
    ),
}


def watch(contract: Contract) -> Watch:
    """The row of the contract's task."""
    return WATCHES[contract.task]


def watched_column(predictions: np.ndarray, contract: Contract) -> np.ndarray:
    """The column the check compares: the score, the predicted class or the predicted value."""
    return watch(contract).column(predictions, contract)


def outcome_codes(values: pd.Series, contract: Contract) -> tuple[np.ndarray, np.ndarray]:
    """(codes, bad): the target as the data spells it, read with the contract's encoding and
    its target type, as float codes (NaN = not known yet); `bad` marks values that are not a
    value of the target (a word where a number belongs, a class the contract does not list)."""
    target = contract.column(contract.target)
    parsed = parse_column(values.reset_index(drop=True), target.type, contract.encoding)
    codes = watch(contract).codes(parsed.values, contract)
    present = parsed.values.notna().to_numpy()
    return codes, parsed.bad | (present & np.isnan(codes))


def outcome_values(codes: np.ndarray, contract: Contract) -> np.ndarray:
    """Float codes back to the target's values (binary True/False, a class, a number), None
    where unknown: what a labelled table holds."""
    return watch(contract).values(codes, contract)


def classes_hint(contract: Contract) -> str:
    """ "; its classes are [...]" for an error about a multiclass outcome, else ""."""
    return f"; its classes are {list(contract.classes)}" if contract.classes else ""
