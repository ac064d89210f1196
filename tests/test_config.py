"""params.yaml is read by pydantic models: strict types, no unknown key, frozen sections, and
every complaint told as file, dotted key, what was expected and what was found."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
import yaml

from gitops_ml.config import ConfigError, EvaluateParams, ModelParams, SplitParams, load_params
from gitops_ml.review.gates import GateParams

EVALUATE = {
    "threshold": 0.5,
    "bootstrap_samples": 100,
    "cv_folds": 5,
    "seed": 1,
    "costs": {"false_positive": 25, "false_negative": 250.0},
    "refits": 0,
    "refit_fraction": 0.95,
    "jobs": "auto",
}


def evaluate_with(**changes: Any) -> dict[str, Any]:
    return {"evaluate": {**EVALUATE, **changes}}


def test_a_section_is_a_typed_frozen_model() -> None:
    params = EvaluateParams.from_params(evaluate_with())

    assert params.costs is not None and params.costs.false_positive == 25.0
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        params.seed = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": True}, r"'evaluate\.seed' must be a whole number, got True"),
        ({"seed": "1"}, r"'evaluate\.seed' must be a whole number, got '1'"),
        ({"threshold": "high"}, r"'evaluate\.threshold' must be a number, got 'high'"),
        ({"threshold": float("nan")}, r"'evaluate\.threshold' must be finite, got nan"),
        ({"costs": [25, 250]}, r"'evaluate\.costs' must be a mapping, got \[25, 250\]"),
        ({"seed": None}, r"^params\.yaml: 'evaluate\.seed' is required$"),
        ({"jobs": "all"}, r"'evaluate\.jobs': must be 'auto' or a whole number, got 'all'"),
        ({"jobs": 2.0}, r"'evaluate\.jobs': must be 'auto' or a whole number, got 2\.0"),
        ({"jobs": 0}, r"'evaluate\.jobs' must be 'auto' or at least 1, got 0"),
        (
            {"costs": {"false_positiv": 1.0, "false_negative": 2.0}},
            r"unknown key 'evaluate\.costs\.false_positiv' \(did you mean 'false_positive'\?\); "
            r"valid in 'evaluate\.costs': false_positive, false_negative",
        ),
    ],
    ids=[
        "bool-as-int",
        "text-as-int",
        "text-as-number",
        "nan",
        "list-as-mapping",
        "empty",
        "jobs-text",
        "jobs-float",
        "jobs-zero",
        "typo",
    ],
)
def test_a_wrong_value_names_the_dotted_key_the_expectation_and_the_value(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        EvaluateParams.from_params(evaluate_with(**changes))


def test_a_key_is_read_by_its_name_in_the_file_only(tmp_path: Any) -> None:
    """`min` is the file's word for the gate floors; the attribute's name is not a synonym."""
    floors = {"gates": {"binary": {"min": {"roc_auc": 0.7}}}}
    assert GateParams.from_params(floors, "binary").minimum == {"roc_auc": 0.7}
    with pytest.raises(
        ConfigError, match=r"unknown key 'gates\.binary\.minimum' \(did you mean 'min'\?\)"
    ):
        GateParams.from_params({"gates": {"binary": {"minimum": {"roc_auc": 0.7}}}}, "binary")


def test_the_error_names_the_file_that_was_read(tmp_path: Any) -> None:
    other = tmp_path / "experiment.yaml"
    other.write_text(yaml.safe_dump({"model": {"type": "random_forest", "seed": 1.5}}))

    with pytest.raises(ConfigError, match=r"^.*experiment\.yaml: 'model\.seed' must be a whole"):
        ModelParams.from_params(load_params(other))


@pytest.mark.parametrize(
    ("test_fraction", "cv_folds", "rows"),
    [(0.2, 5, 7), (0.5, 2, 4), (0.1, 3, 10), (0.25, 3, 4), (0.8, 2, 10)],
)
def test_a_class_needs_a_test_row_and_a_training_row_per_fold(
    test_fraction: float, cv_folds: int, rows: int
) -> None:
    """2 / (1 - 0.8) is 10.000000000000002 in floating point: still 10 rows."""
    split = SplitParams(test_fraction=test_fraction, seed=1)

    assert split.rows_per_class(cv_folds) == rows
