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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.coercion import Parsed, parse_column
from gitops_ml.contract import Column, Contract, load_contract, pandera_schema
from gitops_ml.errors import UserError
from gitops_ml.markdown import escape

DEFAULT_INPUT = paths.RAW
DEFAULT_CONTRACT = paths.CONTRACT
DEFAULT_OUTPUT = paths.VALIDATED
DEFAULT_SUMMARY = paths.VALIDATION_METRICS
DEFAULT_REPORT = paths.VALIDATION_FAILURES
EXAMPLES = 5  # example rows or values shown per failure
RATE_DIGITS = 4  # missing rates in the summary, rounded so metric diffs stay readable


class ValidationFailed(UserError):
    """The data does not satisfy the contract; the message is the full human-readable report."""

    exit_code = 1


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


def _dtype_failure(column: Column, rows: np.ndarray, raw: pd.Series, contract: Contract) -> Failure:
    tokens = contract.encoding
    comma = ", with a decimal comma (encoding.decimal_comma)" if tokens.decimal_comma else ""
    expected = {
        "float": f"a number{comma}",
        "int": "a whole number",
        "bool": f"one of {', '.join([*tokens.true_values, *tokens.false_values])} "
        "(the contract's encoding)",
        "category": "text",
        "datetime": "a date or date-time (ISO 8601, e.g. 2025-08-07, or day first: 07/08/2025)"
        if tokens.day_first
        else "a date or date-time (ISO 8601, e.g. 2025-08-07; for dates written day first, "
        "07/08/2025, set encoding.day_first)",
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
    parsed = {c.name: parse_column(raw[c.name], c.type, contract.encoding) for c in present}
    failures = [
        _dtype_failure(c, np.flatnonzero(parsed[c.name].bad), raw[c.name], contract)
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
    """The full failure report: one line per failed rule, plain text (the error message)."""
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


def markdown_report(result: ValidationResult, source: str, contract_source: str) -> str:
    """The failure report as markdown (`reports/validation_failures.md`): the same lines, each
    escaped, since they quote column names and values from the data."""
    lines = format_report(result, source, contract_source).splitlines()
    return "# Data validation failed\n\n" + "\n".join(escape(line) for line in lines) + "\n"


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        help=f"raw data (CSV or Parquet); default {DEFAULT_INPUT}. With another file this is an "
        "ad-hoc check: nothing is written unless --output/--summary/--report are given",
    )
    parser.add_argument("--contract", default=DEFAULT_CONTRACT)
    parser.add_argument("--output", help=f"validated Parquet file ({DEFAULT_OUTPUT})")
    parser.add_argument("--summary", help=f"validation metrics JSON ({DEFAULT_SUMMARY})")
    parser.add_argument("--report", help=f"failure report, markdown ({DEFAULT_REPORT})")


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    stage = args.input is None  # the pipeline stage owns the default outputs; an ad-hoc check not
    source = args.input or DEFAULT_INPUT
    output = args.output or (DEFAULT_OUTPUT if stage else None)
    summary = args.summary or (DEFAULT_SUMMARY if stage else None)
    report_path = args.report or (DEFAULT_REPORT if stage else None)
    if output:  # a stale validated file from an earlier run must never survive a failed run
        Path(output).unlink(missing_ok=True)
    contract = load_contract(args.contract)
    if not stage and not Path(source).exists() and "://" not in source:
        raise gio.TableReadError(f"{source}: file not found")
    try:
        # Every row at once: uniqueness and the failure counts span the whole file, and the
        # validated table is written in one piece (peak ~0.7 GB per million rows: under the
        # pipeline's bound, docs/performance.md).
        raw = gio.read_table(source, raw_text=True, layout=contract.csv)
    except gio.TableReadError as exc:
        result = unreadable(str(exc), contract)
    else:
        print(f"validate: checking {len(raw):,} rows of {source}", flush=True)
        result = validate_frame(raw, contract)
    if summary:
        gio.write_json(summary, result.summary())
    if result.frame is None:
        report = format_report(result, source, args.contract)
        if report_path:
            gio.write_text(report_path, markdown_report(result, source, args.contract))
            report += f"\n(report written to {report_path})"
        raise ValidationFailed(report)
    if output:
        gio.write_parquet(output, result.frame)
    if report_path:
        Path(report_path).unlink(missing_ok=True)
    if result.dropped_columns:
        print(f"validate: dropped columns not in the contract: {', '.join(result.dropped_columns)}")
    written = f"; wrote {output}" if output else " (ad-hoc check: nothing written)"
    print(
        f"validate: {result.rows:,} rows x {result.columns} columns passed {args.contract}"
        f"{written} in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return 0
