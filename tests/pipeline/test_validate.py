"""validate: every kind of contract violation is reported with file, column, rule, row count and
examples, through the real `gitops-ml validate` CLI, and nothing is left for downstream stages."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from project_fixtures import CONTRACT_PATH

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.contract import Contract, parse_contract
from gitops_ml.markdown import escape
from gitops_ml.pipeline.ingest import parquet_safe
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.stage_metrics import read_validation_metrics
from gitops_ml.synthetic import generate_churn

REPO_ROOT = Path(__file__).resolve().parents[2]
RAW = "data/raw/data.parquet"
VALIDATED = Path("data/validated/data.parquet")
SUMMARY = Path("metrics/validation.json")
REPORT = Path("reports/validation_failures.md")


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return generate_churn(3000, seed=5)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory holding the real contract, with a stale validated file in place."""
    (tmp_path / "data").mkdir()
    shutil.copyfile(CONTRACT_PATH, tmp_path / "data" / "schema.yaml")
    monkeypatch.chdir(tmp_path)
    gio.write_bytes(VALIDATED, b"stale output of an earlier run")
    return tmp_path


def write_raw(frame: pd.DataFrame) -> None:
    """Raw data as ingest writes it (mixed-type columns stored as text)."""
    gio.write_parquet(RAW, parquet_safe(frame))


def run_validate(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["validate", *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def assert_failed_with_nothing_downstream(code: int, err: str, expected: list[str]) -> None:
    assert code == 1
    assert err.startswith(f"error: validation failed: {RAW} does not match")
    for text in expected:
        assert text in err
        assert escape(text) in REPORT.read_text()  # the markdown report quotes it, escaped
    assert not VALIDATED.exists()
    assert gio.read_json(SUMMARY)["status"] == "failed"


def _set(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
        return frame

    return mutate


FAILURES = {
    "text in a numeric column": (
        _set("monthly_charges", [3, 9], "abc"),
        [
            "column 'monthly_charges' [dtype]: 2 rows cannot be read as float",
            "row 4: 'abc', row 10: 'abc'",
        ],
    ),
    "fraction in an int column": (
        _set("tenure_months", [7], 2.5),
        ["column 'tenure_months' [dtype]: 1 row cannot be read as int", "row 8: 2.5"],
    ),
    "unknown word in a bool column": (
        _set("paperless_billing", [0, 1, 2], "maybe"),
        ["column 'paperless_billing' [dtype]: 3 rows cannot be read as bool", "row 1: 'maybe'"],
    ),
    "value below the minimum": (
        _set("tenure_months", [5, 6], -3),
        ["column 'tenure_months' [min]: 2 rows below the minimum 0 (lowest -3)", "row 6: -3"],
    ),
    "value above the maximum": (
        _set("support_calls", [11], 99),
        ["column 'support_calls' [max]: 1 row above the maximum 50 (highest 99)", "row 12: 99"],
    ),
    "unknown category": (
        _set("plan", list(range(20, 27)), "ultimate"),
        [
            "column 'plan' [allowed]: 7 rows outside the allowed list "
            "[basic, standard, premium]: 'ultimate' (7 rows)",
            "rows 21, 22, 23, 24, 25, …",
        ],
    ),
    "missing required column": (
        lambda frame: frame.drop(columns=["age"]),
        ["column 'age' [required]: required column is missing from the file"],
    ),
    "null in a non-null column": (
        _set("contract", [2, 4], None),
        ["column 'contract' [nullable]: 2 rows missing but the contract says nullable: false"],
    ),
    "duplicate ids": (
        _set("customer_id", [30, 31], "C-dup"),
        [
            "column 'customer_id' [unique]: 2 rows share 1 duplicated value",
            "'C-dup' at rows 31, 32",
        ],
    ),
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_validation_rejects_each_violation_with_column_rule_count_and_examples(
    kind: str, churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, expected = FAILURES[kind]
    write_raw(mutate(churn.copy()))

    code, err = run_validate(capsys)

    assert_failed_with_nothing_downstream(code, err, expected)
    assert gio.read_json(SUMMARY)["failed_checks"] == 1


def test_validation_reports_all_failures_at_once_with_distinct_failing_rows(
    churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = churn.copy()
    for mutate, _ in FAILURES.values():
        frame = mutate(frame)
    write_raw(frame)

    code, err = run_validate(capsys)

    expected = [text for _, texts in FAILURES.values() for text in texts]
    assert_failed_with_nothing_downstream(code, err, expected)
    summary = read_validation_metrics(SUMMARY)  # the typed reader's shape
    assert summary.failed_checks == len(FAILURES)
    assert summary.failing_rows == 19  # rows 0-7, 9, 11, 20-26, 30, 31; row 2 fails twice


def test_validation_does_not_count_an_unreadable_value_again_as_missing(
    churn: pd.DataFrame, contract: Contract
) -> None:
    result = validate_frame(_set("age", [4], "forty")(churn.copy()), contract)

    assert [(f.column, f.rule) for f in result.failures] == [("age", "dtype")]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("data/raw/churn.csv", b"", "data/raw/churn.csv: file is empty"),
        ("data/raw/churn.csv", b"customer_id,churned\n", "data/raw/churn.csv: file has no data"),
        ("data/raw/data.parquet", b"PAR1 not parquet", "data/raw/data.parquet: cannot read"),
    ],
    ids=["empty", "header only", "corrupt parquet"],
)
def test_validation_fails_on_an_empty_or_unreadable_file_naming_it(
    name: str, content: bytes, expected: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gio.write_bytes(name, content)

    code, err = run_validate(
        capsys, "--input", name, "--report", str(REPORT), "--output", str(VALIDATED)
    )

    assert code == 1
    assert expected in err
    assert escape(expected) in REPORT.read_text()
    assert not VALIDATED.exists()


def test_an_ad_hoc_check_of_another_file_writes_nothing_the_pipeline_owns(
    churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    churn.to_csv("elsewhere.csv", index=False)
    summary = Path("metrics/validation.json")
    gio.write_text(summary, "committed\n")

    code, _ = run_validate(capsys, "--input", "elsewhere.csv")
    missing, err = run_validate(capsys, "--input", "missing.csv")

    assert code == 0
    assert VALIDATED.read_bytes() == b"stale output of an earlier run"  # not the check's to touch
    assert not REPORT.exists()
    assert summary.read_text() == "committed\n"
    assert (missing, err) == (2, "error: missing.csv: file not found\n")


def test_validation_of_a_missing_file_says_file_not_found(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_validate(capsys)

    assert code == 1
    assert f"file [readable]: {RAW}: file not found" in err
    assert not VALIDATED.exists()


def test_valid_data_is_written_in_canonical_dtypes_and_contract_order(
    churn: pd.DataFrame, contract: Contract, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shuffled = churn[list(reversed(churn.columns))].assign(notes="free text")
    gio.write_parquet(RAW, shuffled)
    REPORT.parent.mkdir()
    REPORT.write_text("stale failure report")

    code, err = run_validate(capsys)

    assert code == 0, err
    validated = pd.read_parquet(VALIDATED)
    assert list(validated.columns) == contract.names
    expected = {
        "tenure_months": "int64",
        "monthly_charges": "float64",
        "contract": "str",
        "payment_method": "str",
        "paperless_billing": "bool",
        "snapshot_date": "datetime64[us]",
    }
    assert {name: str(validated[name].dtype) for name in expected} == expected
    summary = read_validation_metrics(SUMMARY)  # the typed reader's shape
    assert summary.status == "passed"
    assert (summary.rows, summary.columns, summary.failing_rows) == (3000, 20, 0)
    assert summary.dropped_columns == ["notes"]
    assert summary.missing_rate["satisfaction_score"] == pytest.approx(
        churn["satisfaction_score"].isna().mean(), abs=1e-4
    )
    assert not REPORT.exists()


def test_validation_accepts_csv_text_for_dates_and_bools(
    churn: pd.DataFrame, contract: Contract, tmp_path: Path
) -> None:
    frame = churn.head(500).copy()
    frame["senior_citizen"] = np.where(frame["senior_citizen"], "yes", "no")
    frame["paperless_billing"] = frame["paperless_billing"].astype(int)
    frame.to_csv(tmp_path / "churn.csv", index=False)

    result = validate_frame(gio.read_table(tmp_path / "churn.csv"), contract)

    assert result.passed, [f.line() for f in result.failures]
    from_parquet = validate_frame(churn.head(500), contract).frame
    assert result.frame is not None and from_parquet is not None
    pd.testing.assert_frame_equal(result.frame, from_parquet)


def test_validation_outputs_are_byte_identical_across_runs(
    churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gio.write_parquet(RAW, churn)
    outputs = []
    for _ in range(2):
        assert run_validate(capsys)[0] == 0
        outputs.append((VALIDATED.read_bytes(), SUMMARY.read_bytes()))

    assert outputs[0] == outputs[1]


def test_a_point_in_a_decimal_comma_file_is_refused_naming_the_setting() -> None:
    contract = parse_contract(
        {
            "encoding": {"decimal_comma": True},
            "columns": [
                {"name": "alcohol", "type": "float"},
                {"name": "kind", "type": "bool", "role": "target", "task": "binary"},
            ],
        }
    )
    raw = pd.DataFrame({"alcohol": ["13,2", "13.28"], "kind": ["true", "false"]})

    (failure,) = validate_frame(raw, contract).failures

    assert failure.message == (
        "1 row cannot be read as float (expected a number, with a decimal comma "
        "(encoding.decimal_comma)); e.g. row 2: '13.28'"
    )
