"""One JSON value at a time (serving, the smoke test): the same rules as
`gitops_ml.coercion.parse_column` reads a column with, for a server that never imports pandas.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gitops_ml.contract import DEFAULT_ENCODING, Encoding

# A number written as text, as pandas and Arrow read one: ASCII digits with an optional sign,
# point and exponent (or inf/nan, refused below as not finite); not the spellings only Python's
# float() takes (1_000, Unicode digits, a non-breaking space around it).
NUMBER_TEXT = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?|nan)", re.ASCII | re.IGNORECASE
)


class ValueRejected(ValueError):
    """A single value does not fit its column type; the message says what it is instead."""


def coerce_value(value: Any, column_type: str, encoding: Encoding = DEFAULT_ENCODING) -> Any:
    """A JSON value as the model's value: float for numbers and bools, str for categories,
    None for missing (null, NaN, blank or a missing token). Raises ValueRejected otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and encoding.is_missing(value):
        return None
    if column_type == "category":
        if isinstance(value, str):
            return encoding.text(value)
        raise ValueRejected("not text")
    if column_type == "bool":
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            if value in (0, 1):
                return float(value)
            raise ValueRejected("a number other than 0 or 1")
        if isinstance(value, str):
            flag = encoding.bool_of(value)
            if flag is not None:
                return float(flag)
        raise ValueRejected("not true/false, 0/1 or a true/false token of the contract")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueRejected("not a number")
    if isinstance(value, str):
        text = encoding.number_text(value)
        if text is None and encoding.decimal_comma and NUMBER_TEXT.fullmatch(value.strip()):
            comma = value.strip().replace(".", ",")
            raise ValueRejected(
                f"a decimal point where the contract's encoding.decimal_comma reads {comma!r} "
                "(or send a JSON number)"
            )
        if text is None or not NUMBER_TEXT.fullmatch(text):
            raise ValueRejected("text that is not a number")
        value = float(text)
    number = float(value)
    if not math.isfinite(number):
        raise ValueRejected("not a finite number")
    if column_type == "int" and not number.is_integer():
        raise ValueRejected("not a whole number")
    return number
