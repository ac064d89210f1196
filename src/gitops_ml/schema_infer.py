"""`gitops-ml schema infer FILE`: draft a data contract from a CSV/Parquet file.

The draft is a starting point for a human, not a verdict: it records what was seen (types,
missing values, ranges rounded outward, the categories present) and marks every guess with a
`# review:` comment. Types are decided with the same strict conversions `validate` uses, so the
file a contract was drafted from always passes validation against it.

A CSV file is read as it is: its layout (delimiter, header row or not, a trailing delimiter) is
worked out from its first lines and written to the contract's `csv` section, which ingest then
reads it through; missing-value tokens and surrounding whitespace are found in the data and
written to `encoding`, which every reader applies. The rules are in docs/data.md.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import math
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.coercion import Parsed, parse_column
from gitops_ml.config import EvaluateParams, SplitParams, load_params
from gitops_ml.contract import (
    ENCODING_KEYS,
    ENCODING_SETTINGS,
    GROUP_MARKS,
    GROUPED_NUMBER,
    WHITESPACE,
    Checks,
    Column,
    ColumnRole,
    ColumnType,
    Contract,
    Encoding,
    column_to_dict,
    csv_to_dict,
    parse_contract,
)
from gitops_ml.errors import UserError
from gitops_ml.io import CsvLayout, TableReadError
from gitops_ml.tasks import TASKS, Task

# Words of the usual target names: the generic ones, then well-known data sets' (breast cancer's
# diagnosis, Titanic's survived, credit default, card fraud).
TARGET_HINTS = (
    *("target", "label", "outcome", "class", "y"),
    *("diagnosis", "survived", "default", "fraud"),
)
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
ID_LAST_WORDS = ("no", "nr", "num", "number")  # patient_no, AccountNr, order number
MAX_ALLOWED = 25  # more distinct values than this: free text, no allowed list
MAX_CODE_WIDTH = 32  # many values all this wide or narrower, each as wide: a code (zip, SKU)
MAX_CLASSES = 10  # an integer target with more distinct values is a quantity (regression)
# A number written with a decimal comma (its digits maybe grouped: 1.234,5, 1 234,5), or a
# whole number (ASCII digits: as pandas reads them).
DECIMAL_COMMA_NUMBER = (
    rf"\s*[-+]?(?:(?:\d{{1,3}}(?:{GROUP_MARKS[',']}\d{{3}})+|\d+)(?:,\d*)?|,\d+)"
    r"(?:[eE][-+]?\d+)?\s*"
)
# A number with no grouping, by its decimal mark.
PLAIN_NUMBER = {mark: rf"\s*[-+]?\d+(?:{re.escape(mark)}\d*)?\s*" for mark in ".,"}
# What each of the contract's encoding settings (ENCODING_SETTINGS) means, for the draft's
# comment beside it.
SETTING_MEANINGS = {
    "strip": "values are read without surrounding whitespace",
    "day_first": "03/01/2024 is 3 January",
    "decimal_comma": "12,5 is twelve and a half",
    "thousands": "digits may be grouped by threes (1,234, 1.234, 1 234 or 1'234)",
}
DATE_LIKE = r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # 2025-08-07, 07/08/2025, 2025.8.7 …
LEADING_ZERO = r"0\d+"  # 02134, 007: a code (zip, account, product); a number drops the zero
# How real files write "no value", compared stripped and case-insensitively: each one seen in
# the data goes into the contract's `encoding.missing_values`, as the file spells it.
# The last group: a spreadsheet formula's errors, exported as they show (no value either).
MISSING_TOKENS = (
    *("?", "NA", "N/A", "n/a", "-", "--", "null", "None", "NaN", "#N/A", "nil"),
    *("#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"),
)
DELIMITERS = (",", ";", "\t", "|")  # tried in this order; ties go to the earlier one
SAMPLE_BYTES = 1 << 16  # the file's layout is worked out from its first 64 KiB
READ_CHUNK = 1 << 20  # the file's encoding from all of it, a MiB at a time
SAMPLE_ROWS = 200


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
    notes: list[str] = field(default_factory=list)  # about the file as a whole
    csv: bool = False  # drafted from a CSV file: the contract records its layout


# --------------------------------------------------------------------------------------------
# The file's layout: delimiter, header row, a trailing delimiter.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A CSV file's layout as read from its first lines, with what a reviewer should know."""

    csv: CsvLayout
    notes: tuple[str, ...]


def _rows(sample: str, delimiter: str) -> list[list[str]]:
    rows = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
    return rows[:SAMPLE_ROWS]


def _delimiter(sample: str) -> str:
    """The candidate that splits the data rows into the same number of fields (more than one)
    most consistently; on a tie, the one that splits the first row (the header) as it splits
    the rest (`59,0;w;32,1` is split alike by both `;` and `,`, its header only by `;`), then
    more fields, then the order of DELIMITERS. (csv.Sniffer guesses from character frequencies
    and gives up on ragged or small samples.)"""

    def score(delimiter: str) -> tuple[float, bool, int]:
        rows = _rows(sample, delimiter)
        body = rows[1:] or rows
        widths = Counter(len(row) for row in body)
        width, count = max(widths.items(), key=lambda wc: (wc[1], wc[0])) if widths else (0, 0)
        first_alike = bool(rows) and len(rows[0]) == width
        return (count / len(body), first_alike, width) if width > 1 else (0.0, False, 0)

    best = max(DELIMITERS, key=lambda d: (score(d), -DELIMITERS.index(d)))
    return best if score(best)[2] > 1 else ","


CURRENCY_SIGNS = "[$€£¥]"
UNICODE_MINUS = "\u2212"  # −5.5, as typeset text and copied web tables write it
# A number as spreadsheets write it, maybe with a currency sign ($2,068.70, € 12), as a
# percentage (12.5 %), in accounting style a negative one in parentheses ((1,234)), or with a
# typographic minus (−5.5).
SIGN = f"[-+{UNICODE_MINUS}]"
SPREADSHEET_NUMBER = (
    rf"\s*{SIGN}?\s*{CURRENCY_SIGNS}?\s*{SIGN}?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?\s*%?\s*"
)
WRITTEN_NUMBER = re.compile(rf"^(?:{SPREADSHEET_NUMBER}|\({SPREADSHEET_NUMBER}\))$")


def _written_number(values: pd.Series) -> str | None:
    """A value of a column of numbers that reads as text (a currency sign: no reader takes
    one), or None for any other column."""
    if values.empty or not values.str.match(WRITTEN_NUMBER).all():
        return None
    written = values[~values.map(_is_number)]
    return None if written.empty else str(written.iloc[0])


# A measurement below or above what the instrument reads: <0.5, > 100, ≤0.01 (lab results).
LIMIT = re.compile(r"^\s*(?:[<>]=?|[≤≥])\s*(?:\d+\.?\d*|\.\d+)\s*$")


def _numbers_as_text(values: pd.Series) -> bool:
    """A column of numbers spelt so that no reader takes them ($1.20, 12.5 %, <0.5, −5.5):
    never a row identifier, however unique."""
    text = values.dropna().astype(str)  # missing tokens are already NaN here
    return _written_number(text) is not None or _limit(text) is not None


def _limit(values: pd.Series) -> str | None:
    """A value like <0.5 in a column of numbers and such limits; None for any other column."""
    is_limit = values.str.match(LIMIT)
    if not is_limit.any() or not values[~is_limit].map(_is_number).all():
        return None
    return str(values[is_limit].iloc[0])


def _without_sign(number: str) -> str:
    """How to write a number that reads as text: "the currency sign (2,068.70)" for $2,068.70,
    "the % sign (12.5)" for 12.5 %, a minus sign for (1,234)."""
    plain = re.sub(rf"{CURRENCY_SIGNS}|%|\s", "", number)
    if plain.startswith("("):
        return f"the parentheses, a minus sign instead (-{plain.strip('()')})"
    if UNICODE_MINUS in plain:
        return f"the typographic minus, an ASCII '-' instead ({plain.replace(UNICODE_MINUS, '-')})"
    return f"the {'% sign' if '%' in number else 'currency sign'} ({plain})"


YEAR = re.compile(r"(?:18|19|20)\d\d")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _year_over_figures(text: str, below: set[str]) -> bool:
    """A year (2019) above numbers that are not years: a wide table's column per year."""
    figures = [value for value in below if _is_number(value)]
    return bool(YEAR.fullmatch(text)) and any(not YEAR.fullmatch(v) for v in figures)


def _looks_like_data(first: list[str], body: list[list[str]]) -> str | None:
    """Why the first row is a data row rather than names, or None when it reads as a header:
    a name is never empty, a number (but a year above figures), or a value its column holds
    further down."""
    for index, cell in enumerate(first):
        text = cell.strip()
        below = {row[index].strip() for row in body if index < len(row)}
        if not text:
            return f"its field {index + 1} is empty"
        if _is_number(text) and not _year_over_figures(text, below):
            return f"its field {index + 1} ({text!r}) is a number"
        if text in below:
            return f"its field {index + 1} ({text!r}) occurs again in that column"
    return None


def sniff_layout(sample: str, names: list[str] | None = None, encoding: str = "utf-8") -> Layout:
    """The layout of a CSV file from its first lines (`sample`, its text read as `encoding`);
    `names` says the file has no header row and names its columns."""
    delimiter = _delimiter(sample)
    rows = _rows(sample, delimiter)
    if not rows:
        raise SchemaInferError("the file has no rows")
    first, body = rows[0], rows[1:]
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    notes = [f"the delimiter is {shown} (read from the first lines: csv.delimiter)"]
    if encoding != CsvLayout.encoding:
        notes.append(
            f"the file is not UTF-8: read as {encoding} (csv.encoding); every reader of the "
            "file reads it so"
        )
    trailing = bool(body) and all(not row[-1].strip() for row in body)
    width = Counter(len(row) for row in body or rows).most_common(1)[0][0] - trailing
    if trailing:
        notes.append(f"every row ends with {shown}: an empty last column, read as no column at all")
    if names is not None:
        if len(names) != width:
            raise SchemaInferError(
                f"--names gives {len(names)} names; the file has {width} columns"
            )
        notes.append("no header row (--names): the names are yours, in csv.names and columns")
        return Layout(CsvLayout(delimiter, False, tuple(names), encoding), tuple(notes))
    if (
        first
        and not first[0].strip()
        and _looks_like_data(first[1:width], [r[1:] for r in body]) is None
    ):
        if not all(row and row[0].strip().isdigit() for row in body):
            raise SchemaInferError(
                "the header row's first field is empty: name that column in the file"
            )
        notes.append(
            "the first column has no name and counts the rows: a saved row index (pandas' "
            "to_csv writes one), never read (csv.index)"
        )
        return Layout(CsvLayout(delimiter, encoding=encoding, index=True), tuple(notes))
    reason = _looks_like_data(first[:width], body)
    if reason is None:
        return Layout(CsvLayout(delimiter, encoding=encoding), tuple(notes))
    generated = tuple(f"column_{i + 1}" for i in range(width))
    notes.append(
        f"no header row (the first row is data: {reason}): the columns are named column_1 … "
        f"column_{width}; rename them in csv.names and columns, or pass --names a,b,c"
    )
    return Layout(CsvLayout(delimiter, False, generated, encoding), tuple(notes))


def text_encoding(path: str) -> str:
    """How a CSV file's text is stored: UTF-8 when every byte reads so, UTF-16 with its
    byte-order mark (a spreadsheet's "Unicode text"), else cp1252 (a spreadsheet exported on
    Windows), else latin-1, which reads any byte. The whole file is read: one "ü" on its last
    line decides."""
    import fsspec

    try:
        with fsspec.open(path, "rb", compression="infer") as handle:
            first = handle.read(READ_CHUNK)
            if first.startswith((b"\xff\xfe", b"\xfe\xff")):
                return "utf-16"
            for encoding in ("utf-8", "cp1252"):
                decoder = codecs.getincrementaldecoder(encoding)()
                handle.seek(0)
                try:
                    while chunk := handle.read(READ_CHUNK):
                        decoder.decode(chunk)
                    decoder.decode(b"", final=True)
                    return encoding
                except UnicodeDecodeError:
                    continue
            return "latin-1"
    except FileNotFoundError:
        raise TableReadError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise TableReadError(f"{path}: cannot read: {exc}") from None


def read_sample(path: str, encoding: str = "utf-8") -> str:
    """The first SAMPLE_BYTES of a CSV file or URL as text, whole lines only."""
    import fsspec

    try:
        with fsspec.open(path, "rt", compression="infer", encoding=encoding, errors="replace") as f:
            sample = f.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise TableReadError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise TableReadError(f"{path}: cannot read: {exc}") from None
    if not sample.strip():
        raise TableReadError(f"{path}: file is empty")
    if len(sample) == SAMPLE_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    return sample


def _tokens(name: str) -> list[str]:
    """Words of a column name: `CustomerID`, `customer_id` and `customer-id` all give [.., id]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _is_target_name(name: str) -> bool:
    return any(
        t == h or (len(h) > 1 and t.startswith(h)) for t in _tokens(name) for h in TARGET_HINTS
    )


def _is_id_name(name: str) -> bool:
    tokens = _tokens(name)
    if any(t in ID_HINTS for t in tokens):
        return True
    return bool(tokens) and tokens[-1] in ID_LAST_WORDS


def _is_slice_name(name: str) -> bool:
    return any(t == h or t.startswith(h) for t in _tokens(name) for h in SLICE_HINTS)


def _spellings(values: pd.Series) -> list[str]:
    """Distinct raw text spellings, most frequent first (ties by text)."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return []
    text = values[values.map(lambda v: isinstance(v, str))]
    counts = text.value_counts()
    return sorted(counts.index, key=lambda v: (-int(counts[v]), v))


def _as_written(text: str) -> str:
    """A token as the contract writes it: without surrounding whitespace, unless that is all."""
    return text.strip(WHITESPACE) or text


def _reading(frame: pd.DataFrame) -> tuple[Encoding, list[str]]:
    """How the file writes values: the missing tokens it uses (MISSING_TOKENS, as spelled) and
    whether values carry surrounding whitespace (`strip`), with a note for each finding."""
    known = {token.casefold() for token in MISSING_TOKENS}
    missing: list[str] = []
    padded: list[str] = []
    for col in frame.columns:
        for text in _spellings(frame[col]):
            stripped = text.strip(WHITESPACE)
            if stripped.casefold() in known and stripped not in missing:
                missing.append(stripped)
            if stripped and stripped != text and not padded:
                padded.append(f"{text!r} in {str(col)!r}")
    notes = []
    if missing:
        notes.append(
            f"{', '.join(repr(m) for m in missing)} read as missing values (encoding."
            "missing_values); remove a token that is a real value in your data"
        )
    if padded:
        notes.append(
            f"values have surrounding whitespace (e.g. {padded[0]}): encoding.strip reads "
            "them without it, in training, serving and drift alike"
        )
    default = Encoding()
    encoding = Encoding(
        missing_values=(*missing, *(v for v in default.missing_values if v not in missing)),
        strip=bool(padded),
    )
    present = {col: _present_text(frame[col], encoding) for col in frame.columns}
    texts = {col: text for col, text in present.items() if text is not None and not text.empty}
    for setting, found, what in (
        ("decimal_comma", _only_decimal_comma, "numbers are written with a decimal comma"),
        ("thousands", _grouped, "numbers have their digits grouped by threes"),
        ("day_first", _only_day_first, "dates are written day first"),
    ):
        found_in = (found(frame[col], text, encoding) for col, text in texts.items())
        example = next(filter(None, found_in), None)
        if example is not None:
            notes.append(
                f"{what} ({example}): encoding.{setting} reads them so, in training, serving "
                "and drift alike"
            )
            settings: dict[str, Any] = {setting: True}
            encoding = replace(encoding, **settings)
    return encoding, notes


def _present_text(values: pd.Series, encoding: Encoding) -> pd.Series | None:
    """A text column's values that are not missing, as text; None for a typed column."""
    if not pd.api.types.is_object_dtype(values.dtype) and not pd.api.types.is_string_dtype(
        values.dtype
    ):
        return None
    return parse_column(values, "category", encoding).values.dropna().astype(str)


# The encoding settings `_reading` finds, each from a text column: its values, their present
# text (_present_text) and the encoding found so far → an example and its column, or None.


def _only_decimal_comma(values: pd.Series, text: pd.Series, encoding: Encoding) -> str | None:
    """A number of a column of numbers that reads only with a decimal comma (12,5), and its
    column, or None. 1,250 alone could be a thousands separator: not enough."""
    if not text.str.fullmatch(DECIMAL_COMMA_NUMBER).all():
        return None
    decimal = text[text.str.contains(r",(?:\d{1,2}|\d{4,})(?:[eE]|\s*$)", regex=True)]
    return None if decimal.empty else f"{decimal.iloc[0]!r} in {str(values.name)!r}"


def _grouped(values: pd.Series, text: pd.Series, encoding: Encoding) -> str | None:
    """A number of a column of numbers with its digits grouped by threes (1,250 or, with a
    decimal comma, 1.250), and its column, or None."""
    point = "," if encoding.decimal_comma else "."
    grouped = text.str.fullmatch(GROUPED_NUMBER[point].pattern)
    if not grouped.any() or not (grouped | text.str.fullmatch(PLAIN_NUMBER[point])).all():
        return None
    return f"{text[grouped].iloc[0]!r} in {str(values.name)!r}"


def _only_day_first(values: pd.Series, text: pd.Series, encoding: Encoding) -> str | None:
    """A date of a column of dates that reads only day first (13/01/2024), and its column,
    or None."""
    if not text.str.match(DATE_LIKE).all():
        return None
    month_first = parse_column(values, "datetime", encoding).bad
    if not month_first.any():
        return None
    if parse_column(values, "datetime", replace(encoding, day_first=True)).bad.any():
        return None
    return f"{values[month_first].iloc[0]!r} in {str(values.name)!r}"


def _spelled(frame: pd.DataFrame, kinds: dict[str, ColumnType], base: Encoding) -> Encoding:
    """`base` plus every true/false/missing spelling seen, as written in the file."""
    seen: dict[str, list[str]] = {key: [] for key in ENCODING_KEYS}
    for col in frame.columns:
        for text in _spellings(frame[col]):
            if base.is_missing(text):
                key = "missing_values"
            elif kinds[str(col)] == "bool" and base.bool_of(text) is not None:
                key = "true_values" if base.bool_of(text) else "false_values"
            else:
                continue
            if _as_written(text) not in seen[key]:
                seen[key].append(_as_written(text))
    merged = {
        key: tuple(seen[key] + [v for v in getattr(base, key) if v not in seen[key]])
        for key in ENCODING_KEYS
    }
    return replace(
        base,
        true_values=merged["true_values"],
        false_values=merged["false_values"],
        missing_values=merged["missing_values"],
    )


def _positive(values: pd.Series, encoding: Encoding) -> str | None:
    """The spelling of the positive class as the file writes it ("Yes"), if it is text."""
    trues = [t for t in _spellings(values) if encoding.bool_of(t) is True]
    return _as_written(trues[0]) if trues else None


def _distinct(values: pd.Series, encoding: Encoding) -> list[str]:
    """The distinct values of a column as the contract reads them (stripped, not missing),
    most frequent first, ties in sorted order: a binary target when there are two."""
    present = values.dropna()
    text = present.astype(str).map(encoding.text)
    text = text[~text.map(encoding.is_missing)]
    counts = text.value_counts()
    return sorted(counts.index, key=lambda v: (-int(counts[v]), v))


@dataclass(frozen=True)
class ClassMinimum:
    """The fewest rows a class of a classification target needs, and why: one in the test set
    and one per cross-validation fold in the training set (evaluate refuses fewer)."""

    rows: int = 1
    why: str = "no minimum"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ClassMinimum:
        """From `split.test_fraction` and `evaluate.cv_folds`, as the pipeline will use them."""
        split = SplitParams.from_params(params)
        folds = EvaluateParams.from_params(params).cv_folds
        return cls(
            split.rows_per_class(folds),
            f"the test set (split.test_fraction {split.test_fraction:g}) gets one and the "
            f"training set keeps {folds} for the {folds}-fold cross-validation (evaluate.cv_folds)",
        )


@dataclass(frozen=True)
class Target:
    """The target column, its task, and how its values are read."""

    name: str
    task: Task
    note: str  # why this column, why this task
    positive: str | None = None  # binary: the spelling of the positive class; None: not text
    negative: str | None = None  # binary: the other spelling, when not a true/false pair
    classes: tuple[str, ...] | None = None  # multiclass: as spelt, sorted (ints numerically)


Typed = dict[str, tuple[ColumnType, Parsed, list[str]]]  # column → (type, parsed, notes)


@dataclass(frozen=True)
class TargetChoice:
    """What the user said about the target (`--target`, `--task`, `--positive`; None: guess),
    and the fewest rows a class needs."""

    target: str | None = None
    task: Task | None = None
    positive: str | None = None
    minimum: ClassMinimum = field(default_factory=ClassMinimum)


def _can_be_target(name: str, kind: ColumnType, parsed: Parsed, distinct: list[str]) -> bool:
    """Not a date, not an identifier, and two values or more (a single true/false one too)."""
    present = parsed.values.dropna()
    identifier = (
        len(present) > 1 and present.is_unique and (kind == "category" or _is_id_name(name))
    )
    return kind != "datetime" and not identifier and (len(distinct) > 1 or kind == "bool")


def _target_column(frame: pd.DataFrame, typed: Typed, distinct: dict[str, list[str]]) -> str:
    """The guessed target: the first column named like one, else the last column that can be
    one (`_can_be_target`)."""
    usable = [
        str(col)
        for col in frame.columns
        if _can_be_target(str(col), typed[str(col)][0], typed[str(col)][1], distinct[str(col)])
    ]
    if not usable:
        raise SchemaInferError(
            "no column can be the target (each is a date, an identifier or a constant); "
            "pass --target NAME"
        )
    hinted = [name for name in usable if _is_target_name(name) and not _is_id_name(name)]
    return hinted[0] if hinted else usable[-1]


def _class_counts(kind: ColumnType, parsed: Parsed) -> pd.Series:
    """Rows per class, classes as the contract spells them in a stable order: text sorted,
    whole numbers numerically."""
    present = parsed.values.dropna()
    if kind == "int":
        counts = present.astype("int64").value_counts().sort_index()
        return pd.Series(counts.to_numpy(), index=[str(v) for v in counts.index])
    return present.astype(str).value_counts().sort_index()


def _rare_classes(name: str, counts: pd.Series, minimum: ClassMinimum) -> str:
    """The error naming the classes with fewer rows than `minimum`, and the choices."""
    rare = counts[counts < minimum.rows]
    shown = ", ".join(f"{c!r} ({n} row{'s' if n != 1 else ''})" for c, n in rare.head(10).items())
    more = f" and {len(rare) - 10} more" if len(rare) > 10 else ""
    return (
        f"target {name!r} has {len(rare)} class(es) with fewer than {minimum.rows} rows: "
        f"{shown}{more}; each class needs {minimum.rows} so that {minimum.why}. Choose: merge them "
        "into another class, drop their rows, or bring more data (or --target NAME if this "
        "is not the target)"
    )


def _detect_task(kind: ColumnType, counts: pd.Series, minimum: ClassMinimum) -> tuple[Task, str]:
    """The task a target's values suggest, and why (docs/tasks.md): two values → binary; text,
    or whole numbers with few values each seen often enough → multiclass; numbers → regression."""
    if kind == "bool" or len(counts) <= 2:
        return "binary", "two values" if len(counts) == 2 else "one value"
    if kind == "category":
        return "multiclass", f"text with {len(counts)} values"
    if kind != "int":
        return "regression", "numbers with decimals"
    numbers = f"{len(counts)} distinct whole numbers"
    if len(counts) > MAX_CLASSES:
        return "regression", f"{numbers}, more than {MAX_CLASSES}: a quantity"
    if int(counts.min()) < minimum.rows:
        rarest = f"{counts.idxmin()!r} in {int(counts.min())} rows"
        return "regression", f"{numbers}, {rarest} (a class needs {minimum.rows}): a quantity"
    return "multiclass", f"{numbers}, each in {minimum.rows} rows or more: class codes"


def _pick_target(
    frame: pd.DataFrame,
    encoding: Encoding,
    typed: Typed,
    choice: TargetChoice,
) -> Target:
    """The target column (`--target`, else guessed) and its task (`--task`, else detected)."""
    distinct = {str(col): _distinct(frame[col], encoding) for col in frame.columns}
    if choice.target is not None and choice.target not in distinct:
        raise SchemaInferError(f"--target {choice.target!r} is not a column of the file")
    name = choice.target or _target_column(frame, typed, distinct)
    how = "--target" if choice.target else "guessed: pass --target NAME to choose another"
    kind, parsed, _ = typed[name]
    written = _written_number(pd.Series(distinct[name], dtype=object))
    if kind == "category" and written is not None and choice.task is None:
        raise SchemaInferError(
            f"target {name!r} holds numbers written like {written!r}, which read as text: write "
            f"them without {_without_sign(written)} in the file, then draft again "
            "(or --target NAME if this is not the target)"
        )
    counts = _class_counts(kind, parsed)
    detected, why = _detect_task(kind, counts, choice.minimum)
    task = choice.task or detected
    reason = "--task" if choice.task else f"{why}; --task chooses another"
    note = f"the target ({how}); task {task} ({reason}): the model gives {TASKS[task].predicts}"
    if task != "binary" and choice.positive is not None:
        raise SchemaInferError(f"--positive is for a binary target; {name!r} is task {task}")
    if task == "binary":
        return _binary_target(frame[name], name, distinct[name], encoding, choice.positive, note)
    if kind not in TASKS[task].target_types:
        raise SchemaInferError(
            f"--task {task}: target {name!r} reads as {kind} "
            f"({', '.join(distinct[name][:3])} …); a {task} target is "
            f"{' or '.join(TASKS[task].target_types)}"
        )
    if task == "regression":
        return Target(name, task, note)
    if len(counts) < 3:
        raise SchemaInferError(
            f"--task multiclass: target {name!r} has {len(counts)} distinct values; two classes "
            "are task binary (with --positive)"
        )
    if int(counts.min()) < choice.minimum.rows:
        raise SchemaInferError(_rare_classes(name, counts, choice.minimum))
    classes = tuple(str(c) for c in counts.index)
    shown = ", ".join(classes[:10]) + (" …" if len(classes) > 10 else "")
    note += f"; classes in output order: {shown}"
    return Target(name, task, note, classes=classes)


def _binary_target(
    values: pd.Series,
    name: str,
    pair: list[str],
    encoding: Encoding,
    positive: str | None,
    note: str,
) -> Target:
    """A two-valued target: its positive class (a true/false pair keeps its meaning, else
    `--positive`, else the rarer value) and, for any other pair, its negative spelling."""
    if len(pair) > 2 or (len(pair) < 2 and parse_column(values, "bool", encoding).bad.any()):
        raise SchemaInferError(
            f"target {name!r} has {len(pair)} distinct values, not two; a binary target "
            "needs two, such as yes/no, 1/0 or >50K/<=50K"
        )
    natural = len(pair) == 1 or (
        {encoding.bool_of(v) for v in pair} == {True, False} and positive is None
    )
    if natural:
        spelled = _positive(values, encoding)
        shown = "true" if spelled is None else repr(spelled)  # None: a column of booleans
        return Target(name, "binary", f"{note}; positive class {shown}", positive=spelled)
    if positive is not None and positive not in pair:
        raise SchemaInferError(f"--positive {positive!r} is not one of {name!r}'s values {pair}")
    chosen = positive or pair[-1]
    other = next(v for v in pair if v != chosen)
    rule = "--positive" if positive else "the rarer value; --positive VALUE chooses"
    note = f"{note}; positive class {chosen!r} ({rule}), negative {other!r}"
    return Target(name, "binary", note, positive=chosen, negative=other)


def _with_target(encoding: Encoding, target: Target) -> tuple[Encoding, Encoding]:
    """(the encoding features are typed with, the contract's encoding): the target's own pair
    becomes a true and a false token, and leaves any list it would contradict."""
    if target.negative is None or target.positive is None:
        return encoding, encoding

    def key(token: str) -> str:  # "1" and "1.0" are one token here
        text = token.strip().casefold()
        return repr(float(text)) if _is_number(text) else text

    pair = {key(target.positive), key(target.negative)}

    def without(tokens: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t for t in tokens if key(t) not in pair)

    features = replace(
        encoding,
        true_values=without(encoding.true_values),
        false_values=without(encoding.false_values),
    )
    contract = replace(
        features,
        true_values=(target.positive, *features.true_values),
        false_values=(target.negative, *features.false_values),
    )
    return features, contract


def _date_order_note(values: pd.Series, text: pd.Series, encoding: Encoding) -> list[str]:
    """A note when the dates read either way (03/01/2024) and the draft had to pick one."""
    if encoding.day_first or text.str.match(r"^\s*\d{4}-").all():
        return []
    if parse_column(values, "datetime", replace(encoding, day_first=True)).bad.any():
        return []  # 01/13/2024: month first is the only reading
    return ["dates read month first (03/01/2024 is 1 March): set encoding.day_first if not"]


def _infer_type(values: pd.Series, encoding: Encoding) -> tuple[ColumnType, Parsed, list[str]]:
    """The narrowest contract type every present value converts to (read with `encoding`, as
    validate will read it), with notes on guesses."""

    def parse(kind: ColumnType, column: pd.Series = values) -> Parsed:
        return parse_column(column, kind, encoding)

    as_category = parse("category")
    if as_category.values.isna().all():
        return "category", as_category, ["every value is missing: type guessed"]
    if pd.api.types.is_bool_dtype(values.dtype):
        return "bool", parse("bool"), []
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "datetime", parse("datetime"), []
    notes: list[str] = []
    original = values  # validate will convert these values, so every guess is checked on them
    if not pd.api.types.is_numeric_dtype(values.dtype):
        as_bool = parse("bool")
        if not as_bool.bad.any():
            return "bool", as_bool, ["text values read as true/false"]
        text = as_category.values.dropna().astype(str)
        if text.str.match(DATE_LIKE).all():
            as_datetime = parse("datetime")
            if not as_datetime.bad.any():
                return "datetime", as_datetime, _date_order_note(values, text, encoding)
        coded = text[text.str.fullmatch(LEADING_ZERO)]
        if len(coded):
            note = (
                f"values written with a leading zero (e.g. {coded.iloc[0]!r}) read as text codes: "
                "a number would drop the zero; make it int if it is a quantity"
            )
            return "category", as_category, [note]
        as_number = parse("float")
        if as_number.bad.any() or as_number.values.notna().sum() == 0:
            limit = _limit(text)
            if limit is not None:
                note = (
                    f"values like {limit!r} (a limit, not a measurement) make this column text: "
                    "write a number for them (the limit, or half of it) or leave them missing "
                    "to use the column as numbers"
                )
                return "category", as_category, [note]
            written = _written_number(text)
            if written is None:
                return "category", as_category, []
            note = (
                f"numbers written like {written!r} read as text: write them without "
                f"{_without_sign(written)} to use them as numbers"
            )
            return "category", as_category, [note]
        values = as_number.values  # CSV cells are text: numbers arrive as text, that is normal
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    present = numbers.dropna()
    if _dates_in_digits(present):
        notes.append(
            f"values look like dates written YYYYMMDD (e.g. {int(present.iloc[0])}): as a number "
            "a month's end and the next month's start are 70 apart; write them 2024-01-31 to "
            "read them as dates, or derive a number from them (days since)"
        )
    as_bool = parse("bool", original)
    if set(present.unique()) == {0.0, 1.0} and not as_bool.bad.any():
        notes.append("only 0 and 1 seen: read as bool; make it int if it is a count")
        return "bool", as_bool, notes
    if pd.api.types.is_integer_dtype(values.dtype):
        return "int", parse("int", original), notes
    finite = bool(np.isfinite(present).all() and (present.abs() < 2**53).all())
    if finite and (present == np.round(present)).all():
        return "int", parse("int", original), notes
    return "float", parse("float", original), notes


def _plain_number(number: float) -> str:
    """20190202 as written (`:g` gives 2.01902e+07), 42.2 as 42.2."""
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:g}"


def _dates_in_digits(numbers: pd.Series) -> bool:
    """20240131: whole numbers that all read as dates from 1900 to 2100."""
    if numbers.empty or not numbers.between(19000101, 21001231).all():
        return False
    if not (numbers == np.round(numbers)).all():
        return False
    digits = numbers.astype("int64").astype(str)
    return bool(pd.to_datetime(digits, format="%Y%m%d", errors="coerce").notna().all())


def _spelling_variants(distinct: list[str], what: str = "categories") -> list[str]:
    """A note when values differ only in case or a trailing dot (Male, male; >50K, >50K. as
    UCI's adult test file spells its labels): to every reader, and so to the model, they are
    different values."""
    spellings: dict[str, list[str]] = {}
    for value in distinct:
        spellings.setdefault(value.rstrip(".").casefold(), []).append(value)
    variants = next((found for found in spellings.values() if len(found) > 1), None)
    if variants is None:
        return []
    if len({v.casefold() for v in variants}) == 1:
        differ = "case"
    elif len({v.rstrip(".") for v in variants}) == 1:
        differ = "a trailing dot"
    else:
        differ = "case and a trailing dot"
    shown = ", ".join(repr(v) for v in variants)
    return [f"{shown} differ only in {differ}: different {what} to the model; write one spelling"]


def nice_bounds(low: float, high: float, integer: bool) -> tuple[float, float]:
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
        low, high = nice_bounds(float(numbers.min()), float(numbers.max()), kind == "int")
        seen = f"{_plain_number(numbers.min())} to {_plain_number(numbers.max())}"
        note = f"range seen {seen}: widen to what is plausible"
        return Checks(min=low, max=high, unique=unique), [note]
    if kind == "category" and not unique:
        distinct = sorted(values.astype(str).unique())
        if not distinct:
            return Checks(), []
        notes = _spelling_variants(distinct)
        if len(distinct) <= MAX_ALLOWED and len(distinct) <= max(1, len(values) // 2):
            if len(distinct) == 1 and parsed.values.isna().any():  # a checkbox: X or blank
                note = f"allowed = the one value seen ({distinct[0]!r}); the rest are missing"
            elif len(distinct) == 1:
                note = (
                    f"one value seen ({distinct[0]!r}): it tells the model nothing; remove the "
                    "column, or add the other legitimate values to allowed"
                )
            else:
                note = f"allowed = the {len(distinct)} values seen; add any other legitimate value"
            return Checks(allowed=tuple(distinct)), [note, *notes]
        widths = {len(value) for value in distinct}
        as_text = _numbers_as_text(pd.Series(distinct, dtype=object))  # 12.5%, <0.5: no code
        if len(widths) == 1 and 1 < (width := widths.pop()) <= MAX_CODE_WIDTH and not as_text:
            note = (
                f"{len(distinct)} distinct values, each {width} characters: a code (no allowed "
                f"list); max_length {width} refuses longer ones, widen it if they can occur"
            )
            return Checks(max_length=width), [note, *notes]
        return Checks(), [f"{len(distinct)} distinct values: no allowed list (free text?)", *notes]
    return Checks(unique=unique), []


def infer_contract(
    frame: pd.DataFrame,
    source: str,
    name: str = "dataset",
    choice: TargetChoice | None = None,
    layout: Layout | None = None,
) -> Draft:
    """Draft a contract for `frame`, a CSV file's cells as text (or a Parquet file's columns)
    read as `layout` says; `source` (a file name, no directory) goes in comments; `choice`
    is what the user said about the target (default: guess everything)."""
    reading, reading_notes = _reading(frame)
    typed: Typed = {str(col): _infer_type(frame[col], reading) for col in frame.columns}
    chosen = _pick_target(frame, reading, typed, choice or TargetChoice())
    feature_encoding, target_encoding = _with_target(reading, chosen)
    inferred: Typed = (
        typed
        if feature_encoding == reading
        else {col: _infer_type(frame[col], feature_encoding) for col in typed}
    )
    if chosen.task == "binary":  # its own pair is its true and false token
        as_bool = parse_column(frame[chosen.name], "bool", target_encoding)
        if as_bool.bad.any():
            raise SchemaInferError(
                f"{source}: target {chosen.name!r} holds values that read as neither class, "
                f"e.g. {frame[chosen.name][as_bool.bad].iloc[0]!r}"
            )
        inferred[chosen.name] = ("bool", as_bool, [])
    inferred = {str(col): inferred[str(col)] for col in frame.columns}  # the file's order
    kinds = {col: kind for col, (kind, _, _) in inferred.items()}
    target_name = chosen.name
    unique = {  # only ids and codes can promise uniqueness; a float or a date cannot
        col: kind in ("category", "int")
        and bool(parsed.values.notna().all() and parsed.values.is_unique and len(frame) > 1)
        for col, (kind, parsed, _) in inferred.items()
    }
    encoding = _spelled(frame, kinds, target_encoding)
    datetimes = [col for col, kind in kinds.items() if kind == "datetime"]
    timestamp = datetimes[0] if datetimes else None
    units = _units_row(inferred)
    id_candidates = [col for col in kinds if unique[col] and col != target_name]
    id_candidates = [c for c in id_candidates if _is_id_name(c)] or [
        c
        for c in id_candidates
        if kinds[c] == "category" and c not in units and not _numbers_as_text(inferred[c][1].values)
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
    for col, (kind, parsed, column_notes) in inferred.items():
        if col in omitted:
            continue
        role = special.get(col, "feature")
        notes = list(column_notes)
        seen = frame[col].dropna().astype(str).str.strip().unique()  # as written, stripped
        if role == "feature" or (role == "target" and chosen.task == "regression"):
            checks, check_notes = _checks(kind, parsed, unique[col] and role == "feature")
            notes += check_notes
            constant = len(seen) == 1 and parsed.values.notna().all()  # not a checkbox
            if role == "feature" and kind != "category" and constant:  # categories: _checks
                notes.append(
                    f"one value seen ({seen[0]!r}): it tells the model nothing; remove the column"
                )
        else:
            checks = Checks(unique=role == "id")
        if role == "target":
            notes.append(chosen.note)
            if chosen.task != "regression":
                notes += _spelling_variants(sorted(seen), "classes")
        if role == "id":
            notes.append("every value is unique: treated as a row identifier, not a feature")
        elif role == "feature" and unique[col] and kind == "int":
            notes.append("every value is unique: if this is an identifier, remove the column")
        nullable = bool(parsed.values.isna().any())
        if role == "timestamp" and nullable:
            notes.append("missing timestamps: the time split needs one on every row")
        if role == "target" and nullable:
            unlabelled = int(parsed.values.isna().sum())
            notes.append(
                f"{unlabelled} row{'s have' if unlabelled > 1 else ' has'} no target value: "
                "split refuses them; label them or leave them out of the file"
            )
        target = role == "target"
        is_slice = role == "feature" and _is_slice_name(col)
        if is_slice:
            binned = "; numbers are binned" if kind in ("int", "float") else ""
            notes.append(
                "may be a sensitive attribute: slice: true reports metrics per group"
                f"{binned} (remove slice if it is not)"
            )
        drafts.append(
            DraftColumn(
                Column(
                    col,
                    kind,
                    role,
                    nullable,
                    checks,
                    positive=chosen.positive if target else None,
                    slice=is_slice,
                    task=chosen.task if target else None,
                    classes=chosen.classes if target else None,
                ),
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
        csv=layout.csv if layout else CsvLayout(),
    )
    file_notes = [*(layout.notes if layout else ()), *reading_notes, *_total_row(frame)]
    if units:
        shown = ", ".join(f"{first!r} in {col!r}" for col, first in list(units.items())[:3])
        file_notes.append(
            f"the first row holds text ({shown}) where the rows below hold numbers: a units "
            "line under the header? remove it from the file"
        )
    return Draft(
        contract, drafts, omitted, source, len(frame), notes=file_notes, csv=layout is not None
    )


def _units_row(inferred: dict[str, tuple[ColumnType, Parsed, list[str]]]) -> dict[str, str]:
    """The text columns whose first value is text and every other value a number (kg above
    70, 82, …): a second header line, each with that first value."""
    found: dict[str, str] = {}
    for col, (kind, parsed, _) in inferred.items():
        values = parsed.values
        if kind != "category" or len(values) < 3 or not isinstance(values.iloc[0], str):
            continue
        first, rest = values.iloc[0], values.iloc[1:].dropna()
        if _is_number(first) or len(rest) < 2 or not _is_number(str(rest.iloc[0])):
            continue  # the usual text column stops here, before reading all of it
        if rest.astype(str).map(_is_number).all():
            found[col] = first
    return found


# How a spreadsheet labels the sum it puts under its rows, compared stripped and casefolded.
TOTAL_LABELS = ("total", "totals", "grand total", "sum", "summe", "gesamt", "totaal")


def _total_row(frame: pd.DataFrame) -> list[str]:
    """A note when the last row looks like a spreadsheet's total: a sum is no example."""
    if frame.empty:
        return []
    last = frame.iloc[-1]
    label = next((str(v) for v in last if isinstance(v, str) and v.strip()), "")
    if label.strip().casefold() not in TOTAL_LABELS:
        return []
    return [
        f"the last row starts with {label.strip()!r}: a spreadsheet's total row is not data; "
        "remove it from the file"
    ]


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
        f"# Guessed roles: target {contract.target} (task {contract.task}), "
        f"id {contract.id_column or '(none)'}, "
        f"timestamp {contract.timestamp or '(none: the split will be stratified, not by time)'}.",
        "# Ranges are the min/max seen rounded outward and allowed lists are the values seen:",
        "# widen them to what production data may hold, or valid new data will fail.",
        f"name: {_flow(contract.name)}",
        f"description: {_flow(contract.description)}",
        *(f"# review: {note}" for note in draft.notes),
        "# How raw values are written (compared case-insensitively; blank cells are missing):",
        "encoding:",
        *(f"  {key}: {_flow(list(getattr(contract.encoding, key)))}" for key in ENCODING_KEYS),
        *(
            f"  {key}: true  # {SETTING_MEANINGS[key]}"
            for key in ENCODING_SETTINGS
            if getattr(contract.encoding, key)
        ),
    ]
    if draft.csv:
        lines += ["# How the CSV file is laid out (ingest reads it this way):", "csv:"]
        lines += [f"  {key}: {_flow(value)}" for key, value in csv_to_dict(contract.csv).items()]
    lines.append("columns:")
    for draft_column in draft.columns:
        column = draft_column.column
        lines += [f"  # review: {note}" for note in draft_column.notes]
        for key, value in column_to_dict(column).items():
            lines.append(f"{'  - ' if key == 'name' else '    '}{key}: {_flow(value)}")
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
    infer.add_argument(
        "--target",
        help="the target column (default: the first named like target/label/outcome/class/y, "
        "else the last column)",
    )
    infer.add_argument(
        "--task",
        choices=list(TASKS),
        help="what the model learns (default: detected from the target's values, see the "
        "target's review note)",
    )
    infer.add_argument(
        "--params",
        default=paths.PARAMS,
        help="params file: split.test_fraction and evaluate.cv_folds set the fewest rows a "
        "class needs",
    )
    infer.add_argument(
        "--positive",
        help="the target's positive class as written in the file (default: the true one of "
        "yes/no, 1/0, true/false; otherwise the rarer value)",
    )
    infer.add_argument(
        "--names",
        help="the file has no header row: its column names, comma-separated (a,b,c)",
    )
    infer.add_argument("--force", action="store_true", help="overwrite an existing --output")


def run(args: argparse.Namespace) -> int:
    if args.output and Path(args.output).exists() and not args.force:
        raise SchemaInferError(
            f"{args.output} already exists; pass --force to overwrite it or choose another --output"
        )
    layout = None
    if not args.file.lower().split("?")[0].endswith((".parquet", ".pq")):
        names = None if args.names is None else [n.strip() for n in args.names.split(",")]
        encoding = text_encoding(args.file)
        layout = sniff_layout(read_sample(args.file, encoding), names, encoding)
    frame = gio.read_table(args.file, raw_text=True, layout=None if layout is None else layout.csv)
    source = Path(args.file.split("?")[0]).name
    choice = TargetChoice(
        args.target, args.task, args.positive, ClassMinimum.from_params(load_params(args.params))
    )
    draft = infer_contract(frame, source, _dataset_name(args.file), choice, layout)
    draft.path, draft.output = args.file, args.output or ""
    text = render(draft)
    if not args.output:
        sys.stdout.write(text)
        return 0
    gio.write_text(args.output, text)
    notes = sum(len(c.notes) for c in draft.columns)
    print(
        f"schema: drafted {len(draft.columns)} columns from {source} into {args.output}; "
        f"target {draft.contract.target!r} (task {draft.contract.task}); review the {notes} "
        "'# review:' notes",
        file=sys.stderr,
    )
    return 0
