"""metrics/data.json, validation.json and export.json are each read one way, typed: the
documented shape only, and any other shape is an error naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from metrics_files import DATA, EXPORT, VALIDATION

from gitops_ml import io as gio
from gitops_ml.stage_metrics import (
    MetricsFileError,
    SideShares,
    StratifiedSplit,
    TimeSplit,
    parse_export_metrics,
    read_data_metrics,
    read_export_metrics,
    read_validation_metrics,
)


def test_each_file_reads_as_its_stage_writes_it(tmp_path: Path) -> None:
    for name, doc in (("data", DATA), ("validation", VALIDATION), ("export", EXPORT)):
        gio.write_json(tmp_path / f"{name}.json", doc)

    data = read_data_metrics(tmp_path / "data.json")
    validation = read_validation_metrics(tmp_path / "validation.json")
    export = read_export_metrics(tmp_path / "export.json")

    assert (data.rows.total, data.rows.train, data.rows.test) == (50000, 40000, 10000)
    assert data.positive_rate is not None and data.positive_rate.test == 0.251
    assert data.split == TimeSplit(method="time", train_end="2025-08-07", test_start="2025-08-07")
    assert validation.status == "passed" and validation.missing_rate["total_charges"] == 0.058
    assert export.onnx.sha256 == EXPORT["onnx"]["sha256"] and export.onnx.opset_used["ai.onnx"]
    assert export.parity.label_flips == 0 and export.parity.slices["test"].rows == 10000


def test_the_split_is_read_by_its_method_and_each_task_by_its_own_target_summary(
    tmp_path: Path,
) -> None:
    multiclass = {
        **DATA,
        "positive_rate": None,
        "class_shares": {"train": {"a": 0.6, "b": 0.4}, "test": {"a": 0.5, "b": 0.5}},
        "split": {"method": "stratified", "seed": 7},
    }
    gio.write_json(tmp_path / "data.json", multiclass)

    data = read_data_metrics(tmp_path / "data.json")

    assert data.split == StratifiedSplit(method="stratified", seed=7)
    assert data.class_shares == SideShares(train={"a": 0.6, "b": 0.4}, test={"a": 0.5, "b": 0.5})
    assert data.positive_rate is None and data.target_mean is None


def test_a_regressor_has_no_label_flips_to_report() -> None:
    parity = {k: v for k, v in EXPORT["parity"].items() if k != "label_flips"}
    slices = {"test": {"rows": 10, "max_abs_diff": 1e-7}}

    export = parse_export_metrics({**EXPORT, "parity": {**parity, "slices": slices}})

    assert export.parity.label_flips is None and export.parity.slices["test"].label_flips is None


@pytest.mark.parametrize(
    ("name", "doc", "field"),
    [
        ("data", {**DATA, "rows": {"total": 1, "train": 1}}, "rows.test"),
        ("data", {**DATA, "split": {"method": "random"}}, "split"),
        ("data", {**DATA, "split": {"method": "stratified", "seed": "7"}}, "split.stratified.seed"),
        ("data", {**DATA, "churn": 0.2}, "churn"),
        ("validation", {**VALIDATION, "status": "ok"}, "status"),
        ("validation", {**VALIDATION, "missing_rate": {"age": "0.1"}}, "missing_rate.age"),
        (
            "export",
            {**EXPORT, "parity": {**EXPORT["parity"], "tolerance": None}},
            "parity.tolerance",
        ),
        ("export", {k: v for k, v in EXPORT.items() if k != "versions"}, "versions"),
    ],
)
def test_a_file_of_another_shape_is_an_error_naming_the_file_and_the_field(
    tmp_path: Path, name: str, doc: dict[str, Any], field: str
) -> None:
    path = tmp_path / f"{name}.json"
    gio.write_json(path, doc)
    reader = {
        "data": read_data_metrics,
        "validation": read_validation_metrics,
        "export": read_export_metrics,
    }[name]

    with pytest.raises(MetricsFileError, match=rf"^{path}: field '{field}': "):
        reader(path)


def test_a_missing_or_unreadable_file_says_so_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    with pytest.raises(MetricsFileError, match=r"export\.json: not found; run `make run`"):
        read_export_metrics(path)
    path.write_text("{not json")
    with pytest.raises(MetricsFileError, match=r"export\.json: not valid JSON"):
        read_export_metrics(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(MetricsFileError, match=r"export\.json: not valid JSON"):
        read_export_metrics(path)
