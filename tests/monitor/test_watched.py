"""The per-task table of what the drift check watches: the column compared and the outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from project_fixtures import task_fixture

from gitops_ml.monitor.watched import outcome_codes, watched_column


def test_the_predicted_class_is_the_most_probable_and_missing_without_probabilities() -> None:
    contract = task_fixture("multiclass").contract
    probabilities = np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2], [np.nan] * 3, [0.1, 0.1, 0.8]])
    assert watched_column(probabilities, contract).tolist() == [
        "class_1",
        "class_0",  # a tie goes to the first class, as scikit-learn's predict
        None,
        "class_2",
    ]


def test_a_regression_model_is_watched_by_its_predicted_value() -> None:
    contract = task_fixture("regression").contract
    values = np.array([151.0, np.nan, 75.5])
    np.testing.assert_array_equal(watched_column(values, contract), values)


def test_outcome_codes_mark_values_the_target_cannot_have() -> None:
    contract = task_fixture("multiclass").contract
    codes, bad = outcome_codes(pd.Series(["class_2", None, "class_9", "class_0"]), contract)
    np.testing.assert_array_equal(codes, [2.0, np.nan, np.nan, 0.0])
    assert bad.tolist() == [False, False, True, False]
