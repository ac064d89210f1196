"""One JSON value read by the contract's rules (serving's request check, the smoke test): the
model's value, None for missing, or a refusal that says what the value is instead."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gitops_ml.contract import Encoding
from gitops_ml.value_coercion import ValueRejected, coerce_value

CENSUS = Encoding(
    true_values=("Yes", ">50K"),
    false_values=("No", "<=50K"),
    missing_values=("?", "NA"),
    strip=True,
)


@pytest.mark.parametrize(
    ("value", "column_type", "expected"),
    [
        (None, "float", None),
        (math.nan, "int", None),
        (" ", "category", None),  # a blank is always missing
        (" ? ", "bool", None),  # a missing token, padded, any case
        ("NA", "float", None),
        (" Male", "category", "Male"),  # strip: read without the padding
        ("3.5", "float", 3.5),  # numbers written as text
        (7, "int", 7.0),
        (" >50K", "bool", 1.0),
        ("No", "bool", 0.0),
        (True, "bool", 1.0),
        (0, "bool", 0.0),
    ],
)
def test_a_value_becomes_the_models_value_or_none_when_missing(
    value: Any, column_type: str, expected: Any
) -> None:
    assert coerce_value(value, column_type, CENSUS) == expected


@pytest.mark.parametrize(
    ("value", "column_type", "says"),
    [
        (2.5, "int", "not a whole number"),
        ("abc", "float", "text that is not a number"),
        (math.inf, "float", "not a finite number"),
        (True, "float", "not a number"),  # a bool is not a number
        ([1], "float", "not a number"),
        (2, "bool", "a number other than 0 or 1"),
        ("maybe", "bool", "not true/false"),
        (3, "category", "not text"),
    ],
)
def test_a_value_that_does_not_fit_is_refused_saying_what_it_is(
    value: Any, column_type: str, says: str
) -> None:
    with pytest.raises(ValueRejected, match=says):
        coerce_value(value, column_type, CENSUS)


def test_a_decimal_point_under_a_decimal_comma_is_refused_with_the_spelling_that_reads() -> None:
    german = Encoding(decimal_comma=True)

    assert coerce_value("13,2", "float", german) == 13.2
    with pytest.raises(ValueRejected) as refused:
        coerce_value(" 13.2", "float", german)
    assert str(refused.value) == (
        "a decimal point where the contract's encoding.decimal_comma reads '13,2' "
        "(or send a JSON number)"
    )
