"""Drift reads what the pipeline trains on: a fork's raw files, through the contract's encoding.

Yes/No booleans, 0/1 integers, blank numerics and a Yes/No target are read in every format
exactly as validate reads the training data; a section that cannot be computed says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from foreign_data import foreign_frame
from monitor_support import ForeignProject, foreign, run_drift

from gitops_ml import io as gio
from gitops_ml.monitor.readers import ModelScorer
from gitops_ml.pipeline.validate import validate_frame

__all__ = ["foreign"]  # the session fixture, imported for pytest


def drift(project: ForeignProject, current: Path | str, *extra: str) -> int:
    return run_drift(
        project.profile_path, project.contract_path, current, project.directory / "out", *extra
    )


def result_of(project: ForeignProject) -> dict[str, Any]:
    return json.loads((project.directory / "out" / "drift.json").read_text())


def report_of(project: ForeignProject) -> str:
    return (project.directory / "out" / "drift.md").read_text()


def log_lines(raw: pd.DataFrame, project: ForeignProject, scores: Any) -> list[str]:
    """Prediction-log lines whose features are the raw tokens a client sent ("Yes", " ")."""
    contract = project.contract
    lines = []
    for i, record in enumerate(raw[contract.feature_names].to_dict(orient="records")):
        item = {
            "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()},
            "prediction": {"score": float(scores[i])},
            "label": raw[contract.target].iloc[i],
        }
        lines.append(json.dumps(item))
    return lines


def test_raw_csv_parquet_and_log_of_a_fork_are_read_like_its_training_data(
    foreign: ForeignProject,
) -> None:
    raw = foreign_frame(2000, seed=7, first_id=10_000)
    assert (raw["TotalCharges"] == " ").any() and set(raw["Partner"]) == {"Yes", "No"}
    raw.to_csv(foreign.directory / "window.csv", index=False)
    gio.write_parquet(foreign.directory / "window.parquet", raw)  # text columns, as written
    parsed = validate_frame(
        gio.read_table(foreign.directory / "window.csv", raw_text=True), foreign.contract
    )
    assert parsed.frame is not None
    scores = ModelScorer(foreign.onnx_path, foreign.contract).score(parsed.frame)
    log = foreign.directory / "window.jsonl"
    log.write_text("\n".join(log_lines(raw, foreign, scores)) + "\n")
    numbers = {}
    for name in ("window.csv", "window.parquet", "window.jsonl"):
        model = () if name.endswith("jsonl") else ("--model", str(foreign.onnx_path))
        assert drift(foreign, foreign.directory / name, "--fail-on-drift", *model) == 0, name
        result = result_of(foreign)
        assert result["verdict"] == "no_drift" and result["rows"] == 2000, (name, result["reason"])
        performance = result["performance"]
        assert performance["level"] == "ok" and performance["rows"] == 2000, name
        total = next(f for f in result["features"] if f["name"] == "TotalCharges")
        numbers[name] = (
            round(total["missing_cur"], 12),
            round(performance["metrics"]["roc_auc"]["current"], 6),
        )
    assert len(set(numbers.values())) == 1, numbers  # the same reading in every format
    assert numbers["window.csv"][0] == pytest.approx((raw["tenure"] == "0").mean())


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_a_value_the_encoding_cannot_read_names_file_column_count_and_example(
    foreign: ForeignProject, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    raw = foreign_frame(600, seed=8)
    raw.loc[:3, "Partner"] = "Maybe"
    path = foreign.directory / f"bad.{suffix}"
    if suffix == "csv":
        raw.to_csv(path, index=False)
    elif suffix == "parquet":
        gio.write_parquet(path, raw)
    else:
        records = raw[foreign.contract.feature_names].to_dict(orient="records")
        path.write_text("".join(json.dumps({"features": r}, default=int) + "\n" for r in records))
    assert drift(foreign, path, "--fail-on-drift") == 2
    err = capsys.readouterr().err
    assert f"bad.{suffix}: column 'Partner' must be bool but 4 value(s)" in err
    assert "'Maybe'" in err and "Traceback" not in err


def test_an_unreadable_label_is_an_error_naming_the_target(
    foreign: ForeignProject, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = foreign_frame(600, seed=9)
    raw.loc[:1, "Churn"] = "churned"
    raw.to_csv(foreign.directory / "bad_label.csv", index=False)
    assert (
        drift(foreign, foreign.directory / "bad_label.csv", "--model", str(foreign.onnx_path)) == 2
    )
    assert "column 'Churn' must be bool but 2 value(s)" in capsys.readouterr().err


def _window(foreign: ForeignProject, name: str, rows: int, churn: str | None) -> Path:
    raw = foreign_frame(rows, seed=11)
    if churn is None:
        raw = raw.drop(columns="Churn")
    elif churn == "blank":
        raw["Churn"] = " "
    path = foreign.directory / name
    raw.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("churn", "rows", "model", "level", "why"),
    [
        ("labels", 1000, False, "not_computed", "no model scores"),
        (None, 1000, True, "not_computed", "no labels: the window has no 'Churn' column"),
        ("blank", 1000, True, "not_computed", "every 'Churn' value in the window is missing"),
        ("labels", 200, True, "not_enough_data", "200 labelled rows < min_rows 500"),
    ],
)
def test_performance_that_cannot_be_computed_says_why_in_json_and_markdown(
    foreign: ForeignProject, churn: str | None, rows: int, model: bool, level: str, why: str
) -> None:
    window = _window(foreign, f"perf-{churn}-{rows}.csv", rows, churn)
    assert drift(foreign, window, *(("--model", str(foreign.onnx_path)) if model else ())) == 0
    performance = result_of(foreign)["performance"]
    assert performance["level"] == level and why in performance["reason"]
    assert why in report_of(foreign).split("## Performance (labelled rows)")[1]


def test_prediction_drift_without_scores_says_why(foreign: ForeignProject) -> None:
    window = _window(foreign, "unscored.csv", 1000, None)
    assert drift(foreign, window) == 0
    prediction = result_of(foreign)["prediction"]
    assert prediction["level"] == "not_computed" and "no --model" in prediction["reason"]
    assert "Prediction drift (the model's score): not computed — no model scores" in report_of(
        foreign
    )


@pytest.mark.parametrize("column_type", ["float", "int"])
@pytest.mark.parametrize(
    "cells",
    [
        ["1", "2.5", "-3", "1e3", "+4", ".5", "inf"],
        ["1", "", " ", "NA", "n/a", "7"],
        ["1", " 2", "3 "],
        ["1", "nan", "2"],
        ["1", "-999", "2"],
        ["1", "two", "3"],
        ["1", "2.5"],
        ["1.0", "2.0", None],
    ],
)
def test_numbers_read_from_text_are_exactly_what_validate_reads(
    cells: list[str | None], column_type: str
) -> None:
    """The fast Arrow cast for text cells agrees with coercion.parse_column, cell for cell,
    including when it must hand over (whitespace, words, 2.5 in an int column, tokens)."""
    from gitops_ml.coercion import parse_column
    from gitops_ml.contract import Column, Encoding
    from gitops_ml.monitor.readers import CurrentDataError, parse_feature

    encoding = Encoding(missing_values=("", "NA", "N/A", "-999"))  # no "NaN": "nan" is a word
    values = pd.Series(cells, dtype="str")
    column = Column("x", column_type)  # type: ignore[arg-type]
    expected = parse_column(values, column_type, encoding)
    if expected.bad.any():
        with pytest.raises(CurrentDataError, match=f"{int(expected.bad.sum())} value"):
            parse_feature(values, column, encoding, Path("w.csv"))
        return
    got = parse_feature(values, column, encoding, Path("w.csv"))
    want = expected.values.to_numpy(dtype="float64", na_value=float("nan"))
    assert got.tolist() == pytest.approx(want.tolist(), nan_ok=True)
