"""Every stage writes through one atomic, deterministic writer and reads tables through one
reader whose errors name the file and the reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gitops_ml import io as gio
from gitops_ml.errors import UserError


def test_a_failed_write_leaves_the_previous_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("before\n")

    with pytest.raises(RuntimeError), gio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("the stage failed")

    assert target.read_text() == "before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_outputs_are_readable_by_others_like_any_file_the_user_makes(tmp_path: Path) -> None:
    gio.write_text(tmp_path / "a" / "card.md", "# card\n")
    (tmp_path / "plain.md").write_text("# card\n")

    assert (tmp_path / "a" / "card.md").stat().st_mode == (tmp_path / "plain.md").stat().st_mode


def test_json_is_sorted_null_for_non_finite_and_plain_numbers(tmp_path: Path) -> None:
    gio.write_json(tmp_path / "m.json", {"b": np.float64(0.5), "a": [math.nan, np.int64(3)]})

    text = (tmp_path / "m.json").read_text()
    assert text == '{\n  "a": [\n    null,\n    3\n  ],\n  "b": 0.5\n}\n'
    assert gio.read_json(tmp_path / "m.json") == json.loads(text)


def test_yaml_that_is_missing_or_malformed_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^params not found: .*params\.yaml; run it$"):
        gio.read_yaml(tmp_path / "params.yaml", "params", hint="; run it")
    (tmp_path / "params.yaml").write_text("a: [1\n")
    with pytest.raises(UserError, match=r"params\.yaml: not valid YAML"):
        gio.read_yaml(tmp_path / "params.yaml", "params")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("gone.csv", None, "file not found"),
        ("empty.csv", "", "file is empty"),
        ("header.csv", "a,b\n", "file has no data rows"),
        ("data.xlsx", "a\n1\n", "unsupported file type; use .csv or .parquet"),
    ],
)
def test_an_unreadable_table_is_an_error_naming_the_file(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)

    with pytest.raises(gio.TableReadError, match=rf"{name}: {message}"):
        gio.read_table(tmp_path / name, raw_text=True)


def test_raw_text_keeps_every_cell_as_written(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(" id ,flag,amount\n00123,NA, 4.50\n")

    frame = gio.read_table(tmp_path / "t.csv", raw_text=True)

    assert list(frame.columns) == ["id", "flag", "amount"]
    assert frame.iloc[0].tolist() == ["00123", "NA", " 4.50"]


def test_a_trailing_delimiter_on_every_row_is_no_column(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a;b\n1;2;\n3;4;\n")

    frame = gio.read_table(tmp_path / "t.csv", raw_text=True, layout=gio.CsvLayout(";"))

    assert list(frame.columns) == ["a", "b"] and frame["b"].tolist() == ["2", "4"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2,3,4\n", "the header row has 2 columns but the data rows have 4"),
        (
            "Sales report, 2024-03-31\nregion,units,price\nnorth,12,3.5\n",
            "a title or note line above the header does this: remove it",
        ),
        (
            "a,b,c\n1,2\n",
            r"the data rows have 2 \(delimiter ','\); check the delimiter and the header$",
        ),
        ("a,,c\n1,2,3\n", r"column\(s\) 2 have no name in the header"),
        ("a,b,a\n1,2,3\n", r"duplicate column names \['a'\]"),
    ],
)
def test_a_header_that_does_not_fit_the_rows_is_named(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "t.csv").write_text(content)

    with pytest.raises(gio.TableReadError, match=message):
        gio.read_table(tmp_path / "t.csv", raw_text=True)


def test_a_file_in_another_encoding_reads_as_written_when_the_layout_names_it(
    tmp_path: Path,
) -> None:
    """A spreadsheet exported on Windows writes cp1252: "Zürich" is the byte 0xfc there."""
    (tmp_path / "t.csv").write_bytes("city,n\nZürich,1\nMontréal,2\n".encode("cp1252"))

    frame = gio.read_table(
        tmp_path / "t.csv", raw_text=True, layout=gio.CsvLayout(encoding="cp1252")
    )

    assert frame["city"].tolist() == ["Zürich", "Montréal"]
    with pytest.raises(
        gio.TableReadError, match=r"t\.csv: not utf-8 text \(byte 0xfc\); set csv\.encoding"
    ):
        gio.read_table(tmp_path / "t.csv", raw_text=True)


@pytest.mark.parametrize(
    "layout",
    [
        gio.CsvLayout(";", encoding="cp1252"),
        gio.CsvLayout("|", header=False, names=("n", "city"), encoding="utf-16"),
        gio.CsvLayout(index=True),
    ],
)
def test_text_cells_written_in_a_layout_read_back_in_it(
    tmp_path: Path, layout: gio.CsvLayout
) -> None:
    cells = pd.DataFrame({"city": ["Zürich", "São Paulo"], "n": ["1", ""]})

    gio.write_csv_text(tmp_path / "t.csv", cells, layout)
    read, _ = gio.read_csv_text(str(tmp_path / "t.csv"), layout)

    assert read[["city", "n"]].to_dict("list") == cells.to_dict("list")


def test_a_saved_row_index_is_never_read_as_a_column(tmp_path: Path) -> None:
    """pandas' `to_csv` writes the index first, its header field empty: `csv.index` skips it."""
    pd.DataFrame({"a": ["x", "y"], "b": ["1", "2"]}, index=[7, 9]).to_csv(tmp_path / "t.csv")

    frame = gio.read_table(tmp_path / "t.csv", raw_text=True, layout=gio.CsvLayout(index=True))

    assert frame.to_dict("list") == {"a": ["x", "y"], "b": ["1", "2"]}
    with pytest.raises(gio.TableReadError, match=r"column\(s\) 1 have no name in the header"):
        gio.read_table(tmp_path / "t.csv", raw_text=True)


def test_rows_of_nothing_but_delimiters_are_not_data(tmp_path: Path) -> None:
    """A spreadsheet exports `,,` below its data; a row with some value missing stays."""
    (tmp_path / "t.csv").write_text("a,b\nx,1\n,2\n,\n,\n")

    frame = gio.read_table(tmp_path / "t.csv", raw_text=True)

    assert frame.to_dict("list") == {"a": ["x", ""], "b": ["1", "2"]}


def test_a_file_without_a_header_takes_the_contracts_names(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("1,x\n2,y\n")
    layout = gio.CsvLayout(header=False, names=("n", "s"))

    frame = gio.read_table(tmp_path / "t.csv", raw_text=True, layout=layout)

    assert frame.to_dict("list") == {"n": ["1", "2"], "s": ["x", "y"]}


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])
def test_read_table_keeps_the_named_columns_the_file_has(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]})
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        gio.write_parquet(path, frame)

    assert list(gio.read_table(path, columns=["c", "a", "zz"]).columns) == ["c", "a"]
    assert list(gio.read_table(path, columns=["zz"]).columns) == ["a", "b", "c"]  # caller names it


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])
def test_categorical_columns_are_read_as_codes_with_the_same_values(
    tmp_path: Path, name: str
) -> None:
    frame = pd.DataFrame({"plan": ["basic", None, "pro", "basic"], "n": [1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        gio.write_parquet(path, frame)

    read = gio.read_table(path, categorical=["plan", "n", "absent"])

    assert isinstance(read["plan"].dtype, pd.CategoricalDtype)
    assert read["plan"].astype(object).where(read["plan"].notna(), None).tolist() == [
        "basic",
        None,
        "pro",
        "basic",
    ]
    assert read["n"].tolist() == [1.0, 2.0, 3.0, 4.0]
