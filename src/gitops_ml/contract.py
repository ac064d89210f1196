"""The data contract (`data/schema.yaml`) and everything derived from it.

One file declares each column once; validation, the ONNX input signature, serving and the
drift check all read it through this module so that changing a column is a one-file change.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gitops_ml import paths
from gitops_ml.config import refuse_unknown
from gitops_ml.errors import UserError
from gitops_ml.io import CsvLayout, read_yaml
from gitops_ml.tasks import ONNX_OUTPUTS, TASKS, Task, task_spec

if TYPE_CHECKING:  # pandera is slow to import; serving never needs it
    import pandera.pandas as pa

ColumnType = Literal["float", "int", "category", "bool", "datetime"]
ColumnRole = Literal["feature", "target", "timestamp", "id"]

COLUMN_TYPES: tuple[str, ...] = ("float", "int", "category", "bool", "datetime")
COLUMN_ROLES: tuple[str, ...] = ("feature", "target", "timestamp", "id")
CHECK_NAMES: tuple[str, ...] = ("min", "max", "allowed", "unique", "max_length")
COLUMN_KEYS: tuple[str, ...] = (
    "name",
    "type",
    "role",
    "nullable",
    "checks",
    "description",
    "positive",
    "slice",
    "task",
    "classes",
)
TARGET_KEYS: tuple[str, ...] = ("positive", "task", "classes")
CONTRACT_KEYS: tuple[str, ...] = ("name", "description", "encoding", "csv", "columns")
CSV_KEYS: tuple[str, ...] = ("delimiter", "header", "names", "encoding", "index")
ENCODING_SETTINGS: tuple[str, ...] = ("strip", "day_first", "decimal_comma", "thousands")
ENCODING_KEYS: tuple[str, ...] = ("true_values", "false_values", "missing_values")
# The marks that group digits by threes (`encoding.thousands`), by the decimal mark: the other
# mark (1,234.5 or 1.234,5), a space (French: 1 234,5; also the non-breaking and the narrow
# one) or an apostrophe (Swiss: 1'234.5). One number uses one mark throughout.
GROUP_MARKS = {point: f"[{other} \u00a0\u202f'\u2019]" for point, other in ((".", ","), (",", "."))}
GROUPED_NUMBER = {
    point: re.compile(
        rf"\s*[-+]?\d{{1,3}}(?P<mark>{marks})\d{{3}}(?:(?P=mark)\d{{3}})*(?:{re.escape(point)}\d*)?\s*"
    )
    for point, marks in GROUP_MARKS.items()
}
# The whitespace `encoding.strip` removes around a value: ASCII's, so that every reader (Python
# here, Arrow's C++ in the drift check) removes exactly the same characters.
WHITESPACE = " \t\r\n\f\v"
DEFAULT_CONTRACT_PATH = Path(paths.CONTRACT)
# Longest text accepted in a category cell when the contract sets no `max_length`: serving
# refuses longer values (a request must cost memory in proportion to its body).
DEFAULT_MAX_LENGTH = 256
# The Open Inference Protocol (V2) datatypes a column type accepts in a request; the first is
# the one clients are told to send.
V2_DATATYPES: dict[str, tuple[str, ...]] = {
    "float": ("FP32", "FP64"),
    "int": ("INT64", "INT32"),
    "bool": ("BOOL",),
    "category": ("BYTES",),
}

_ONNX_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Missing categorical values reach the model as this string, in training and in serving alike:
# ONNX string tensors cannot hold a null, and "missing" is often informative in itself.
MISSING_CATEGORY = ""


class ContractError(UserError, ValueError):
    """The contract file itself is wrong (not the data it describes)."""


def _folded(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().casefold() for v in values)


@dataclass(frozen=True)
class Encoding:
    """How raw values are written in the user's files: the tokens for true, false and missing.

    Every reader of raw data (ingest/validate, drift, simulate, serving, capture, the smoke
    test) turns cells into typed values through these tokens (`gitops_ml.coercion`, one value
    at a time `gitops_ml.value_coercion`), so a value the model was trained on is a value
    serving and drift accept. Tokens compare stripped and case-insensitively; a blank cell is
    always missing. `strip: true` also reads text values
    (categories) without surrounding whitespace: `" Male"` and `"Male"` are one value.
    `day_first: true` reads a date such as 03/01/2024 as 3 January, not March 1: a batch whose
    days all happen to be 12 or less must read as the training data did. `decimal_comma: true`
    reads 12,5 as twelve and a half, and refuses 12.5 (a point is then no part of a number).
    `thousands: true` reads digits grouped by threes, 1,234.5 (1.234,5 with a decimal comma),
    or by a space or an apostrophe (1 234,5; 1'234.5).
    """

    true_values: tuple[str, ...] = ("true", "t", "yes", "y", "1", "1.0")
    false_values: tuple[str, ...] = ("false", "f", "no", "n", "0", "0.0")
    missing_values: tuple[str, ...] = ("", "NA", "N/A", "NaN", "null")
    strip: bool = False
    day_first: bool = False
    decimal_comma: bool = False
    thousands: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "_true", _folded(self.true_values))
        object.__setattr__(self, "_false", _folded(self.false_values))
        object.__setattr__(self, "_missing", _folded(self.missing_values) | {""})

    def text(self, value: str) -> str:
        """A text value as it is read: without surrounding whitespace when `strip` is set."""
        return value.strip(WHITESPACE) if self.strip else value

    @property
    def plain_numbers(self) -> bool:
        """Numbers are written as Python and pandas read them (no number_text needed)."""
        return not (self.decimal_comma or self.thousands)

    def number_text(self, text: str) -> str | None:
        """A number as written in the data, without surrounding whitespace and spelt as Python
        and pandas read one (12,5 → 12.5 with `decimal_comma`, 1,234.5 → 1234.5 with
        `thousands`); None when it cannot be a number of this encoding (12.5 with a decimal
        comma, 1,23 with thousands)."""
        point = "," if self.decimal_comma else "."
        text = text.strip(WHITESPACE)
        if self.thousands and re.search(GROUP_MARKS[point], text):
            grouped = GROUPED_NUMBER[point].fullmatch(text)
            if grouped is None:
                return None
            text = text.replace(grouped["mark"], "")
        if not self.decimal_comma:
            return text
        return None if "." in text else text.replace(",", ".")

    def is_missing(self, text: str) -> bool:
        return text.strip().casefold() in self._missing  # type: ignore[attr-defined]

    def bool_of(self, text: str) -> bool | None:
        """True/False for a true/false token, None for anything else."""
        key = text.strip().casefold()
        if key in self._true:  # type: ignore[attr-defined]
            return True
        if key in self._false:  # type: ignore[attr-defined]
            return False
        return None


DEFAULT_ENCODING = Encoding()  # what a contract without an `encoding:` section spells


@dataclass(frozen=True)
class Checks:
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    max_length: int | None = None  # longest category text; serving defaults to 256


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    role: ColumnRole = "feature"
    nullable: bool = False
    checks: Checks = field(default_factory=Checks)
    description: str = ""
    positive: str | None = None  # target only: how the positive class is written ("Yes")
    slice: bool = False  # report metrics per group of this column (review, model card)
    task: Task | None = None  # target only; None reads as "binary" (contracts before tasks)
    classes: tuple[str, ...] | None = None  # multiclass target only: as spelt, in output order

    @property
    def max_length(self) -> int:
        return self.checks.max_length or DEFAULT_MAX_LENGTH

    @property
    def is_numeric(self) -> bool:
        """Numeric to the model: floats, ints and bools all enter the model as float32."""
        return self.type in ("float", "int", "bool")

    @property
    def is_categorical(self) -> bool:
        return self.type == "category"


@dataclass(frozen=True)
class Contract:
    name: str
    columns: tuple[Column, ...]
    description: str = ""
    encoding: Encoding = field(default_factory=Encoding)
    csv: CsvLayout = field(default_factory=CsvLayout)  # how ingest reads a CSV source

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"column {name!r} is not in the data contract")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.role == "feature"]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @cached_property
    def onnx_inputs(self) -> dict[str, str]:
        """Each feature's ONNX input name (see onnx_input_names), in contract order."""
        return onnx_input_names(self.feature_names)

    @property
    def numeric_inputs(self) -> list[str]:
        """The numeric features' columns in the model's view (model_frame): ONNX input names."""
        return [self.onnx_inputs[name] for name in self.numeric_features]

    @property
    def categorical_inputs(self) -> list[str]:
        return [self.onnx_inputs[name] for name in self.categorical_features]

    @property
    def numeric_features(self) -> list[str]:
        return [c.name for c in self.features if c.is_numeric]

    @property
    def categorical_features(self) -> list[str]:
        return [c.name for c in self.features if c.is_categorical]

    @property
    def target(self) -> str:
        return self._single_role("target")  # type: ignore[return-value]

    @property
    def timestamp(self) -> str | None:
        return self._single_role("timestamp", required=False)

    @property
    def id_column(self) -> str | None:
        return self._single_role("id", required=False)

    @property
    def task(self) -> Task:
        """What the model learns: the target's `task` (gitops_ml.tasks)."""
        return self.column(self.target).task or "binary"

    @property
    def classes(self) -> tuple[str, ...]:
        """A multiclass target's classes as the data spells them, in the model's output order
        (index i of a prediction is classes[i]); empty for the other tasks."""
        return self.column(self.target).classes or ()

    @property
    def positive_label(self) -> str:
        """How the positive class reads to people: the target's `positive` token, or "true"."""
        return self.column(self.target).positive or "true"

    @property
    def slices(self) -> list[Column]:
        """Columns whose groups get their own metrics (`slice: true`)."""
        return [c for c in self.columns if c.slice]

    def _single_role(self, role: str, required: bool = True) -> str | None:
        matches = [c.name for c in self.columns if c.role == role]
        if not matches and not required:
            return None
        if len(matches) != 1:
            raise ContractError(f"the contract needs exactly one {role} column, found {matches}")
        return matches[0]


def onnx_input_names(names: Sequence[str]) -> dict[str, str]:
    """The one mapping from the data's column names to ONNX input names.

    Column names are whatever the data says (`education-num`, `plan type`, `größe`); an ONNX
    input name here is ASCII letters, digits and `_`, not starting with a digit, unique and
    never an output's name, which is what the converter keeps as it is (it rewrites any other
    name on its own). A name that already is one is kept; any other character becomes `_`,
    and a name taken already gets `_2`, `_3` … in column order. Clients never see these names:
    requests, the V2 metadata and every report use the data's names.
    """

    def valid(name: str) -> bool:
        return bool(_ONNX_NAME.match(name)) and name not in ONNX_OUTPUTS

    taken = {*ONNX_OUTPUTS, *(name for name in names if valid(name))}
    mapped: dict[str, str] = {}
    for name in names:
        if valid(name):
            mapped[name] = name
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", name)
        base = base if base[:1].isalpha() or base[:1] == "_" else f"_{base}"
        candidate, number = base, 2
        while candidate in taken:
            candidate, number = f"{base}_{number}", number + 1
        taken.add(candidate)
        mapped[name] = candidate
    return mapped


def _parse_checks(where: str, raw: Any) -> Checks:
    """`where` names the file and the column, for every error below."""
    if raw is None:
        return Checks()
    if not isinstance(raw, Mapping):
        raise ContractError(f"{where}: 'checks' must be a mapping")
    refuse_unknown(raw, CHECK_NAMES, where, section="checks", error=ContractError)
    allowed = raw.get("allowed")
    if allowed is not None and (not isinstance(allowed, list) or not allowed):
        raise ContractError(f"{where}: 'allowed' must be a non-empty list")
    max_length = raw.get("max_length")
    if max_length is not None and (
        isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
    ):
        raise ContractError(f"{where}: 'max_length' must be a positive integer")
    return Checks(
        min=None if raw.get("min") is None else float(raw["min"]),
        max=None if raw.get("max") is None else float(raw["max"]),
        allowed=None if allowed is None else tuple(str(v) for v in allowed),
        unique=bool(raw.get("unique", False)),
        max_length=max_length,
    )


def _parse_encoding(raw: Any, source: str) -> Encoding:
    if raw is None:
        return Encoding()
    if not isinstance(raw, Mapping):
        raise ContractError(f"{source}: 'encoding' must be a mapping")
    refuse_unknown(
        raw, (*ENCODING_KEYS, *ENCODING_SETTINGS), source, section="encoding", error=ContractError
    )
    settings = {key: raw.get(key, False) for key in ENCODING_SETTINGS}
    for key, setting in settings.items():
        if not isinstance(setting, bool):
            raise ContractError(f"{source}: 'encoding.{key}' must be true or false")
    values: dict[str, Any] = {}  # the token lists; with `settings`, Encoding's fields
    for key in ENCODING_KEYS:
        if key not in raw:
            continue
        items = raw[key]
        if not isinstance(items, list) or not all(
            isinstance(v, str | int | float | bool) for v in items
        ):
            raise ContractError(f"{source}: 'encoding.{key}' must be a list of tokens")
        values[key] = tuple(_token(v) for v in items)
    encoding = Encoding(**values, **settings)
    clash = sorted(set(encoding.true_values) & set(encoding.false_values))
    if clash:
        raise ContractError(f"{source}: {clash} are both true and false tokens in 'encoding'")
    return encoding


def _parse_csv(raw: Any, source: str, names: list[str]) -> CsvLayout:
    """The `csv` section: how the CSV source file is laid out (ingest reads it this way)."""
    if raw is None:
        return CsvLayout()
    if not isinstance(raw, Mapping):
        raise ContractError(f"{source}: 'csv' must be a mapping")
    refuse_unknown(raw, CSV_KEYS, source, section="csv", error=ContractError)
    delimiter = raw.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise ContractError(f"{source}: 'csv.delimiter' must be one character, e.g. ',' or ';'")
    header = raw.get("header", True)
    if not isinstance(header, bool):
        raise ContractError(f"{source}: 'csv.header' must be true or false")
    encoding = raw.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding if isinstance(encoding, str) else "")
    except LookupError:
        raise ContractError(
            f"{source}: 'csv.encoding' {encoding!r} is not a text encoding Python knows; "
            "e.g. utf-8, cp1252, latin-1"
        ) from None
    index = raw.get("index", False)
    if not isinstance(index, bool) or (index and not header):
        raise ContractError(
            f"{source}: 'csv.index' must be true or false, true only with a header row (the "
            "unnamed first column of a saved row index)"
        )
    file_names = raw.get("names")
    if header:
        if file_names is not None:
            raise ContractError(f"{source}: 'csv.names' is for a file without a header row")
        return CsvLayout(delimiter, encoding=encoding, index=index)
    if not isinstance(file_names, list) or not file_names:
        raise ContractError(
            f"{source}: 'csv.header: false' needs 'csv.names': the file's columns in order"
        )
    layout = CsvLayout(delimiter, False, tuple(str(n) for n in file_names), encoding)
    unknown = [name for name in names if name not in (layout.names or ())]
    if unknown:
        raise ContractError(f"{source}: columns {unknown} are not in 'csv.names'")
    return layout


def _token(value: Any) -> str:
    """YAML reads `yes` as True and `1` as 1: tokens are the text as written in the data."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_contract(raw: Any, source: str = "<contract>") -> Contract:
    """Build a Contract from parsed YAML, with errors that name the file and column."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("columns"), list):
        raise ContractError(f"{source}: expected a mapping with a 'columns' list")
    refuse_unknown(raw, CONTRACT_KEYS, source, error=ContractError)
    columns: list[Column] = []
    seen: set[str] = set()
    for index, item in enumerate(raw["columns"]):
        if not isinstance(item, Mapping) or "name" not in item or "type" not in item:
            raise ContractError(f"{source}: column #{index + 1} needs at least 'name' and 'type'")
        name = str(item["name"])
        refuse_unknown(item, COLUMN_KEYS, f"{source}: column {name!r}", error=ContractError)
        if name in seen:
            raise ContractError(f"{source}: column {name!r} is declared twice")
        seen.add(name)
        if item["type"] not in COLUMN_TYPES:
            raise ContractError(
                f"{source}: column {name!r} has type {item['type']!r}; "
                f"expected one of {list(COLUMN_TYPES)}"
            )
        role = item.get("role", "feature")
        if role not in COLUMN_ROLES:
            raise ContractError(
                f"{source}: column {name!r} has role {role!r}; expected one of {list(COLUMN_ROLES)}"
            )
        columns.append(
            Column(
                name=name,
                type=item["type"],
                role=role,
                nullable=bool(item.get("nullable", False)),
                checks=_parse_checks(f"{source}: column {name!r}", item.get("checks")),
                description=str(item.get("description", "")),
                positive=None if item.get("positive") is None else _token(item["positive"]),
                slice=bool(item.get("slice", False)),
                task=_parse_task(f"{source}: column {name!r}", item.get("task")),
                classes=_parse_classes(f"{source}: column {name!r}", item.get("classes")),
            )
        )
        misplaced = [key for key in TARGET_KEYS if key in item and item[key] is not None]
        if misplaced and role != "target":
            raise ContractError(
                f"{source}: column {name!r}: {misplaced} are for the target column only"
            )
    contract = Contract(
        name=str(raw.get("name", "dataset")),
        columns=tuple(columns),
        description=str(raw.get("description", "")),
        encoding=_parse_encoding(raw.get("encoding"), source),
        csv=_parse_csv(raw.get("csv"), source, [c.name for c in columns]),
    )
    try:
        contract.target  # noqa: B018 - validates that exactly one target exists
        contract.timestamp  # noqa: B018
    except ContractError as exc:
        raise ContractError(f"{source}: {exc}") from None
    if not contract.features:
        raise ContractError(f"{source}: the contract declares no feature columns")
    _check_target(contract, source)
    for column in contract.features:
        if column.type == "datetime":
            raise ContractError(
                f"{source}: feature {column.name!r} is a datetime; derive numeric features "
                "from it or give it role 'timestamp'"
            )
    return contract


def _parse_task(where: str, raw: Any) -> Task | None:
    if raw is None:
        return None
    if raw not in TASKS:
        raise ContractError(f"{where}: task {raw!r} is not one of {list(TASKS)}")
    return raw


def _parse_classes(where: str, raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(v, str | int) for v in raw):
        raise ContractError(f"{where}: 'classes' must be a list of the target's values")
    classes = tuple(_token(v) for v in raw)
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise ContractError(f"{where}: 'classes' lists {repeated} more than once")
    return classes


def _check_target(contract: Contract, source: str) -> None:
    """The target's type, `positive` and `classes` fit its task (gitops_ml.tasks)."""
    target = contract.column(contract.target)
    task = contract.task
    where = f"{source}: target {target.name!r} (task {task})"
    allowed = task_spec(task).target_types
    if target.task is None and target.type != "bool":
        raise ContractError(
            f"{source}: target {target.name!r} has type {target.type} and no 'task': declare "
            "`task: regression` (a number to predict), `task: multiclass` with its 'classes', "
            "or make it bool for `task: binary`"
        )
    if target.type not in allowed:
        hint = {
            "binary": "write its raw tokens in 'encoding' and the positive one as 'positive'",
            "multiclass": "list its values as 'classes'",
            "regression": "a numeric column",
        }[task]
        raise ContractError(
            f"{where} has type {target.type}; a {task} target is {' or '.join(allowed)} ({hint})"
        )
    if task != "binary" and target.positive is not None:
        raise ContractError(f"{where}: 'positive' is for a binary target")
    if task != "multiclass" and target.classes is not None:
        raise ContractError(f"{where}: 'classes' is for a multiclass target")
    if (
        task == "binary"
        and target.positive is not None
        and contract.encoding.bool_of(target.positive) is not True
    ):
        raise ContractError(
            f"{source}: target {target.name!r} has positive {target.positive!r}, which is "
            f"not one of the true tokens {list(contract.encoding.true_values)} in 'encoding'"
        )
    if task == "multiclass":
        classes = target.classes or ()
        if len(classes) < 3:
            raise ContractError(
                f"{where} needs 'classes': its three or more values in the model's output order "
                f"(found {list(classes)}); two classes are task binary with 'positive'"
            )
        if target.type == "int" and not all(_is_integer(c) for c in classes):
            raise ContractError(f"{where}: an int target's 'classes' must be integers")


def _is_integer(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def load_contract(path: str | Path = DEFAULT_CONTRACT_PATH) -> Contract:
    raw = read_yaml(path, "data contract", ContractError)
    return parse_contract(raw, source=str(path))


def column_to_dict(c: Column) -> dict[str, Any]:
    """One column as plain data in the contract file's order, omitting defaults (an int
    column's whole-number bounds written as integers: 0, not 0.0)."""
    item: dict[str, Any] = {"name": c.name, "type": c.type, "role": c.role, "nullable": c.nullable}

    def bound(value: float) -> float:
        return int(value) if c.type == "int" and float(value).is_integer() else value

    checks: dict[str, Any] = {}
    if c.checks.min is not None:
        checks["min"] = bound(c.checks.min)
    if c.checks.max is not None:
        checks["max"] = bound(c.checks.max)
    if c.checks.allowed is not None:
        checks["allowed"] = list(c.checks.allowed)
    if c.checks.unique:
        checks["unique"] = True
    if c.checks.max_length is not None:
        checks["max_length"] = c.checks.max_length
    if checks:
        item["checks"] = checks
    if c.task is not None:
        item["task"] = c.task
    if c.positive is not None:
        item["positive"] = c.positive
    if c.classes is not None:
        item["classes"] = [int(v) if c.type == "int" else v for v in c.classes]
    if c.slice:
        item["slice"] = True
    if c.description:
        item["description"] = c.description
    return item


def csv_to_dict(layout: CsvLayout) -> dict[str, Any]:
    """The `csv` section as plain data, omitting the defaults after delimiter and header."""
    section: dict[str, Any] = {"delimiter": layout.delimiter, "header": layout.header}
    if layout.names is not None:
        section["names"] = list(layout.names)
    if layout.encoding != CsvLayout.encoding:
        section["encoding"] = layout.encoding
    if layout.index:
        section["index"] = True
    return section


def contract_to_dict(contract: Contract) -> dict[str, Any]:
    """Plain data for YAML/JSON, omitting defaults so drafted contracts stay readable."""
    columns = [column_to_dict(c) for c in contract.columns]
    out: dict[str, Any] = {"name": contract.name}
    if contract.description:
        out["description"] = contract.description
    if contract.encoding != Encoding():
        out["encoding"] = {key: list(getattr(contract.encoding, key)) for key in ENCODING_KEYS}
        for key in ENCODING_SETTINGS:
            if getattr(contract.encoding, key):
                out["encoding"][key] = True
    if contract.csv != CsvLayout():
        out["csv"] = csv_to_dict(contract.csv)
    out["columns"] = columns
    return out


# --------------------------------------------------------------------------------------------
# Validation: the pandera schema of a canonical (already type-converted) frame.
# --------------------------------------------------------------------------------------------


def pandera_schema(contract: Contract) -> pa.DataFrameSchema:
    """The pandera schema of a frame in canonical dtypes, one pandera Column per contract column.

    Canonical dtypes: float64, int64 (Int64 if nullable), str for categories, bool (boolean if
    nullable), datetime64[us]. Range, allowed-value, null and uniqueness rules come from the
    contract's `checks`; columns not in the contract are allowed here (validate drops them).
    """
    import pandera.pandas as pa

    dtypes = {  # (without missing values, with missing values)
        "float": ("float64", "float64"),
        "int": ("int64", "Int64"),
        "category": ("str", "str"),
        "bool": ("bool", "boolean"),
        "datetime": ("datetime64[us]", "datetime64[us]"),
    }
    columns: dict[str, pa.Column] = {}
    for column in contract.columns:
        rules: list[pa.Check] = []
        if column.checks.min is not None:
            rules.append(pa.Check.ge(column.checks.min))
        if column.checks.max is not None:
            rules.append(pa.Check.le(column.checks.max))
        if column.checks.allowed is not None:
            rules.append(pa.Check.isin(list(column.checks.allowed)))
        if column.classes is not None:  # a multiclass target holds its classes only
            rules.append(
                pa.Check.isin(
                    [int(c) for c in column.classes] if column.type == "int" else column.classes
                )
            )
        strict_dtype, nullable_dtype = dtypes[column.type]
        columns[column.name] = pa.Column(
            nullable_dtype if column.nullable else strict_dtype,
            checks=rules,
            nullable=column.nullable,
            unique=column.checks.unique,
            required=True,
        )
    return pa.DataFrameSchema(columns, name=contract.name, strict=False, ordered=False)
