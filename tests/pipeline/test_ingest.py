"""ingest: the data file `data.source` names (CSV or Parquet) lands unchanged in data/raw as
Parquet; a URL is DVC's to bring in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from project_fixtures import CONTRACT_PATH

from gitops_ml.cli import main
from gitops_ml.io import write_parquet
from gitops_ml.pipeline.ingest import parquet_safe
from gitops_ml.synthetic import generate_churn

RAW = Path("data/raw/data.parquet")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return generate_churn(800, seed=21)


def ingest(
    source: str, capsys: pytest.CaptureFixture[str], csv: dict[str, object] | None = None
) -> tuple[int, str, str]:
    """`gitops-ml ingest` of `source`, with the churn contract (and its `csv` section)."""
    data = f"{{source: '{source}', rows: 800, seed: 21, scenario: none}}"
    Path("params.yaml").write_text(f"data: {data}\n")
    contract = yaml.safe_load(CONTRACT_PATH.read_text())
    if csv is not None:
        contract["csv"] = csv
    Path("schema.yaml").write_text(yaml.safe_dump(contract))
    code = main(["ingest", "--contract", "schema.yaml"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_ingest_copies_a_user_file_unchanged(
    suffix: str, churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"mine.{suffix}"
    getattr(churn, f"to_{suffix}")(source, index=False)

    code, _, _ = ingest(source, capsys)

    assert code == 0
    # CSV cells are kept as the text in the file (the contract's encoding reads them later).
    expected = (
        pd.read_csv(source, dtype=str, keep_default_na=False)
        if suffix == "csv"
        else pd.read_parquet(source)
    )
    pd.testing.assert_frame_equal(pd.read_parquet(RAW), expected, check_dtype=False)


def test_ingest_refuses_a_url_and_names_the_command_that_imports_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = ingest("https://example.invalid/data.csv", capsys)

    assert code == 2
    assert err.startswith("error: params.yaml: data.source is a URL (https://example.invalid/")
    assert "`gitops-ml source --set https://example.invalid/data.csv`" in err
    assert not RAW.exists()


def test_ingest_stores_a_column_mixing_numbers_and_words_as_text(workdir: Path) -> None:
    mixed = pd.DataFrame({"tenure": pd.Series([3, "ten", None], dtype=object), "age": [1.5, 2, 3]})

    write_parquet("mixed.parquet", parquet_safe(mixed))  # pyarrow refuses the raw column

    stored = pd.read_parquet("mixed.parquet")
    assert list(stored["tenure"].iloc[:2]) == ["3", "ten"] and pd.isna(stored["tenure"].iloc[2])
    assert stored["age"].tolist() == [1.5, 2.0, 3.0]


def test_ingest_of_a_missing_file_names_it_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = ingest("nowhere.csv", capsys)

    assert code == 2
    assert err == "error: nowhere.csv: file not found\n"
    assert not RAW.exists()


def test_ingest_reads_a_csv_laid_out_as_the_contract_says(
    churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No header, `;` between fields and one at the end of every row: the columns stay put."""
    text = churn.head(30).to_csv(sep=";", header=False, index=False)
    Path("mine.csv").write_text("".join(f"{line};\n" for line in text.splitlines()))
    layout = {"delimiter": ";", "header": False, "names": list(churn.columns)}

    code, _, err = ingest("mine.csv", capsys, csv=layout)

    assert code == 0, err
    expected = churn.head(30).to_csv(index=False)
    Path("expected.csv").write_text(expected)
    pd.testing.assert_frame_equal(
        pd.read_parquet(RAW), pd.read_csv("expected.csv", dtype=str, keep_default_na=False)
    )


def test_a_trailing_comma_on_every_data_row_shifts_no_column(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pandas took the first column for an index: the id got the ages, the target was empty."""
    Path("mine.csv").write_text("customer_id,age,churned\nc1,39,Yes,\nc2,50,No,\n")

    code, _, err = ingest("mine.csv", capsys)

    assert code == 0, err
    stored = pd.read_parquet(RAW)
    assert stored.to_dict("list") == {
        "customer_id": ["c1", "c2"],
        "age": ["39", "50"],
        "churned": ["Yes", "No"],
    }


def test_duplicate_column_names_are_refused_by_name(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pandas renamed the second `age` to `age.1` without a word."""
    Path("mine.csv").write_text("age,plan,age,churned\n39,basic,40,Yes\n")

    code, _, err = ingest("mine.csv", capsys)

    assert code == 2
    assert err == (
        "error: mine.csv: duplicate column names ['age']: every column needs its own name; "
        "rename them in the file\n"
    )
    assert not RAW.exists()
