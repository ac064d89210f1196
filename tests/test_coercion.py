"""One reading of a raw value everywhere: validate (training data), serving's request check
and the drift check's CSV and Parquet readers turn any raw spelling of a value (padded with
whitespace, any case, any missing token) into the same model input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops_ml.contract import Contract, ContractError, parse_contract
from gitops_ml.model_view import model_frame, onnx_feeds
from gitops_ml.monitor.readers import iter_chunks
from gitops_ml.pipeline.validate import ValidationResult, validate_frame
from serving.validation import FeatureTable, RequestError, feature_specs


def contract_dict() -> dict[str, object]:
    return {
        "name": "people",
        "encoding": {
            "true_values": ["Yes", "1", "true"],
            "false_values": ["No", "0", "false"],
            "missing_values": ["?", "n/a", "NA", "null"],
            "strip": True,
        },
        "columns": [
            {"name": "hours per week", "type": "float", "nullable": True},
            {"name": "education-num", "type": "int", "nullable": True},
            {"name": "married", "type": "bool", "nullable": True},
            {
                "name": "sex",
                "type": "category",
                "nullable": True,
                "checks": {"allowed": ["Female", "Male"]},
            },
            {"name": "income", "type": "bool", "role": "target", "positive": "Yes"},
        ],
    }


CONTRACT = parse_contract(contract_dict())
CONTRACT_ENCODING: dict[str, object] = contract_dict()["encoding"]  # type: ignore[assignment]
PADDING = st.sampled_from(["", " ", "  ", "\t"])
MISSING = st.sampled_from(["", " ", "?", "n/a", "N/A", "NA", "na", "null", "NULL"])


def cased(token: str) -> st.SearchStrategy[str]:
    return st.sampled_from([token, token.lower(), token.upper(), token.title()])


SPELLINGS: dict[str, st.SearchStrategy[str]] = {
    "hours per week": st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: repr(round(x, 3))),
    "education-num": st.integers(-(10**6), 10**6).flatmap(
        lambda i: st.sampled_from([str(i), f"{i}.0"])
    ),
    "married": st.sampled_from(["Yes", "No", "1", "0", "true", "false"]).flatmap(cased),
    "sex": st.sampled_from(["Female", "Male"]),
}


NUMERIC = ("hours per week", "education-num")


def number_contract(**settings: bool) -> Contract:
    """The contract with the encoding's number `settings` (decimal_comma, thousands)."""
    return parse_contract({**contract_dict(), "encoding": {**CONTRACT_ENCODING, **settings}})


def respelt(text: str, decimal_comma: bool, thousands: bool, mark: str | None = None) -> str:
    """A number's plain spelling as a file of that encoding writes it: 1234.5 as 1,234.5
    (`thousands`), 1234,5 (`decimal_comma`) or 1.234,5 (both); `mark` groups the digits
    instead of the other mark (1 234,5)."""
    if thousands and "e" not in text:
        whole, point, fraction = text.partition(".")
        sign = "-" if whole.startswith("-") else ""
        text = f"{sign}{int(whole.lstrip('-')):,}{point}{fraction}"
    if decimal_comma:
        text = text.translate(str.maketrans(",.", ".,"))
    if mark is not None:
        text = text.replace("." if decimal_comma else ",", mark)
    return text


@st.composite
def raw_tables(
    draw: st.DrawFn, decimal_comma: bool = False, thousands: bool = False, mark: str | None = None
) -> pd.DataFrame:
    """Raw cells as files and clients spell them: padded, any case, any missing token; the
    numbers as an encoding with `decimal_comma` or `thousands` writes them (see respelt)."""
    rows = draw(st.integers(1, 8))
    columns: dict[str, list[str]] = {}
    for name, spelling in SPELLINGS.items():
        if name in NUMERIC:
            spelling = spelling.map(lambda text: respelt(text, decimal_comma, thousands, mark))
        cell = st.one_of(MISSING, st.tuples(PADDING, spelling, PADDING).map("".join))
        columns[name] = draw(st.lists(cell, min_size=rows, max_size=rows))
    columns["income"] = draw(st.lists(st.sampled_from(["Yes", "No"]), min_size=rows, max_size=rows))
    return pd.DataFrame(columns, dtype=object)


def comparable(contract: Contract, name: str, values: object) -> list[object]:
    """A reader's values for one feature as plain floats (NaN for missing) or text ('' for
    missing, as the model sees it)."""
    series = pd.Series(
        values.to_pylist() if hasattr(values, "to_pylist") else np.asarray(values).ravel()
    )
    if contract.column(name).is_categorical:
        return ["" if pd.isna(v) else str(v) for v in series]
    numbers = series.astype("float64").astype(np.float32).astype("float64")
    return ["nan" if np.isnan(v) else float(v) for v in numbers]


def validated_inputs(raw: pd.DataFrame, contract: Contract) -> dict[str, list[object]]:
    result = validate_frame(raw, contract)
    assert result.frame is not None, [f.line() for f in result.failures]
    feeds = onnx_feeds(model_frame(result.frame, contract), contract)
    return {
        n: comparable(contract, n, feeds[contract.onnx_inputs[n]]) for n in contract.feature_names
    }


def served_inputs(raw: pd.DataFrame, contract: Contract) -> dict[str, list[object]]:
    table = FeatureTable(feature_specs(contract))
    columns = {name: raw[name].tolist() for name in contract.feature_names}
    feeds = table.build(columns, len(raw), "input").feeds
    return {
        n: comparable(contract, n, feeds[contract.onnx_inputs[n]]) for n in contract.feature_names
    }


def drift_inputs(path: Path, contract: Contract) -> dict[str, list[object]]:
    (chunk,) = list(iter_chunks([path], contract, chunk_rows=1000))
    return {n: comparable(contract, n, chunk.columns[n]) for n in contract.feature_names}


def one_row_with_hours(spelling: str) -> pd.DataFrame:
    """One row of the contract's raw cells, `hours per week` spelt `spelling`."""
    return pd.DataFrame(
        {
            "hours per week": [spelling],
            "education-num": ["9"],
            "married": ["Yes"],
            "sex": ["Male"],
            "income": ["No"],
        },
        dtype=object,
    )


def read_alike(raw: pd.DataFrame, contract: Contract, directory: Path) -> None:
    raw.to_csv(directory / "window.csv", index=False)
    raw.astype(str).to_parquet(directory / "window.parquet", index=False)

    expected = validated_inputs(raw, contract)

    assert served_inputs(raw, contract) == expected
    assert drift_inputs(directory / "window.csv", contract) == expected
    assert drift_inputs(directory / "window.parquet", contract) == expected


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=raw_tables())
def test_every_reader_reads_every_spelling_as_the_same_value(
    raw: pd.DataFrame, tmp_path: Path
) -> None:
    read_alike(raw, CONTRACT, tmp_path)


@pytest.mark.parametrize(
    ("decimal_comma", "thousands", "mark"),
    [
        (True, False, None),
        (False, True, None),
        (True, True, None),
        (True, True, "\u202f"),  # French: 1 234,5 with a narrow non-breaking space
        (False, True, "'"),  # Swiss: 1'234.5
    ],
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_reader_reads_a_decimal_comma_and_grouped_digits_as_the_same_value(
    decimal_comma: bool, thousands: bool, mark: str | None, data: st.DataObject, tmp_path: Path
) -> None:
    raw = data.draw(raw_tables(decimal_comma, thousands, mark))
    contract = number_contract(decimal_comma=decimal_comma, thousands=thousands)
    read_alike(raw, contract, tmp_path)


@pytest.mark.parametrize(
    ("settings", "spelling", "number"),
    [
        ({"thousands": True}, "1,234.5", 1234.5),
        ({"thousands": True}, "1234.5", 1234.5),
        ({"thousands": True}, "12,5", None),  # only groups of three digits are grouped
        ({"thousands": True}, "1,23", None),
        ({"thousands": True}, "1,2345", None),
        ({"decimal_comma": True}, "12,5", 12.5),
        ({"decimal_comma": True}, "12.5", None),  # a point is no part of such a number
        ({"decimal_comma": True}, "1.250,5", None),
        ({"decimal_comma": True, "thousands": True}, "1.250,5", 1250.5),
        ({"decimal_comma": True, "thousands": True}, "1 250,5", 1250.5),
        ({"thousands": True}, "1\u00a0234", 1234.0),
        ({"thousands": True}, "1'234.5", 1234.5),
        ({"thousands": True}, "1,234 567", None),  # one mark per number
        ({"thousands": True}, "1 23", None),
        ({}, "1 234", None),  # a space groups digits only with `thousands`
    ],
)
def test_a_number_is_read_or_refused_alike_by_training_and_serving(
    settings: dict[str, bool], spelling: str, number: float | None
) -> None:
    contract = number_contract(**settings)
    raw = one_row_with_hours(spelling)

    if number is None:
        assert not validate_frame(raw, contract).passed
        refused = "text that is not a number|a decimal point where the contract's encoding"
        with pytest.raises(RequestError, match=refused):
            served_inputs(raw, contract)
    else:
        assert served_inputs(raw, contract)["hours per week"] == [number]
        assert validated_inputs(raw, contract)["hours per week"] == [number]


def test_a_trimmed_and_an_untrimmed_value_are_one_value_to_training_and_serving() -> None:
    """Trained on ' Male' (a census file's spelling), a client sending 'Male' got another score."""
    raw = pd.DataFrame(
        {
            "hours per week": [" 40", "40"],
            "education-num": [" 13", "13"],
            "married": [" Yes", "yes"],
            "sex": [" Male", "Male"],
            "income": ["Yes", "No"],
        }
    )

    trained = validated_inputs(raw, CONTRACT)
    served = served_inputs(raw, CONTRACT)

    assert trained == served
    assert trained["sex"] == ["Male", "Male"]
    assert served["married"] == [1.0, 1.0]


@pytest.mark.parametrize("strip", [True, False])
def test_without_strip_the_space_is_part_of_the_value(strip: bool) -> None:
    contract = parse_contract(
        {
            "encoding": {"strip": strip},
            "columns": [
                {"name": "sex", "type": "category"},
                {"name": "y", "type": "bool", "role": "target"},
            ],
        }
    )
    raw = pd.DataFrame({"sex": [" Male", "Male"], "y": ["yes", "no"]})

    values = served_inputs(raw, contract)["sex"]

    assert values == (["Male", "Male"] if strip else [" Male", "Male"])
    assert validated_inputs(raw, contract)["sex"] == values


def test_the_drift_check_reads_a_csv_window_laid_out_as_the_contract_says(
    tmp_path: Path,
) -> None:
    """A headerless, `;`-separated window with a trailing `;` (as the source file is)."""
    layout = {"delimiter": ";", "header": False, "names": [*CONTRACT.names]}
    contract = parse_contract({**contract_dict(), "csv": layout})
    raw = pd.DataFrame(
        {
            "hours per week": [" 40", "?"],
            "education-num": ["13", " 9"],
            "married": ["Yes", "no"],
            "sex": [" Male", "Female"],
            "income": ["Yes", "No"],
        }
    )
    lines = raw.to_csv(sep=";", header=False, index=False).splitlines()
    (tmp_path / "window.csv").write_text("".join(f"{line};\n" for line in lines))

    assert drift_inputs(tmp_path / "window.csv", contract) == validated_inputs(raw, CONTRACT)


def visits(dates: list[str], encoding: dict[str, Any]) -> ValidationResult:
    """`dates` validated as a timestamp column under a contract with `encoding`."""
    contract = parse_contract(
        {
            "encoding": encoding,
            "columns": [
                {"name": "visit", "type": "datetime", "role": "timestamp"},
                {"name": "x", "type": "float"},
                {"name": "y", "type": "bool", "role": "target"},
            ],
        }
    )
    raw = pd.DataFrame(
        {"visit": dates, "x": [1.0] * len(dates), "y": ["1", "0"] * (len(dates) // 2)}
    )
    return validate_frame(raw, contract)


@pytest.mark.parametrize(
    ("day_first", "expected"),
    [(True, ["2024-01-03", "2024-02-05"]), (False, ["2024-03-01", "2024-05-02"])],
)
def test_a_date_reads_as_the_contract_says_even_in_a_batch_that_fits_both_orders(
    day_first: bool, expected: list[str]
) -> None:
    """03/01/2024 is 3 January in a day-first file, whatever the other dates of the batch."""
    result = visits(["03/01/2024", "05/02/2024"], {"day_first": day_first})

    assert result.passed
    assert result.frame is not None
    assert result.frame["visit"].dt.strftime("%Y-%m-%d").tolist() == expected


def test_a_day_first_date_past_the_twelfth_is_refused_without_day_first() -> None:
    result = visits(["03/01/2024", "13/01/2024"], {})

    assert not result.passed
    assert "set encoding.day_first" in result.failures[0].message


def test_day_first_is_true_or_false() -> None:
    with pytest.raises(ContractError, match=r"'encoding.day_first' must be true or false"):
        parse_contract(
            {
                "encoding": {"day_first": "yes"},
                "columns": [{"name": "x", "type": "float"}, {"name": "y", "type": "bool"}],
            }
        )


@pytest.mark.parametrize("spelling", ["1_000", "١٢", "\xa012", "0x10", "1,5", "12 kg"])
def test_a_number_spelling_that_training_refuses_is_refused_by_serving_too(spelling: str) -> None:
    """Python's float() reads 1_000, Unicode digits and a non-breaking space; pandas and Arrow
    do not, so neither may the server: a value it scored would fail validation when the
    captured rows become training data."""
    raw = one_row_with_hours(spelling)

    assert not validate_frame(raw, CONTRACT).passed
    with pytest.raises(
        RequestError, match=r"'hours per week': row 0 is .*text that is not a number"
    ):
        served_inputs(raw, CONTRACT)
