"""`gitops-ml summary`: what `make run` prints at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from metrics_files import DATA, EVALUATION, EXPORT

from gitops_ml import io as gio
from gitops_ml.cli import main


def test_summary_prints_metrics_with_intervals_and_the_onnx_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, doc in (("evaluate", EVALUATION), ("export", EXPORT), ("data", DATA)):
        gio.write_json(tmp_path / f"{name}.json", doc)

    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "10,000 test rows (positive rate 25.1% in test)" in out
    assert "ROC AUC      0.8626   [0.8546, 0.8713]  0.8538 ± 0.0034" in out
    assert "Brier score  0.1134   [0.1094, 0.1169]\n" in out
    assert "Cost per 1,000 rows: 26,680 at threshold 0.50" in out
    assert "ONNX model: models/model.onnx" in out
    assert "0 label flips on 10,200 rows" in out


def test_summary_has_no_cost_line_without_configured_costs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uncosted = {key: value for key, value in EVALUATION.items() if key != "business"}
    for name, doc in (("evaluate", uncosted), ("export", EXPORT), ("data", DATA)):
        gio.write_json(tmp_path / f"{name}.json", doc)

    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "ROC AUC      0.8626" in out and "ONNX model: models/model.onnx" in out
    assert "cost" not in out.lower()


def test_summary_before_any_run_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 2
    assert "run `make run`" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "doc", "field"),
    [
        ("export", {k: v for k, v in EXPORT.items() if k != "parity"}, "parity"),
        ("export", {**EXPORT, "onnx": {**EXPORT["onnx"], "size_bytes": "big"}}, "onnx.size_bytes"),
        ("data", {**DATA, "rows": {"train": 1, "test": 1}}, "rows.total"),
    ],
)
def test_a_metrics_file_of_another_shape_is_an_error_naming_the_file_and_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, doc: dict[str, Any], field: str
) -> None:
    files = {"evaluate": EVALUATION, "export": EXPORT, "data": DATA, name: doc}
    for each, content in files.items():
        gio.write_json(tmp_path / f"{each}.json", content)

    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / name}.json: field '{field}': ")


def test_a_regression_summary_quotes_its_errors_and_its_parity_measure_without_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to stop with a KeyError on the label flips a regressor does not have; a target
    in the hundreds widens the columns instead of running them together."""
    evaluation = {
        "task": "regression",
        "test": {"rmse": 828.2938, "mae": 44.9, "r2": 0.3957, "median_absolute_error": 39.0},
        "ci95": {"r2": {"low": 0.2039, "high": 0.5375}, "rmse": {"low": 723.8, "high": 940.0}},
        "cv": {"r2": {"mean": 0.41, "std": 0.03}, "rmse": {"mean": 758.98, "std": 81.54}},
        "rows": {"test": 88},
    }
    export = {
        **EXPORT,
        "parity": {
            "measure": "max |Δŷ| / sd(y)",
            "max_abs_diff": 2.9e-7,
            "rows_checked": 264,
            "tolerance": 1e-4,
            "slices": {"test": {"rows": 88, "max_abs_diff": 2.9e-7}},
        },
    }
    data = {
        "rows": {"total": 442, "train": 354, "test": 88},
        "target_mean": {"train": 152.1, "test": 150.2},
        "target_std": {"train": 77.1, "test": 80.0},
        "split": {"method": "stratified", "seed": 42},
    }
    for name, doc in (("evaluate", evaluation), ("export", export), ("data", data)):
        gio.write_json(tmp_path / f"{name}.json", doc)

    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "Data: 354 training rows, 88 test rows\n" in out
    assert "RMSE       828.2938   [723.8000, 940.0000]  758.9800 ± 81.5400\n" in out
    assert "R²           0.3957   [0.2039, 0.5375]         0.4100 ± 0.0300\n" in out
    assert "median AE   39.0000\n" in out
    assert "ROC AUC" not in out
    assert "ONNX parity: max |Δŷ| / sd(y) 2.9e-07 on 264 rows" in out
