"""validate: check raw data against the data contract and write it back in canonical dtypes.

Two passes over the whole file, both collecting every failure before reporting: first each
contract column is converted strictly to its contract type (text in a numeric column, 2.5 in an
int column or "maybe" in a bool column are type failures, never silently coerced), then the
pandera schema derived from the contract checks ranges, allowed values, nulls, uniqueness and
required columns with `lazy=True`. A failure names the file, column, rule, number of rows and a
few example rows, and leaves no validated data behind, so nothing downstream can train on it.

Columns the contract does not declare are dropped (listed in the summary and in
`metrics/validation.json`), so the model only ever sees declared columns. Empty strings count
as missing values in every column type.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml.contract import Column, Contract, load_contract, pandera_schema
from gitops_ml.errors import UserError

DEFAULT_INPUT = "data/raw/churn.parquet"
DEFAULT_CONTRACT = "data/schema.yaml"
DEFAULT_OUTPUT = "data/validated/churn.parquet"
DEFAULT_SUMMARY = "metrics/validation.json"
DEFAULT_REPORT = "reports/validation_failures.md"
EXAMPLES = 5  # example rows or values shown per failure
RATE_DIGITS = 4  # missing rates in the summary, rounded so metric diffs stay readable

# Spellings accepted in a bool column (compared lower-cased and stripped).
BOOL_WORDS: dict[str, bool] = {
    "true": True,
    "false": False,
    "t": True,
    "f": False,
    "yes": True,
    "no": False,
    "y": True,
    "n": False,
    "1": True,
    "0": False,
    "1.0": True,
    "0.0": False,
}


class ValidationFailed(UserError):
    """The data does not satisfy the contract; the message is the full human-readable report."""

    exit_code = 1


# --------------------------------------------------------------------------------------------
# Strict conversion of one raw column to its contract type.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A column converted to its contract type; `bad` marks values that could not be converted
    (they are missing in `values`)."""

    values: pd.Series
    bad: np.ndarray


def _blank_to_missing(values: pd.Series) -> pd.Series:
    """Empty or whitespace-only strings are missing values, as they are in a CSV file."""
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype(object)
        blank = np.array([isinstance(v, str) and not v.strip() for v in text], dtype=bool)
        if blank.any():
            return text.mask(blank)
    return values


def _as_float(values: pd.Series) -> Parsed:
    present = values.notna().to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or not (
        pd.api.types.is_numeric_dtype(values.dtype)
        or values.dtype == object
        or pd.api.types.is_string_dtype(values.dtype)
    ):
        numbers = pd.Series(np.nan, index=values.index, dtype="float64")
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values.astype(object), errors="coerce").astype("float64")
        # A Python bool in an object column is not a number here, whatever pandas thinks.
        is_bool = np.array([isinstance(v, bool | np.bool_) for v in values.astype(object)])
        numbers = numbers.mask(is_bool)
    return Parsed(numbers, present & numbers.isna().to_numpy())


def _as_int(values: pd.Series) -> Parsed:
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return Parsed(values.astype("Int64"), np.zeros(len(values), dtype=bool))
    parsed = _as_float(values)
    numbers = parsed.values.to_numpy()
    with np.errstate(invalid="ignore"):
        fractional = ~np.isnan(numbers) & ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
    bad = parsed.bad | fractional
    return Parsed(parsed.values.mask(bad).astype("Int64"), bad)


def _as_bool(values: pd.Series) -> Parsed:
    present = values.notna().to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype):
        return Parsed(values.astype("boolean"), np.zeros(len(values), dtype=bool))
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
        mapped = numbers.map({1.0: True, 0.0: False})
    else:
        text = values.astype(object)
        mapped = text.map(
            lambda v: (
                v if isinstance(v, bool | np.bool_) else BOOL_WORDS.get(str(v).strip().lower())
            )
        ).where(values.notna())
    bad = present & mapped.isna().to_numpy()
    return Parsed(mapped.astype("boolean"), bad)


def _as_category(values: pd.Series) -> Parsed:
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


def _as_datetime(values: pd.Series) -> Parsed:
    present = values.notna().to_numpy()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        stamps = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        stamps = values
    elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype(object).map(lambda v: v if isinstance(v, str) else None)
        # ISO 8601 first (fast, unambiguous); otherwise the format pandas infers from the data.
        stamps = _parse_datetime(text, format="ISO8601")
        if stamps.isna().sum() > text.isna().sum():
            inferred = _parse_datetime(text)
            stamps = inferred if inferred.isna().sum() < stamps.isna().sum() else stamps
        stamps = stamps.dt.tz_localize(None)
    else:
        stamps = pd.Series(pd.NaT, index=values.index)
    stamps = stamps.astype("datetime64[us]")
    return Parsed(stamps, present & stamps.isna().to_numpy())


PARSERS: dict[str, Callable[[pd.Series], Parsed]] = {
    "float": _as_float,
    "int": _as_int,
    "bool": _as_bool,
    "category": _as_category,
    "datetime": _as_datetime,
}


def parse_column(values: pd.Series, column_type: str) -> Parsed:
    """Convert raw values to a contract type; failures are reported, never coerced."""
    return PARSERS[column_type](_blank_to_missing(values))


def canonical(values: pd.Series, column: Column) -> pd.Series:
    """Narrow nullable int/bool to numpy int64/bool when the column holds no missing values."""
    if not column.nullable and not values.isna().any():
        if column.type == "int":
            return values.astype("int64")
        if column.type == "bool":
            return values.astype("bool")
    return values


# --------------------------------------------------------------------------------------------
# Failures and their human-readable description.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    column: str | None  # None: the file as a whole
    rule: str  # dtype, min, max, allowed, nullable, unique, required, readable
    message: str  # complete sentence, with counts and examples
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def line(self) -> str:
        where = "file" if self.column is None else f"column {self.column!r}"
        return f"{where} [{self.rule}]: {self.message}"


def _value(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        number = float(value)
        return str(int(number)) if abs(number) < 1e15 else repr(number)
    return repr(value.item() if isinstance(value, np.generic) else value)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _more(count: int) -> str:
    return ", …" if count > EXAMPLES else ""


def _row_examples(rows: np.ndarray, raw: pd.Series) -> str:
    shown = ", ".join(f"row {r + 1}: {_value(raw.iloc[r])}" for r in rows[:EXAMPLES])
    return f"e.g. {shown}{_more(len(rows))}"


def _rows_text(rows: np.ndarray) -> str:
    numbers = ", ".join(str(r + 1) for r in rows[:EXAMPLES])
    return f"{'row' if len(rows) == 1 else 'rows'} {numbers}{_more(len(rows))}"


def _value_counts(rows: np.ndarray, raw: pd.Series) -> str:
    counts = raw.iloc[rows].astype(object).map(_value).value_counts(sort=False)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{v} ({_plural(int(n), 'row')})" for v, n in ordered[:EXAMPLES])
    hidden = len(ordered) - EXAMPLES
    return shown + (f" and {_plural(hidden, 'more value')}" if hidden > 0 else "")


def _dtype_failure(column: Column, rows: np.ndarray, raw: pd.Series) -> Failure:
    expected = {
        "float": "a number",
        "int": "a whole number",
        "bool": "true/false (also yes/no, 1/0)",
        "category": "text",
        "datetime": "a date or date-time (ISO 8601, e.g. 2025-08-07)",
    }[column.type]
    message = (
        f"{_plural(len(rows), 'row')} cannot be read as {column.type} "
        f"(expected {expected}); {_row_examples(rows, raw)}"
    )
    return Failure(column.name, "dtype", message, rows)


def _check_failure(column: Column, check: str, rows: np.ndarray, raw: pd.Series) -> Failure:
    """Turn one pandera check's failure cases into a Failure with the contract's wording."""
    count = _plural(len(rows), "row")
    if check.startswith("greater_than_or_equal_to"):
        lowest = _value(raw.iloc[rows].astype(object).min())
        message = f"{count} below the minimum {_value(column.checks.min)} (lowest {lowest})"
        return Failure(column.name, "min", f"{message}; {_row_examples(rows, raw)}", rows)
    if check.startswith("less_than_or_equal_to"):
        highest = _value(raw.iloc[rows].astype(object).max())
        message = f"{count} above the maximum {_value(column.checks.max)} (highest {highest})"
        return Failure(column.name, "max", f"{message}; {_row_examples(rows, raw)}", rows)
    if check.startswith("isin"):
        allowed = ", ".join(column.checks.allowed or ())
        message = (
            f"{count} outside the allowed list [{allowed}]: "
            f"{_value_counts(rows, raw)}; e.g. {_rows_text(rows)}"
        )
        return Failure(column.name, "allowed", message, rows)
    if check == "not_nullable":
        message = f"{count} missing but the contract says nullable: false; e.g. {_rows_text(rows)}"
        return Failure(column.name, "nullable", message, rows)
    if check == "field_uniqueness":
        values = raw.iloc[rows].astype(object).map(_value)
        groups = sorted(values.groupby(values, sort=False).indices.items(), key=lambda kv: kv[1][0])
        shown = "; ".join(f"{v} at {_rows_text(rows[idx])}" for v, idx in groups[:EXAMPLES])
        message = (
            f"{count} share {_plural(len(groups), 'duplicated value')} but the contract "
            f"says unique: true; e.g. {shown}"
        )
        return Failure(column.name, "unique", message, rows)
    message = f"{count} fail pandera check {check}; {_row_examples(rows, raw)}"
    return Failure(column.name, "check", message, rows)


# --------------------------------------------------------------------------------------------
# The pure validation function.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationResult:
    rows: int
    columns: int
    failures: list[Failure]
    dropped_columns: list[str]
    missing_rate: dict[str, float]
    frame: pd.DataFrame | None = None  # canonical frame in contract order; None on failure

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failing_rows(self) -> int:
        rows = [f.rows for f in self.failures if len(f.rows)]
        return len(np.unique(np.concatenate(rows))) if rows else 0

    def summary(self) -> dict[str, Any]:
        """The content of metrics/validation.json: deterministic, no timestamps or paths."""
        return {
            "status": "passed" if self.passed else "failed",
            "rows": self.rows,
            "columns": self.columns,
            "failed_checks": len(self.failures),
            "failing_rows": self.failing_rows,
            "missing_rate": self.missing_rate,
            "dropped_columns": self.dropped_columns,
        }


def unreadable(message: str, contract: Contract) -> ValidationResult:
    """The result for a file that could not be read at all (missing, empty, corrupt)."""
    failure = Failure(None, "readable", message)
    return ValidationResult(0, len(contract.columns), [failure], [], {})


def validate_frame(raw: pd.DataFrame, contract: Contract) -> ValidationResult:
    """Check every row of `raw` against the contract, collecting all failures at once."""
    import pandera.pandas as pa

    raw = raw.reset_index(drop=True)
    present = [c for c in contract.columns if c.name in raw.columns]
    parsed = {c.name: parse_column(raw[c.name], c.type) for c in present}
    failures = [
        _dtype_failure(c, np.flatnonzero(parsed[c.name].bad), raw[c.name])
        for c in present
        if parsed[c.name].bad.any()
    ]
    frame = pd.DataFrame(
        {c.name: canonical(parsed[c.name].values, c) for c in present}, index=raw.index
    )
    try:
        pandera_schema(contract).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures += _pandera_failures(errors.failure_cases, contract, parsed, raw)
    order = {name: i for i, name in enumerate(contract.names)}
    failures.sort(key=lambda f: (order.get(f.column or "", -1), f.rule))
    missing_rate = {
        c.name: round(float((frame[c.name].isna() & ~parsed[c.name].bad).mean()), RATE_DIGITS)
        for c in present
    }
    dropped = [str(name) for name in raw.columns if name not in order]
    return ValidationResult(
        rows=len(raw),
        columns=len(contract.columns),
        failures=failures,
        dropped_columns=dropped,
        missing_rate=missing_rate,
        frame=None if failures else frame[contract.names],
    )


def _pandera_failures(
    cases: pd.DataFrame, contract: Contract, parsed: dict[str, Parsed], raw: pd.DataFrame
) -> list[Failure]:
    absent = cases["check"] == "column_in_dataframe"
    failures = [
        Failure(str(name), "required", "required column is missing from the file")
        for name in sorted(set(cases.loc[absent, "failure_case"].astype(str)))
    ]
    for (name, check), group in cases[~absent].groupby(["column", "check"], sort=True):
        column = contract.column(str(name))
        rows = np.unique(group["index"].dropna().astype(np.int64).to_numpy())
        if str(check).startswith("dtype"):
            continue  # an int/bool column still holding missing values: reported as nullable
        if check == "not_nullable":
            rows = rows[~parsed[column.name].bad[rows]]  # unreadable values: reported as dtype
            if not len(rows):
                continue
        failures.append(_check_failure(column, str(check), rows, raw[column.name]))
    return failures


def format_report(result: ValidationResult, source: str, contract_source: str) -> str:
    """The full failure report: one line per failed rule, plain text that also renders as
    markdown."""
    lines = [f"validation failed: {source} does not match the data contract {contract_source}"]
    if result.rows:
        lines.append(
            f"{_plural(len(result.failures), 'failed check')}, "
            f"{result.failing_rows:,} of {result.rows:,} rows affected "
            "(row numbers count data rows from 1; in a CSV file row N is on line N+1):"
        )
    lines += ["", *(f"- {failure.line()}" for failure in result.failures), ""]
    if result.dropped_columns:
        lines.append(f"Columns not in the contract (ignored): {', '.join(result.dropped_columns)}")
    lines.append(
        f"Fix the data, or change {contract_source} if the data is right and the contract is not."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default=DEFAULT_INPUT, help="raw data (CSV or Parquet)")
    parser.add_argument("--contract", default=DEFAULT_CONTRACT)
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="validated Parquet file")
    parser.add_argument("--summary", default=DEFAULT_SUMMARY, help="validation metrics JSON")
    parser.add_argument("--report", default=DEFAULT_REPORT, help="failure report (markdown)")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    # A stale validated file from an earlier run must never survive a failed run.
    Path(args.output).unlink(missing_ok=True)
    contract = load_contract(args.contract)
    try:
        raw = gio.read_table(args.input)
    except gio.TableReadError as exc:
        result = unreadable(str(exc), contract)
    else:
        print(f"validate: checking {len(raw):,} rows of {args.input}", flush=True)
        result = validate_frame(raw, contract)
    gio.write_json(args.summary, result.summary())
    if result.frame is None:
        report = format_report(result, args.input, args.contract)
        gio.write_text(args.report, f"# Data validation failed\n\n{report}\n")
        raise ValidationFailed(f"{report}\n(report written to {args.report})")
    gio.write_parquet(args.output, result.frame)
    Path(args.report).unlink(missing_ok=True)
    if result.dropped_columns:
        print(f"validate: dropped columns not in the contract: {', '.join(result.dropped_columns)}")
    print(
        f"validate: {result.rows:,} rows x {result.columns} columns passed {args.contract}; "
        f"wrote {args.output} in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return 0
