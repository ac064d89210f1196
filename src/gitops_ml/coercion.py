"""One reading of raw values: cells as users write them → typed values the model understands.

The contract's `encoding` says how true, false and missing are spelled ("Yes"/"No", " ",
"N/A", "?" …) and whether text is read without surrounding whitespace (`strip`). Validate reads
training data through `parse_column`, the drift check reads production windows through it, and
serving (capture logs what serving accepted) and the smoke test read single JSON values by the
same rules (`gitops_ml.value_coercion`, apart so that serving needs no pandas): so "Yes" means
true, " " means missing and " Male" is "Male" (with `strip`), everywhere alike. Conversions are
strict: text in a numeric column or 2.5 in an int column is reported, never silently coerced.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.contract import DEFAULT_ENCODING, Encoding


@dataclass(frozen=True)
class Parsed:
    """A column converted to its contract type; `bad` marks values that could not be converted
    (they are missing in `values`)."""

    values: pd.Series
    bad: np.ndarray


def _text_column(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values.dtype)


def _read_text(values: pd.Series, encoding: Encoding) -> pd.Series:
    """Text as the contract reads it: stripped (`encoding.strip`), and blank strings and the
    contract's missing tokens as missing values. Each distinct value is looked at once."""
    if not _text_column(values):
        return values
    text = values.astype(object)
    distinct = pd.unique(text[text.notna()])
    if encoding.strip:
        changed = {v: encoding.text(v) for v in distinct if isinstance(v, str)}
        changed = {v: t for v, t in changed.items() if t != v}
        if changed:
            text = text.map(lambda v: changed.get(v, v) if isinstance(v, str) else v)
            values = text.astype(values.dtype)
            distinct = pd.unique(text[text.notna()])
    tokens = [v for v in distinct if isinstance(v, str) and encoding.is_missing(v)]
    if not tokens:
        return values
    return values.mask(text.isin(tokens))  # keeps a string dtype: the fast paths stay open


def _as_float(values: pd.Series, encoding: Encoding) -> Parsed:
    present = values.notna().to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or not (
        pd.api.types.is_numeric_dtype(values.dtype) or _text_column(values)
    ):
        numbers = pd.Series(np.nan, index=values.index, dtype="float64")
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
    else:
        as_object = values.astype(object)
        if not encoding.plain_numbers:
            spelt = {v: encoding.number_text(v) for v in pd.unique(as_object) if isinstance(v, str)}
            as_object = as_object.map(lambda v: spelt.get(v) if isinstance(v, str) else v)
        numbers = pd.to_numeric(as_object, errors="coerce").astype("float64")
        if values.dtype == object:  # a string dtype (CSV text) cannot hold a bool: no scan
            # A Python bool in an object column is not a number here, whatever pandas thinks.
            is_bool = np.array([isinstance(v, bool | np.bool_) for v in as_object])
            numbers = numbers.mask(is_bool)
    return Parsed(numbers, present & numbers.isna().to_numpy())


def _as_int(values: pd.Series, encoding: Encoding) -> Parsed:
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return Parsed(values.astype("Int64"), np.zeros(len(values), dtype=bool))
    parsed = _as_float(values, encoding)
    numbers = parsed.values.to_numpy()
    with np.errstate(invalid="ignore"):
        fractional = ~np.isnan(numbers) & ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
    bad = parsed.bad | fractional
    return Parsed(parsed.values.mask(bad).astype("Int64"), bad)


def _as_bool(values: pd.Series, encoding: Encoding) -> Parsed:
    present = values.notna().to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype):
        return Parsed(values.astype("boolean"), np.zeros(len(values), dtype=bool))
    if pd.api.types.is_numeric_dtype(values.dtype):
        mapped = values.astype("float64").map({1.0: True, 0.0: False})
    else:
        text = values.astype(object)
        lookup = {v: _bool_of(v, encoding) for v in pd.unique(text[text.notna()])}
        mapped = text.map(lookup).where(values.notna())
    bad = present & mapped.isna().to_numpy()
    return Parsed(mapped.astype("boolean"), bad)


def _bool_of(value: Any, encoding: Encoding) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return {1.0: True, 0.0: False}.get(float(value))
    return encoding.bool_of(str(value))


def _as_category(values: pd.Series, encoding: Encoding) -> Parsed:
    no_bad = np.zeros(len(values), dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return Parsed(values.astype("str"), no_bad)
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and (finite == np.round(finite)).all():
            values = values.astype("Int64")  # 3.0 from a CSV column with gaps is the code "3"
    text = values.astype(object).map(lambda v: v if isinstance(v, str) else str(v))
    return Parsed(text.where(values.notna()).astype("str"), no_bad)


def _parse_datetime(values: pd.Series, **options: Any) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format" is the caller's problem
        return pd.to_datetime(values, errors="coerce", utc=True, **options)


def _as_datetime(values: pd.Series, encoding: Encoding) -> Parsed:
    present = values.notna().to_numpy()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        stamps = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        stamps = values
    elif _text_column(values):
        text = values.astype(object).map(lambda v: v if isinstance(v, str) else None)
        # ISO 8601 first (fast, unambiguous); otherwise the format pandas infers from the data.
        stamps = _parse_datetime(text, format="ISO8601")
        if stamps.isna().sum() > text.isna().sum():
            inferred = _parse_datetime(text, dayfirst=encoding.day_first)
            stamps = inferred if inferred.isna().sum() < stamps.isna().sum() else stamps
        stamps = stamps.dt.tz_localize(None)
    else:
        stamps = pd.Series(pd.NaT, index=values.index)
    stamps = stamps.astype("datetime64[us]")
    return Parsed(stamps, present & stamps.isna().to_numpy())


PARSERS: dict[str, Callable[[pd.Series, Encoding], Parsed]] = {
    "float": _as_float,
    "int": _as_int,
    "bool": _as_bool,
    "category": _as_category,
    "datetime": _as_datetime,
}


def parse_column(
    values: pd.Series, column_type: str, encoding: Encoding = DEFAULT_ENCODING
) -> Parsed:
    """Convert raw values to a contract type; failures are reported in `bad`, never coerced."""
    return PARSERS[column_type](_read_text(values, encoding), encoding)
