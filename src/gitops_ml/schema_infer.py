"""`gitops-ml schema infer FILE`: draft a data contract from a CSV/Parquet file.

The draft is a starting point for a human, not a verdict: it records what was seen (types,
missing values, ranges rounded outward, the categories present) and marks every guess with a
`# review:` comment. Types are decided with the same strict conversions `validate` uses, so the
file a contract was drafted from always passes validation against it.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gitops_ml import io as gio
from gitops_ml.coercion import Parsed, parse_column
from gitops_ml.contract import (
    ENCODING_KEYS,
    Checks,
    Column,
    ColumnRole,
    ColumnType,
    Contract,
    Encoding,
    parse_contract,
)
from gitops_ml.errors import UserError

TARGET_HINTS = ("target", "label", "outcome", "class", "y")
# Column names that usually hold a protected or sensitive attribute: proposed as `slice: true`
# so the review shows metrics per group (whether the model serves one group worse).
SLICE_HINTS = (
    "gender",
    "sex",
    "age",
    "senior",
    "race",
    "ethnicity",
    "religion",
    "disability",
    "marital",
    "nationality",
    "citizen",
)
ID_HINTS = ("id", "uuid", "guid", "key")
MAX_ALLOWED = 25  # more distinct values than this: free text, no allowed list
DATE_LIKE = r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # 2025-08-07, 07/08/2025, 2025.8.7 …


class SchemaInferError(UserError):
    """The file cannot be turned into a contract (no usable target, or output exists)."""


@dataclass
class DraftColumn:
    column: Column
    notes: list[str] = field(default_factory=list)


@dataclass
class Draft:
    contract: Contract
    columns: list[DraftColumn]
    omitted: dict[str, str]  # column name -> why it is not in the contract
    source: str
    rows: int
    path: str = ""  # the file as the user named it, for the check command in the header
    output: str = ""  # where the draft is written, likewise


def _tokens(name: str) -> list[str]:
    """Words of a column name: `CustomerID`, `customer_id` and `customer-id` all give [.., id]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _is_target_name(name: str) -> bool:
    return any(
        t == h or (len(h) > 1 and t.startswith(h)) for t in _tokens(name) for h in TARGET_HINTS
    )


def _is_id_name(name: str) -> bool:
    return any(t in ID_HINTS for t in _tokens(name))


def _is_slice_name(name: str) -> bool:
    return any(t == h or t.startswith(h) for t in _tokens(name) for h in SLICE_HINTS)


def _spellings(values: pd.Series) -> list[str]:
    """Distinct raw text spellings, most frequent first (ties by text)."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return []
    text = values[values.map(lambda v: isinstance(v, str))]
    counts = text.value_counts()
    return sorted(counts.index, key=lambda v: (-int(counts[v]), v))


def _encoding(frame: pd.DataFrame, kinds: dict[str, ColumnType]) -> Encoding:
    """The defaults plus every true/false/missing spelling seen, as written in the file."""
    default = Encoding()
    seen: dict[str, list[str]] = {key: [] for key in ENCODING_KEYS}
    for col in frame.columns:
        for text in _spellings(frame[col]):
            if default.is_missing(text):
                key = "missing_values"
            elif kinds[str(col)] == "bool":
                key = "true_values" if default.bool_of(text) else "false_values"
            else:
                continue
            if text not in seen[key]:
                seen[key].append(text)
    merged = {
        key: tuple(seen[key] + [v for v in getattr(default, key) if v not in seen[key]])
        for key in ENCODING_KEYS
    }
    return Encoding(**merged)


def _positive(values: pd.Series, encoding: Encoding) -> str | None:
    """The spelling of the positive class as the file writes it ("Yes"), if it is text."""
    trues = [t for t in _spellings(values) if encoding.bool_of(t) is True]
    return trues[0] if trues else None


def _infer_type(values: pd.Series) -> tuple[ColumnType, Parsed, list[str]]:
    """The narrowest contract type every present value converts to, with notes on guesses."""
    non_null = values.dropna()
    if non_null.empty:
        return (
            "category",
            parse_column(values, "category"),
            ["every value is missing: type guessed"],
        )
    if pd.api.types.is_bool_dtype(values.dtype):
        return "bool", parse_column(values, "bool"), []
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "datetime", parse_column(values, "datetime"), []
    notes: list[str] = []
    original = values  # validate will convert these values, so every guess is checked on them
    if not pd.api.types.is_numeric_dtype(values.dtype):
        as_bool = parse_column(values, "bool")
        if not as_bool.bad.any():
            return "bool", as_bool, ["text values read as true/false"]
        text = non_null.astype(str)
        if text.str.match(DATE_LIKE).all():
            as_datetime = parse_column(values, "datetime")
            if not as_datetime.bad.any():
                note = [] if text.str.match(r"^\s*\d{4}-").all() else ["check day/month order"]
                return "datetime", as_datetime, note
        as_number = parse_column(values, "float")
        if as_number.bad.any() or as_number.values.notna().sum() == 0:
            return "category", parse_column(values, "category"), []
        values = as_number.values  # CSV cells are text: numbers arrive as text, that is normal
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    present = numbers.dropna()
    as_bool = parse_column(original, "bool")
    if set(present.unique()) == {0.0, 1.0} and not as_bool.bad.any():
        notes.append("only 0 and 1 seen: read as bool; make it int if it is a count")
        return "bool", as_bool, notes
    if pd.api.types.is_integer_dtype(values.dtype):
        return "int", parse_column(original, "int"), notes
    whole = bool(np.isfinite(present).all() and (present == np.round(present)).all())
    if whole and (numbers.isna().any() or notes):
        notes.append("whole numbers only: read as int; make it float if fractions can occur")
        return "int", parse_column(original, "int"), notes
    return "float", parse_column(original, "float"), notes


def _nice_bounds(low: float, high: float, integer: bool) -> tuple[float, float]:
    """min/max rounded outward to a step one decade below the spread (0..117 -> 0..120)."""
    spread = high - low or abs(high) or 1.0
    exponent = math.floor(math.log10(spread)) - 1
    step = max(10.0**exponent, 1.0) if integer else 10.0**exponent
    digits = max(0, -exponent)
    lower = round(math.floor(low / step) * step, digits)
    upper = round(math.ceil(high / step) * step, digits)
    lower = lower if lower <= low else round(lower - step, digits)
    upper = upper if upper >= high else round(upper + step, digits)
    return lower, upper


def _checks(kind: ColumnType, parsed: Parsed, unique: bool) -> tuple[Checks, list[str]]:
    values = parsed.values.dropna()
    if kind in ("int", "float") and len(values):
        numbers = values.astype("float64")
        if not np.isfinite(numbers).all():
            return Checks(unique=unique), ["infinite values seen: no range check drafted"]
        low, high = _nice_bounds(float(numbers.min()), float(numbers.max()), kind == "int")
        note = f"range seen {numbers.min():g} to {numbers.max():g}: widen to what is plausible"
        return Checks(min=low, max=high, unique=unique), [note]
    if kind == "category" and not unique:
        distinct = sorted(values.astype(str).unique())
        if not distinct:
            return Checks(), []
        if len(distinct) <= MAX_ALLOWED and len(distinct) <= max(1, len(values) // 2):
            note = f"allowed = the {len(distinct)} values seen; add any other legitimate value"
            return Checks(allowed=tuple(distinct)), [note]
        return Checks(), [f"{len(distinct)} distinct values: no allowed list (free text?)"]
    return Checks(unique=unique), []


def _pick_target(kinds: dict[str, ColumnType], target: str | None) -> str:
    if target is not None:
        if target not in kinds:
            raise SchemaInferError(f"--target {target!r} is not a column of the file")
        if kinds[target] != "bool":
            raise SchemaInferError(
                f"--target {target!r} is {kinds[target]}, not binary; the target needs two "
                "values such as true/false, 1/0 or yes/no"
            )
        return target
    binary = [name for name, kind in kinds.items() if kind == "bool"]
    if not binary:
        raise SchemaInferError(
            "no binary column to use as the target; the target needs two values such as "
            "true/false, 1/0 or yes/no (recode it, then pass --target NAME)"
        )
    hinted = [name for name in binary if _is_target_name(name)]
    return hinted[0] if hinted else binary[-1]


def infer_contract(
    frame: pd.DataFrame, source: str, name: str = "dataset", target: str | None = None
) -> Draft:
    """Draft a contract for `frame`; `source` (a file name, no directory) goes in comments."""
    inferred: dict[str, tuple[ColumnType, Parsed, list[str]]] = {
        str(col): _infer_type(frame[col]) for col in frame.columns
    }
    kinds = {col: kind for col, (kind, _, _) in inferred.items()}
    unique = {  # only ids and codes can promise uniqueness; a float or a date cannot
        col: kind in ("category", "int")
        and bool(parsed.values.notna().all() and parsed.values.is_unique and len(frame) > 1)
        for col, (kind, parsed, _) in inferred.items()
    }
    encoding = _encoding(frame, kinds)
    datetimes = [col for col, kind in kinds.items() if kind == "datetime"]
    timestamp = datetimes[0] if datetimes else None
    target_name = _pick_target(kinds, target)
    id_candidates = [col for col in kinds if unique[col] and col != target_name]
    id_candidates = [c for c in id_candidates if _is_id_name(c)] or [
        c for c in id_candidates if kinds[c] == "category"
    ]
    id_column = id_candidates[0] if id_candidates else None
    omitted = {
        col: "a second datetime column (a contract has one timestamp, and datetime features are "
        "not allowed): derive numeric features from it, e.g. days since"
        for col in datetimes[1:]
    }
    special: dict[str | None, ColumnRole] = {
        timestamp: "timestamp",
        target_name: "target",
        id_column: "id",
    }
    drafts: list[DraftColumn] = []
    for col, (kind, parsed, notes) in inferred.items():
        if col in omitted:
            continue
        role = special.get(col, "feature")
        notes = list(notes)
        if role in ("feature", "target"):
            checks, check_notes = _checks(kind, parsed, unique[col] and role == "feature")
            notes += check_notes
        else:
            checks = Checks(unique=role == "id")
        if role == "target" and target is None:
            notes.append("guessed as the target (binary): pass --target NAME to choose another")
        if role == "id":
            notes.append("every value is unique: treated as a row identifier, not a feature")
        elif role == "feature" and unique[col] and kind == "int":
            notes.append("every value is unique: if this is an identifier, remove the column")
        nullable = bool(parsed.values.isna().any())
        if role == "timestamp" and nullable:
            notes.append("missing timestamps: the time split needs one on every row")
        positive = _positive(frame[col], encoding) if role == "target" else None
        if positive is not None:
            notes.append(f"the positive class is written {positive!r}")
        is_slice = role == "feature" and _is_slice_name(col)
        if is_slice:
            binned = "; numbers are binned" if kind in ("int", "float") else ""
            notes.append(
                "may be a sensitive attribute: slice: true reports metrics per group"
                f"{binned} (remove slice if it is not)"
            )
        drafts.append(
            DraftColumn(
                Column(col, kind, role, nullable, checks, positive=positive, slice=is_slice),
                notes,
            )
        )
    if not any(d.column.role == "feature" for d in drafts):
        raise SchemaInferError(f"{source}: no feature columns left besides target/id/timestamp")
    contract = Contract(
        name=name,
        columns=tuple(d.column for d in drafts),
        description=f"Drafted from {source}: say what one row is and what the target means.",
        encoding=encoding,
    )
    return Draft(contract, drafts, omitted, source, len(frame))


def _flow(value: Any) -> str:
    """One YAML value on one line, quoted when YAML would misread it (yes, no, 1.0 …)."""
    dumped = yaml.safe_dump(
        value if isinstance(value, dict | list) else [value],
        default_flow_style=True,
        width=1 << 30,
        allow_unicode=True,
        sort_keys=False,
    ).strip()
    return dumped if isinstance(value, dict | list) else dumped[1:-1]


def _number(value: float, integer: bool) -> int | float:
    return int(value) if integer else value


def render(draft: Draft) -> str:
    """The contract as commented YAML in the style of data/schema.yaml."""
    contract = draft.contract
    lines = [
        f"# Data contract drafted by `gitops-ml schema infer` from {draft.source} "
        f"({draft.rows:,} rows).",
        "# A draft: review every '# review:' note, then check the data with",
        f"#   gitops-ml validate --input {draft.path or draft.source} "
        f"--contract {draft.output or '<this file>'}",
        "# Types: float, int, category, bool, datetime. Roles: feature, target, timestamp, id.",
        "# nullable: false means no missing value was seen; set it to true where one can occur.",
        f"# Guessed roles: target {contract.target}, id {contract.id_column or '(none)'}, "
        f"timestamp {contract.timestamp or '(none: the split will be stratified, not by time)'}.",
        "# Ranges are the min/max seen rounded outward and allowed lists are the values seen:",
        "# widen them to what production data may hold, or valid new data will fail.",
        f"name: {_flow(contract.name)}",
        f"description: {_flow(contract.description)}",
        "# How raw values are written (compared case-insensitively; blank cells are missing):",
        "encoding:",
        *(
            f"  {key}: {_flow(list(getattr(contract.encoding, key)))}"
            for key in ("true_values", "false_values", "missing_values")
        ),
        "columns:",
    ]
    for draft_column in draft.columns:
        column = draft_column.column
        lines += [f"  # review: {note}" for note in draft_column.notes]
        lines += [
            f"  - name: {_flow(column.name)}",
            f"    type: {column.type}",
            f"    role: {column.role}",
            f"    nullable: {'true' if column.nullable else 'false'}",
        ]
        checks: dict[str, Any] = {}
        integer = column.type == "int"
        if column.checks.min is not None:
            checks["min"] = _number(column.checks.min, integer)
        if column.checks.max is not None:
            checks["max"] = _number(column.checks.max, integer)
        if column.checks.allowed is not None:
            checks["allowed"] = list(column.checks.allowed)
        if column.checks.unique:
            checks["unique"] = True
        if checks:
            lines.append(f"    checks: {_flow(checks)}")
        if column.positive is not None:
            lines.append(f"    positive: {_flow(column.positive)}")
        if column.slice:
            lines.append("    slice: true")
    if draft.omitted:
        lines.append(
            "# Not in the contract (validate drops columns the contract does not declare):"
        )
        lines += [f"#   {name}: {why}" for name, why in draft.omitted.items()]
    text = "\n".join(lines) + "\n"
    parse_contract(yaml.safe_load(text), source="drafted contract")  # must load as written
    return text


def _dataset_name(path: str) -> str:
    stem = Path(path.split("?")[0]).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_").lower() or "dataset"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="schema_command", metavar="SUBCOMMAND", required=True)
    infer = sub.add_parser(
        "infer",
        help="draft a data contract from a CSV/Parquet file",
        description="Draft a data contract (data/schema.yaml format) from a CSV/Parquet file. "
        "Prints the draft unless --output is given.",
    )
    infer.add_argument("file", help="CSV or Parquet file, or an http(s) URL")
    infer.add_argument("--output", help="write the draft here (refuses to overwrite)")
    infer.add_argument("--target", help="the binary target column (default: guessed)")
    infer.add_argument("--force", action="store_true", help="overwrite an existing --output")


def run(args: argparse.Namespace) -> int:
    if args.output and Path(args.output).exists() and not args.force:
        raise SchemaInferError(
            f"{args.output} already exists; pass --force to overwrite it or choose another --output"
        )
    frame = gio.read_table(args.file, raw_text=True)
    source = Path(args.file.split("?")[0]).name
    draft = infer_contract(frame, source, _dataset_name(args.file), args.target)
    draft.path, draft.output = args.file, args.output or ""
    text = render(draft)
    if not args.output:
        sys.stdout.write(text)
        return 0
    gio.write_text(args.output, text)
    notes = sum(len(c.notes) for c in draft.columns)
    print(
        f"schema: drafted {len(draft.columns)} columns from {source} into {args.output}; "
        f"target {draft.contract.target!r}; review the {notes} '# review:' notes",
        file=sys.stderr,
    )
    return 0
