"""metrics/data.json, validation.json and export.json, typed: what the split, validate and
export stages write, and what every reader of those files reads.

Each file is one strict pydantic model (`extra="forbid"`, frozen): a missing field, an unknown
one or a value of the wrong kind is an `error:` naming the file and the field, the way
`gitops_ml.evaluate_metrics` reads metrics/evaluate.json (that module reads through the same
three functions below). A new field of a file is one line in its model. Fields:
docs/interfaces.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gitops_ml import paths
from gitops_ml.errors import UserError, invalid_field


class MetricsFileError(UserError):
    """A metrics file is missing, not JSON, or not of the documented shape."""


class Record(BaseModel):
    """A section of a metrics file: exactly the documented fields, of the documented kinds."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


R = TypeVar("R", bound=Record)


def parse_metrics_file(
    model: type[R], raw: Any, source: str, error: type[MetricsFileError] = MetricsFileError
) -> R:
    """`raw` (the parsed JSON of `source`) as `model`, or `error` naming the file and field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{source}: {invalid_field(exc)}") from None


def metrics_file_from_json(
    model: type[R], text: str, source: str, error: type[MetricsFileError] = MetricsFileError
) -> R:
    """The JSON text of `source` (a file, or a file at a Git revision) as `model`."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON: {exc}") from None
    return parse_metrics_file(model, raw, source, error)


def read_metrics_file(
    model: type[R], path: str | Path, error: type[MetricsFileError] = MetricsFileError
) -> R:
    """The metrics file at `path` as `model`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: not found; run `make run` (dvc repro) first") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None
    return metrics_file_from_json(model, text, str(path), error)


# ---------------------------------------------------------------------------------------------
# metrics/data.json (split)
# ---------------------------------------------------------------------------------------------


class SplitRows(Record):
    total: int
    train: int
    test: int


class Sides(Record):
    """One number about the target on each side of the split."""

    train: float
    test: float


class SideShares(Record):
    """Each class's share of the rows on each side of the split (multiclass)."""

    train: dict[str, float]
    test: dict[str, float]


class TimeSplit(Record):
    """The newest rows are the test set (the contract has a timestamp)."""

    method: Literal["time"]
    train_end: str
    test_start: str


class StratifiedSplit(Record):
    """A stratified random sample is the test set (the contract has no timestamp)."""

    method: Literal["stratified"]
    seed: int


class DataMetrics(Record):
    """The split's rows and what it says about the target per task: the positive rate
    (binary), the class shares (multiclass) or the target's mean and spread (regression)."""

    rows: SplitRows
    positive_rate: Sides | None = None
    class_shares: SideShares | None = None
    target_mean: Sides | None = None
    target_std: Sides | None = None
    split: Annotated[TimeSplit | StratifiedSplit, Field(discriminator="method")]


def read_data_metrics(path: str | Path = paths.DATA_METRICS) -> DataMetrics:
    return read_metrics_file(DataMetrics, path)


# ---------------------------------------------------------------------------------------------
# metrics/validation.json (validate)
# ---------------------------------------------------------------------------------------------


class ValidationMetrics(Record):
    """The raw data against the contract: the verdict, its counts and each column's share of
    missing values."""

    status: Literal["passed", "failed"]
    rows: int
    columns: int
    failed_checks: int
    failing_rows: int
    missing_rate: dict[str, float]
    dropped_columns: list[str]


def read_validation_metrics(path: str | Path = paths.VALIDATION_METRICS) -> ValidationMetrics:
    return read_metrics_file(ValidationMetrics, path)


# ---------------------------------------------------------------------------------------------
# metrics/export.json (export)
# ---------------------------------------------------------------------------------------------


class OnnxFile(Record):
    path: str
    sha256: str
    size_bytes: int
    opset: int  # asked for (export.opset)
    opset_used: dict[str, int]  # per domain, as the converter wrote the model
    inputs: int


class ParitySlice(Record):
    rows: int
    max_abs_diff: float
    label_flips: int | None = None  # classifiers only


class Parity(Record):
    """ONNX against scikit-learn: the largest difference over every slice, in the task's
    `measure`, and the label flips summed (classifiers only)."""

    measure: str
    max_abs_diff: float
    label_flips: int | None = None
    rows_checked: int
    tolerance: float
    slices: dict[str, ParitySlice]


class ExportMetrics(Record):
    onnx: OnnxFile
    parity: Parity
    versions: dict[str, str]  # the converter's packages


def parse_export_metrics(raw: Any, source: str = paths.EXPORT_METRICS) -> ExportMetrics:
    return parse_metrics_file(ExportMetrics, raw, source)


def read_export_metrics(path: str | Path = paths.EXPORT_METRICS) -> ExportMetrics:
    return read_metrics_file(ExportMetrics, path)
