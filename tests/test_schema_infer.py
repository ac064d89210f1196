"""`gitops-ml schema infer`: a drafted contract loads, guesses types and roles the way a person
would, and the data it was drafted from passes `validate` against it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from project_fixtures import PARAMS_PATH, task_fixture

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.contract import Contract, load_contract, parse_contract
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.schema_infer import (
    ClassMinimum,
    SchemaInferError,
    TargetChoice,
    infer_contract,
    nice_bounds,
    read_sample,
    render,
    sniff_layout,
)
from gitops_ml.synthetic import generate_churn
from gitops_ml.tasks import Task


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return generate_churn(3000, seed=13)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory: params.yaml (split and cross-validation settings) and nothing else."""
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(PARAMS_PATH, tmp_path / "params.yaml")
    return tmp_path


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_drafted_contract_loads_and_its_source_data_passes_validate(
    suffix: str, churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = f"customers.{suffix}"
    getattr(churn, f"to_{suffix}")(source, index=False)

    assert main(["schema", "infer", source, "--output", "draft.yaml"]) == 0
    code = main(["validate", "--input", source, "--contract", "draft.yaml", "--output", "v.pq"])

    assert code == 0, capsys.readouterr().err
    contract = load_contract("draft.yaml")
    assert (contract.target, contract.id_column, contract.timestamp) == (
        "churned",
        "customer_id",
        "snapshot_date",
    )
    assert contract.names == list(churn.columns)
    assert pd.read_parquet("v.pq").shape == churn.shape


def test_draft_records_types_ranges_categories_and_nullability(churn: pd.DataFrame) -> None:
    contract = infer_contract(churn, "customers.csv").contract

    tenure, charges = contract.column("tenure_months"), contract.column("total_charges")
    assert (tenure.type, tenure.nullable) == ("int", False)
    assert tenure.checks.min == 0 and tenure.checks.max >= churn["tenure_months"].max()
    assert (charges.type, charges.nullable) == ("float", True)
    assert contract.column("plan").checks.allowed == ("basic", "premium", "standard")
    assert contract.column("payment_method").nullable
    assert contract.column("senior_citizen").type == "bool"
    assert contract.column("customer_id").checks.unique


def test_draft_reads_text_columns_as_bool_datetime_and_numbers() -> None:
    frame = pd.DataFrame(
        {
            "signup": ["2024-01-05", "2024-02-11", "2024-03-30", "2024-04-02"],
            "Partner": ["Yes", "No", "No", "Yes"],
            "TotalCharges": ["29.85", " ", "108.15", "1889.5"],
            "SeniorCitizen": [0, 1, 0, 0],
            "visits": [1.0, np.nan, 3.0, 4.0],
            "Churn": ["No", "No", "Yes", "Yes"],
        }
    )

    contract = infer_contract(frame, "telco.csv").contract
    validated = validate_frame(frame, contract).frame

    kinds = {c.name: (c.type, c.role, c.nullable) for c in contract.columns}
    assert kinds == {
        "signup": ("datetime", "timestamp", False),
        "Partner": ("bool", "feature", False),
        "TotalCharges": ("float", "feature", True),
        "SeniorCitizen": ("bool", "feature", False),
        "visits": ("int", "feature", True),
        "Churn": ("bool", "target", False),
    }
    assert validated is not None
    assert validated["TotalCharges"].iloc[0] == 29.85
    assert pd.isna(validated["TotalCharges"].iloc[1])  # a blank is a missing value
    assert {name: str(dtype) for name, dtype in validated.dtypes.items()} == {
        "signup": "datetime64[us]",
        "Partner": "bool",
        "TotalCharges": "float64",
        "SeniorCitizen": "bool",
        "visits": "Int64",
        "Churn": "bool",
    }


@pytest.mark.parametrize(
    ("visits", "day_first", "read"),
    [
        (["03/01/2024", "13/01/2024", "n/a"], True, ["2024-01-03", "2024-01-13"]),
        (["01/03/2024", "01/13/2024", "n/a"], False, ["2024-01-03", "2024-01-13"]),
        # Either order reads: month first, as pandas does, and the column's note says to check.
        (["03/01/2024", "05/02/2024", "n/a"], False, ["2024-03-01", "2024-05-02"]),
    ],
)
def test_a_date_written_day_first_is_the_timestamp_and_read_day_first_from_then_on(
    visits: list[str], day_first: bool, read: list[str]
) -> None:
    frame = pd.DataFrame({"visit": visits, "x": ["1", "2", "3"], "sick": ["Y", "N", "Y"]})

    draft = infer_contract(frame, "clinic.csv")

    assert (draft.contract.timestamp, draft.contract.encoding.day_first) == ("visit", day_first)
    assert ("  day_first: true" in render(draft)) == day_first
    ambiguous = read[0] == "2024-03-01"
    assert ("dates read month first (03/01/2024 is 1 March)" in render(draft)) == ambiguous
    assert parse_contract(yaml.safe_load(render(draft))) == draft.contract
    validated = validate_frame(frame, draft.contract).frame
    assert validated is not None
    assert validated["visit"].dt.strftime("%Y-%m-%d").tolist()[:2] == read


@pytest.mark.parametrize(
    ("weights", "decimal_comma", "thousands", "read"),
    [
        (["12,5", "7", "n/a", "3,25"], True, False, [12.5, 7.0]),  # 12,5: only a decimal comma
        (["1,250", "980", "n/a", "2,400.5"], False, True, [1250.0, 980.0]),  # grouped by threes
        (["1.250,5", "12,5", "n/a", "980"], True, True, [1250.5, 12.5]),  # both, German style
        (["1\u202f250,5", "12,5", "n/a", "980"], True, True, [1250.5, 12.5]),  # French style
        (["1'250.5", "12.5", "n/a", "980"], False, True, [1250.5, 12.5]),  # Swiss style
        (["1.25", "980", "n/a", "2.4"], False, False, [1.25, 980.0]),  # plain numbers
    ],
)
def test_numbers_are_read_with_the_decimal_mark_and_grouping_they_are_written_with(
    weights: list[str], decimal_comma: bool, thousands: bool, read: list[float]
) -> None:
    frame = pd.DataFrame({"weight": weights, "x": ["1", "2", "1", "2"], "y": ["1", "0"] * 2})

    draft = infer_contract(frame, "weights.csv")

    encoding = draft.contract.encoding
    assert (encoding.decimal_comma, encoding.thousands) == (decimal_comma, thousands)
    assert draft.contract.column("weight").type == "float"
    assert ("  decimal_comma: true" in render(draft)) == decimal_comma
    assert ("  thousands: true" in render(draft)) == thousands
    assert parse_contract(yaml.safe_load(render(draft))) == draft.contract
    validated = validate_frame(frame, draft.contract).frame
    assert validated is not None
    assert validated["weight"].tolist()[:2] == read


def test_draft_leaves_out_a_second_datetime_and_keeps_an_empty_column() -> None:
    frame = pd.DataFrame(
        {
            "opened": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "closed": pd.to_datetime(["2024-02-01", "2024-02-02", "2024-02-03"]),
            "note": [None, None, None],
            "spend": [1.5, np.inf, 2.0],
            "outcome": [True, False, True],
        }
    )

    draft = infer_contract(frame, "f.parquet")

    assert draft.contract.names == ["opened", "note", "spend", "outcome"]
    assert "closed" in draft.omitted
    assert draft.contract.column("note").nullable
    assert draft.contract.column("spend").checks.max is None  # no range check around inf
    assert "#   closed: a second datetime column" in render(draft)
    assert validate_frame(frame, draft.contract).passed


def test_target_is_the_first_column_named_like_one_else_the_last_one() -> None:
    frame = pd.DataFrame(
        {"label": [1, 0, 1, 0], "x": [1.5, 2.5, 3.5, 4.5], "active": [True, False, False, True]}
    )

    assert infer_contract(frame, "f.csv").contract.target == "label"
    renamed = frame.rename(columns={"label": "flag"})
    assert infer_contract(renamed, "f.csv").contract.target == "active"
    chosen = infer_contract(frame, "f.csv", choice=TargetChoice(target="x")).contract
    assert (chosen.target, chosen.task) == ("x", "regression")


def test_a_target_of_numbers_written_with_a_currency_sign_is_refused_with_the_plain_spelling() -> (
    None
):
    """$2,068.70 is text to every reader: as a target it would be a class per price."""
    frame = pd.DataFrame({"x": ["1", "2", "3", "4"], "price": ["$2,068.70", "$347.10"] * 2})

    with pytest.raises(SchemaInferError, match=r"'\$2,068.70'.*the currency sign \(2,068.70\)"):
        infer_contract(frame, "prices.csv")


def test_a_feature_of_numbers_with_a_currency_sign_says_how_to_make_it_numeric() -> None:
    frame = pd.DataFrame(
        {
            "rent": ["€1,250", "€980"] * 2,
            "yield": ["4.5%", "12 %"] * 2,
            "balance": ["(1,234.50)", "980"] * 2,
            "sold": ["1", "0", "1", "0"],
        }
    )

    draft = infer_contract(frame, "homes.csv")

    assert draft.contract.column("rent").type == "category"
    assert draft.contract.column("yield").type == "category"
    assert (
        "# review: numbers written like '€1,250' read as text: write them without the currency "
        "sign (1,250)" in render(draft)
    )
    assert (
        "# review: numbers written like '4.5%' read as text: write them without the % sign "
        "(4.5) to use them as numbers" in render(draft)
    )
    assert (
        "# review: numbers written like '(1,234.50)' read as text: write them without the "
        "parentheses, a minus sign instead (-1,234.50)" in render(draft)
    )


@pytest.mark.parametrize(
    ("encoding", "written", "read_as"),
    [
        ("utf-8", "Zürich", "utf-8"),
        ("cp1252", "Zürich", "cp1252"),  # a spreadsheet exported on Windows
        ("utf-16", "Zürich", "utf-16"),  # a spreadsheet's "Unicode text", with its BOM
        ("latin-1", "Zürich\x81", "latin-1"),  # 0x81 is no cp1252 character
    ],
)
def test_the_draft_reads_a_file_in_its_own_encoding_found_anywhere_in_it(
    tmp_path: Path, encoding: str, written: str, read_as: str
) -> None:
    """The only non-ASCII value is on the last line, past the sample the layout is read from."""
    rows = [f"{i},{i % 2},Basel" for i in range(6000)] + [f"6000,1,{written}"]
    path = tmp_path / "sites.csv"
    path.write_bytes(("n,sold,site\n" + "\n".join(rows) + "\n").encode(encoding))
    assert path.stat().st_size > 1 << 16

    assert main(["schema", "infer", str(path), "--output", str(tmp_path / "s.yaml")]) == 0

    contract = load_contract(tmp_path / "s.yaml")
    assert contract.csv.encoding == read_as
    frame = gio.read_table(path, raw_text=True, layout=contract.csv)
    assert frame["site"].iloc[-1] == written
    note = f"# review: the file is not UTF-8: read as {read_as} (csv.encoding)"
    assert (note in (tmp_path / "s.yaml").read_text()) == (read_as != "utf-8")


def test_a_target_of_booleans_with_unlabelled_rows_says_both() -> None:
    """A Parquet bool column: its positive class is true; rows without a label stop split."""
    frame = pd.DataFrame(
        {"x": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5], "y": pd.array([True, False, None] * 2, "boolean")}
    )

    text = render(infer_contract(frame, "f.parquet", choice=TargetChoice(target="y")))

    assert "positive class true" in text and "positive class None" not in text
    assert "# review: 2 rows have no target value: split refuses them" in text


def test_a_file_saved_with_its_row_index_keeps_its_header_and_leaves_the_index_out(
    tmp_path: Path,
) -> None:
    """`df.to_csv(path)` (index and all): the empty first name is the index, not a sign that
    the first row is data."""
    frame = pd.DataFrame({"dose": [1.5, 2.5, 3.5, 4.5] * 3, "cured": ["yes", "no"] * 6})
    frame.to_csv(tmp_path / "saved.csv")
    (tmp_path / "blank.csv").write_text(",dose,cured\nA,1.5,yes\nB,2.5,no\n")

    layout = sniff_layout(read_sample(str(tmp_path / "saved.csv")))

    assert layout.csv.index and layout.csv.header
    assert any("a saved row index" in note for note in layout.notes)
    assert gio.read_table(
        tmp_path / "saved.csv", raw_text=True, layout=layout.csv
    ).columns.tolist() == ["dose", "cured"]
    with pytest.raises(SchemaInferError, match="the header row's first field is empty: name that"):
        sniff_layout(read_sample(str(tmp_path / "blank.csv")))


def test_a_header_of_years_above_figures_is_a_header_and_a_row_of_years_is_data() -> None:
    """A wide table names a column per year; a data row may hold a year in a column of years."""
    figures = (
        "region,2019,2020,grew\nnorth,98.5,104.1,yes\nsouth,87.2,80.0,no\neast,91.0,99.9,yes\n"
    )
    births = "Alice,1985,5.2\nBob,1990,6.1\nCarol,1979,4.4\n"

    assert not sniff_layout(figures).csv.names
    assert sniff_layout(births).csv.names == ("column_1", "column_2", "column_3")


def test_categories_that_differ_only_in_case_get_a_note() -> None:
    frame = pd.DataFrame(
        {"sex": ["Male", "male", "Female", "Male"] * 3, "plan": ["a", "b"] * 6, "y": ["1", "0"] * 6}
    )

    text = render(infer_contract(frame, "people.csv"))

    assert "# review: 'Male', 'male' differ only in case: different categories to the model" in text
    assert text.count("differ only in case") == 1


def test_labels_that_differ_only_by_a_trailing_dot_get_a_note() -> None:
    """UCI's adult: the test file spells the training file's labels with a dot (>50K.)."""
    frame = pd.DataFrame(
        {
            "age": [39, 50, 38, 53, 28, 37, 49, 52] * 3,
            "income": [" <=50K", ">50K", "<=50K.", ">50K.", "<=50K", "<=50K", ">50K", "<=50K."] * 3,
        }
    )

    text = render(infer_contract(frame, "adult.csv"))

    assert (
        "# review: '<=50K', '<=50K.' differ only in a trailing dot: different classes to the "
        "model; write one spelling" in text
    )


def test_a_constant_category_gets_a_note_that_it_tells_the_model_nothing() -> None:
    frame = pd.DataFrame(
        {
            "clinic": ["Main St"] * 6,
            "insured": ["X", None, "X", None, None, "X"],  # a checkbox: the blanks say no
            "visits": [3, 1, 4, 1, 5, 9],
            "y": ["a", "b"] * 3,
        }
    )

    text = render(infer_contract(frame, "f.csv"))

    assert "# review: one value seen ('Main St'): it tells the model nothing; remove the " in text
    assert "# review: allowed = the one value seen ('X'); the rest are missing" in text


def test_a_constant_number_or_flag_gets_the_same_note_a_blank_one_does_not() -> None:
    """scikit-learn's digits: the corner pixels are 0 on every image."""
    frame = pd.DataFrame(
        {
            "pixel-0-0": ["0"] * 6,
            "gain": [" 2.5"] * 6,
            "ticked": ["1", None, "1", None, None, "1"],  # a checkbox: the blanks say no
            "visits": ["3", "1", "4", "1", "5", "9"],
            "y": ["a", "b"] * 3,
        }
    )

    text = render(infer_contract(frame, "digits.csv"))

    assert "# review: one value seen ('0'): it tells the model nothing; remove the column" in text
    assert "# review: one value seen ('2.5'): it tells the model nothing" in text
    assert text.count("one value seen") == 2


def test_a_column_of_measurements_with_detection_limits_gets_a_note() -> None:
    frame = pd.DataFrame(
        {
            "crp": ["1.2", "<0.5", "3.4", "< 0.5", "2.2", "0.9", ">100", "5.1"],
            "site": ["a<1", "b", "c", "d", "e", "f", "g", "h"],  # text with a '<': no note
            "y": ["yes", "no"] * 4,
        }
    )

    text = render(infer_contract(frame, "lab.csv"))

    assert "# review: values like '<0.5' (a limit, not a measurement) make this column text" in text
    assert text.count("a limit, not a measurement") == 1


def test_spreadsheet_formula_errors_read_as_missing_values() -> None:
    frame = pd.DataFrame(
        {
            "ratio": ["1.2", "#DIV/0!", "3.4", "#N/A", "2.2", "0.9", "#VALUE!", "5.1"],
            "y": ["yes", "no"] * 4,
        }
    )

    draft = infer_contract(frame, "sheet.csv")

    ratio = draft.contract.column("ratio")
    assert (ratio.type, ratio.nullable) == ("float", True)
    assert {"#DIV/0!", "#N/A", "#VALUE!"} <= set(draft.contract.encoding.missing_values)


@pytest.mark.parametrize(
    ("written", "note"),
    [
        (["$1.20", "$5.50", "?", "$2.00"], "write them without the currency sign (1.20)"),
        (["1.2", "\u22125.5", "3.4", "\u22122.0"], "an ASCII '-' instead (-5.5)"),
    ],
)
def test_unique_numbers_written_as_text_get_a_note_and_are_never_the_id(
    written: list[str], note: str
) -> None:
    """A price column in dollars is unique, like an id; it is a feature to write as numbers."""
    frame = pd.DataFrame({"amount": written, "age": [30, 41, 52, 33], "y": ["yes", "no"] * 2})

    draft = infer_contract(frame, "f.csv")

    assert draft.contract.id_column is None
    assert note in render(draft)


def test_a_total_row_under_the_data_gets_a_note() -> None:
    rows = {"region": ["north", "south", "east", "west"], "units": [12, 7, 30, 4]}
    frame = pd.DataFrame({**rows, "returned": ["no", "yes", "no", "yes"]})
    with_total = pd.concat(
        [frame, pd.DataFrame({"region": [" Total"], "units": [53], "returned": [None]})]
    )

    text = render(infer_contract(with_total, "sales.csv"))

    assert (
        "# review: the last row starts with 'Total': a spreadsheet's total row is not data" in text
    )
    assert "# review: 1 row has no target value: split refuses them" in text
    assert "total row" not in render(infer_contract(frame, "sales.csv"))


def test_a_units_line_under_the_header_gets_a_note_and_no_column_is_taken_for_the_id() -> None:
    frame = pd.DataFrame(
        {
            "weight": ["kg", "70", "82", "65", "90"],
            "height": ["cm", "180", "175", "175", "185"],
            "y": [None, "yes", "no", "yes", "no"],
        }
    )

    draft = infer_contract(frame, "people.csv")

    assert draft.contract.id_column is None
    assert (
        "# review: the first row holds text ('kg' in 'weight', 'cm' in 'height') where the rows "
        "below hold numbers: a units line under the header? remove it from the file"
    ) in render(draft)


def test_codes_written_with_a_leading_zero_stay_text_as_written() -> None:
    """A zip code read as a number would be 2134 in training and "02134" from a client."""
    frame = pd.DataFrame(
        {
            "zip": ["02134", "94105", "02134", "60614", "94105", "60614"],
            "share": ["0.5", "1.25", "0.75", "0", "2", "0.5"],  # 0.5 is a number, not a code
            "sold": ["1", "0", "1", "0", "1", "0"],
        }
    )

    draft = infer_contract(frame, "homes.csv")

    assert draft.contract.column("zip").type == "category"
    assert draft.contract.column("zip").checks.allowed == ("02134", "60614", "94105")
    assert draft.contract.column("share").type == "float"
    assert (
        "# review: values written with a leading zero (e.g. '02134') read as text codes: a "
        "number would drop the zero; make it int if it is a quantity" in render(draft)
    )
    assert parse_contract(yaml.safe_load(render(draft))).column("zip").type == "category"


def test_many_codes_of_one_width_get_that_width_as_their_max_length() -> None:
    """Too many zip codes for an allowed list; their width still bounds what a client sends."""
    zips = [f"{n:05d}" for n in range(0, 40_000, 1_000)] * 3  # 40 codes, '00000' to '39000'
    frame = pd.DataFrame(
        {
            "zip": zips,
            "comment": [f"seen {n % 40} times" for n in range(120)],  # free text of any width
            "share": [f"{10 + n % 40}.5%" for n in range(120)],  # numbers written as text
            "sold": ["1", "0", "1"] * 40,
        }
    )

    draft = infer_contract(frame, "homes.csv")
    text = render(draft)

    assert draft.contract.column("zip").checks.max_length == 5
    assert draft.contract.column("comment").checks.max_length is None
    assert draft.contract.column("share").checks.max_length is None, "a number, not a code"
    assert "# review: 40 distinct values, each 5 characters: a code (no allowed list); " in text
    assert parse_contract(yaml.safe_load(text)).column("zip").max_length == 5


def test_dates_written_as_eight_digits_get_a_note_and_other_numbers_do_not() -> None:
    frame = pd.DataFrame(
        {
            "signed": [20240131, 20240201, 20231115, 20240229, 20240131, 20231115],
            "amount": [20240131, 20241399, 5, 7, 9, 11],  # no month 13: not dates
            "left": ["1", "0", "1", "0", "1", "0"],
        }
    )

    text = render(infer_contract(frame, "contracts.csv"))

    assert "# review: values look like dates written YYYYMMDD (e.g. 20240131): " in text
    assert text.count("look like dates") == 1


@pytest.mark.parametrize(
    "name", ["customer_id", "CustomerID", "patient_no", "AccountNr", "order number"]
)
def test_a_unique_column_named_like_an_identifier_is_drafted_as_the_id(name: str) -> None:
    frame = pd.DataFrame(
        {name: [100001 + n for n in range(12)], "visits": [3, 1] * 6, "left": ["y", "n"] * 6}
    )

    assert infer_contract(frame, "rows.csv").contract.id_column == name


def test_a_unique_count_is_not_an_identifier_and_its_range_is_written_out() -> None:
    frame = pd.DataFrame({"step_count": [20190202 + n for n in range(12)], "left": ["y", "n"] * 6})

    draft = infer_contract(frame, "rows.csv")

    assert draft.contract.id_column is None
    assert "# review: range seen 20190202 to 20190213: widen to what is plausible" in render(draft)


def test_the_guessed_target_is_never_a_date_an_identifier_or_a_constant() -> None:
    frame = pd.DataFrame(
        {
            "visits": [3, 1, 4, 1, 5, 9],
            "churn": ["yes", "no", "no", "yes", "no", "no"],
            "country": ["fr"] * 6,
            "label_id": ["a", "b", "c", "d", "e", "f"],  # named like a target, but an id
            "ref": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "seen": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", ""],
        }
    )

    assert infer_contract(frame, "f.csv").contract.target == "churn"
    with pytest.raises(SchemaInferError, match=r"no column can be the target .*pass --target"):
        infer_contract(frame[["country", "ref", "seen"]], "f.csv")


@pytest.mark.parametrize("target", ["Diagnosis", "Survived", "is_fraud", "default"])
def test_a_column_named_like_a_well_known_target_is_the_guessed_target(target: str) -> None:
    frame = pd.DataFrame(
        {target: ["M", "B", "B", "M", "B", "B"], "radius": [17.9, 11.4, 12.1, 20.6, 9.8, 13.0]}
    )

    assert infer_contract(frame, "f.csv").contract.target == target


def test_draft_needs_a_feature_besides_target_id_and_timestamp() -> None:
    frame = pd.DataFrame({"when": ["2020-01-01", "2020-01-02"], "y": [True, False]})

    with pytest.raises(SchemaInferError, match="no feature columns left"):
        infer_contract(frame, "f.csv")


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [
        (0, 117, True, (0, 120)),
        (18, 95, True, (18, 95)),
        (5.3, 481.2, False, (0.0, 490.0)),
        (1.0, 5.0, False, (1.0, 5.0)),
        (-3.2, 7.9, False, (-4.0, 8.0)),
        (0.31, 0.74, False, (0.31, 0.74)),
        (7.0, 7.0, False, (7.0, 7.0)),
    ],
)
def test_ranges_are_rounded_outward(
    low: float, high: float, integer: bool, expected: tuple[float, float]
) -> None:
    assert nice_bounds(low, high, integer) == expected


def test_schema_infer_refuses_to_overwrite_without_force(
    churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    churn.head(200).to_csv("customers.csv", index=False)
    Path("schema.yaml").write_text("hand-written contract\n")

    code = main(["schema", "infer", "customers.csv", "--output", "schema.yaml"])

    err = capsys.readouterr().err
    assert code == 2
    assert "error: schema.yaml already exists; pass --force to overwrite it" in err
    assert Path("schema.yaml").read_text() == "hand-written contract\n"
    assert main(["schema", "infer", "customers.csv", "--output", "schema.yaml", "--force"]) == 0
    assert load_contract("schema.yaml").target == "churned"


def test_schema_infer_prints_the_draft_with_review_notes_when_no_output_is_given(
    churn: pd.DataFrame, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    churn.head(200).to_csv("customers.csv", index=False)

    assert main(["schema", "infer", "customers.csv", "--target", "senior_citizen"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("# Data contract drafted by `gitops-ml schema infer` from customers.csv")
    assert "  # review: allowed = the 3 values seen; add any other legitimate value\n" in out
    assert "  - name: senior_citizen\n    type: bool\n    role: target\n" in out


CELLS = {
    "int": st.integers(-1000, 1000),
    "float": st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3)),
    "word": st.sampled_from(["red", "green", "blue", "", " "]),
    "yes/no": st.sampled_from(["yes", "no", "Y", "N"]),
    "date": st.dates().map(lambda d: d.isoformat()),
    "number text": st.integers(0, 99).map(str),
}


def load_contract_text(text: str) -> Contract:
    return parse_contract(yaml.safe_load(text))


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(2, 12))
    columns: dict[str, list[object]] = {}
    for index, kind in enumerate(draw(st.lists(st.sampled_from(list(CELLS)), min_size=1))):
        cell = st.one_of(st.none(), CELLS[kind]) if draw(st.booleans()) else CELLS[kind]
        columns[f"c{index}"] = draw(st.lists(cell, min_size=rows, max_size=rows))
    columns["amount"] = draw(st.lists(CELLS["float"], min_size=rows, max_size=rows))
    columns["churn"] = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    return pd.DataFrame(columns).astype(object)


@settings(max_examples=40, deadline=None)
@given(tables())
def test_any_table_passes_validation_against_its_own_draft(frame: pd.DataFrame) -> None:
    draft = infer_contract(frame, "random.csv")

    result = validate_frame(frame, load_contract_text(render(draft)))

    assert result.passed, [failure.line() for failure in result.failures]


# --------------------------------------------------------------------------------------------
# Real files as they are: layout, missing tokens, whitespace, whole numbers, any two-valued
# target. Each file is drafted and then validated by the commands a user runs.
# --------------------------------------------------------------------------------------------


def draft_and_validate(path: str, capsys: pytest.CaptureFixture[str], *options: str) -> str:
    """`schema infer FILE --output draft.yaml`, then `validate --input FILE` against it."""
    assert main(["schema", "infer", path, "--output", "draft.yaml", *options]) == 0
    code = main(["validate", "--input", path, "--contract", "draft.yaml", "--output", "v.pq"])
    assert code == 0, capsys.readouterr().err
    return Path("draft.yaml").read_text()


def census_rows(rows: int = 400, seed: int = 5) -> list[list[str]]:
    """An adult-census-like table as the UCI file spells it: leading spaces, `?` for missing,
    hyphenated names, `>50K`/`<=50K` labels (the rarer one is `>50K`)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rows):
        age = int(rng.integers(17, 91))
        work = str(rng.choice(["Private", "Self-emp-not-inc", "State-gov", "?"]))
        education = int(rng.integers(1, 17))
        sex = str(rng.choice(["Male", "Female"]))
        income = ">50K" if rng.random() < 0.05 * education / 2 else "<=50K"
        out.append([str(age), f" {work}", f" {education}", f" {sex}", f" {income}"])
    return out


CENSUS_NAMES = ["age", "workclass", "education-num", "sex", "income"]


def test_a_census_file_without_header_is_drafted_as_it_is(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first row used to become the names, and `>50K` was 'not binary'."""
    Path("adult.data").write_text("\n".join(",".join(r) for r in census_rows()) + "\n")
    Path("adult.csv").write_bytes(Path("adult.data").read_bytes())

    text = draft_and_validate("adult.csv", capsys, "--names", ",".join(CENSUS_NAMES))
    contract = load_contract("draft.yaml")

    assert contract.names == CENSUS_NAMES
    assert (contract.csv.delimiter, contract.csv.header) == (",", False)
    assert contract.csv.names == tuple(CENSUS_NAMES)
    assert contract.encoding.strip
    assert "?" in contract.encoding.missing_values
    work = contract.column("workclass")
    assert work.nullable and work.checks.allowed == ("Private", "Self-emp-not-inc", "State-gov")
    assert contract.column("education-num").type == "int"
    assert contract.column("sex").checks.allowed == ("Female", "Male")
    income = contract.column("income")
    assert (income.type, income.role, income.positive) == ("bool", "target", ">50K")
    assert "positive class '>50K' (the rarer value" in text
    assert "# review: no header row (--names)" in text


def test_without_names_a_headerless_file_gets_numbered_columns_never_a_data_row(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("adult.csv").write_text("\n".join(",".join(r) for r in census_rows()) + "\n")

    text = draft_and_validate("adult.csv", capsys)

    assert load_contract("draft.yaml").names == [f"column_{i}" for i in range(1, 6)]
    assert "# review: no header row (the first row is data: its field 1 (" in text


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_read_from_the_file(
    delimiter: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [CENSUS_NAMES, *census_rows(60)]
    Path("t.csv").write_text("\n".join(delimiter.join(r) for r in rows) + "\n")

    draft_and_validate("t.csv", capsys)

    contract = load_contract("draft.yaml")
    assert contract.csv.delimiter == delimiter and contract.csv.header
    assert contract.names == CENSUS_NAMES


def test_a_semicolon_file_with_decimal_commas_is_read_by_semicolon_and_comma(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """59,0;w;32,1 splits into as many fields by `,` as by `;`: the header decides."""
    rows = ["Alter;Geschlecht;BMI;Fortschritt"]
    rows += [
        f"{20 + i % 50},0;{'mw'[i % 2]};{18 + i % 20},{i % 10};{100 + i * 3},5" for i in range(60)
    ]
    Path("eu.csv").write_text("\n".join(rows) + "\n")

    draft_and_validate("eu.csv", capsys)

    contract = load_contract("draft.yaml")
    assert (contract.csv.delimiter, contract.encoding.decimal_comma) == (";", True)
    assert contract.column("BMI").type == "float"


def test_a_trailing_delimiter_is_an_empty_column_dropped_with_a_note(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every data row ending in ',' made pandas take the first column for an index."""
    rows = [
        "id,age,plan,churn",
        *(f"c{i},{20 + i},{'ab'[i % 2]},{'YN'[i % 3 > 0]}," for i in range(40)),
    ]
    Path("t.csv").write_text("\n".join(rows) + "\n")

    text = draft_and_validate("t.csv", capsys)

    contract = load_contract("draft.yaml")
    assert contract.names == ["id", "age", "plan", "churn"]
    assert contract.column("age").checks.min == 20 and contract.target == "churn"
    assert "# review: every row ends with ',': an empty last column" in text


def test_duplicate_column_names_are_refused_naming_them(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("t.csv").write_text("age,plan,age,churn\n1,a,2,yes\n3,b,4,no\n")

    assert main(["schema", "infer", "t.csv"]) == 2

    assert capsys.readouterr().err == (
        "error: t.csv: duplicate column names ['age']: every column needs its own name; "
        "rename them in the file\n"
    )


@pytest.mark.parametrize("token", ["?", "NA", "n/a", "-", "null", "None", ""])
def test_missing_tokens_are_found_in_the_data(token: str) -> None:
    frame = pd.DataFrame(
        {
            "visits": ["3", token, "5", "7"] * 2,
            "plan": ["a", "b", token, "a"] * 2,
            "churn": ["yes", "no", "no", "yes"] * 2,
        }
    )

    draft = infer_contract(frame, "t.csv")

    visits, plan = draft.contract.column("visits"), draft.contract.column("plan")
    assert (visits.type, visits.nullable) == ("int", True)
    assert plan.nullable and plan.checks.allowed == ("a", "b")
    if token:
        assert draft.contract.encoding.missing_values[0] == token
        assert f"{token!r} read as missing values" in "\n".join(draft.notes)
    assert validate_frame(frame, draft.contract).passed


def test_whole_numbers_are_ints_even_without_gaps() -> None:
    frame = pd.DataFrame({"n": ["1", "20", "300"], "x": ["1.5", "2", "3"], "y": ["1", "0", "1"]})

    contract = infer_contract(frame, "t.csv").contract

    assert (contract.column("n").type, contract.column("x").type) == ("int", "float")


@pytest.mark.parametrize(
    ("values", "positive"),
    [
        ([">50K", "<=50K", "<=50K", "<=50K"], ">50K"),
        (["good", "bad", "good", "good"], "bad"),
        (["Yes", "No", "No", "No"], "Yes"),
        (["No", "Yes", "Yes", "Yes"], "Yes"),  # a true/false pair keeps its meaning
        (["1", "2", "1", "1"], "2"),
        (["churned", "stayed", "stayed", "churned"], "stayed"),  # a tie: the later in order
    ],
)
def test_a_two_valued_target_of_any_spelling_gets_a_positive_class(
    values: list[str], positive: str
) -> None:
    frame = pd.DataFrame({"x": ["0.5", "1.5", "2.5", "3.5"], "outcome": values})

    contract = infer_contract(frame, "t.csv").contract

    target = contract.column("outcome")
    assert (target.type, target.role, target.positive) == ("bool", "target", positive)
    validated = validate_frame(frame, contract).frame
    assert validated is not None
    assert validated["outcome"].tolist() == [v == positive for v in values]


def test_positive_chooses_the_positive_class() -> None:
    frame = pd.DataFrame({"x": ["0.5", "1.5", "2.5"], "class": ["good", "bad", "good"]})

    contract = infer_contract(frame, "t.csv", choice=TargetChoice(positive="good")).contract

    assert contract.column("class").positive == "good"
    with pytest.raises(SchemaInferError, match="--positive 'fine' is not one of 'class'"):
        infer_contract(frame, "t.csv", choice=TargetChoice(positive="fine"))


def test_a_target_spelt_like_other_bool_tokens_does_not_change_other_columns() -> None:
    """1/2 labels: '1' is the negative class here, while a 0/1 feature stays a count."""
    frame = pd.DataFrame({"kids": ["0", "1", "1", "0", "1"], "target": ["1", "2", "1", "1", "1"]})

    contract = infer_contract(frame, "t.csv").contract

    assert contract.column("kids").type == "int"
    assert not {"1", "1.0", "2"} & set(contract.encoding.true_values[1:])  # '2' alone is true
    validated = validate_frame(frame, contract).frame
    assert validated is not None
    assert validated["target"].tolist() == [False, True, False, False, False]
    assert validated["kids"].tolist() == [0, 1, 1, 0, 1]


def write_with_quirks(frame: pd.DataFrame, path: str, quirk: str) -> None:
    if quirk == "no header, ';'":
        frame.to_csv(path, sep=";", header=False, index=False)
    elif quirk == "trailing comma":
        lines = frame.to_csv(index=False).splitlines()
        Path(path).write_text(lines[0] + "\n" + "".join(f"{line},\n" for line in lines[1:]))
    else:  # tab-separated, values padded with spaces
        padded = frame.astype(str).apply(lambda c: " " + c)
        padded.to_csv(path, sep="\t", index=False)


def bundled(dataset: str) -> pd.DataFrame:
    """A data set scikit-learn ships, as a user would write it: the target last, named
    `target`, in the data's own spelling (class names, a numeric score)."""
    from sklearn import datasets

    if dataset == "diabetes":  # disease progression after a year: a number, 25 to 346
        return datasets.load_diabetes(as_frame=True, scaled=False).frame
    frame = getattr(datasets, f"load_{dataset}")(as_frame=True).frame
    if dataset == "wine":  # three cultivars, spelt as names
        frame["target"] = frame["target"].map(lambda i: f"cultivar_{i}")
    else:
        frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    return frame


# data set → (task, the target's type, its classes or positive class, its range)
BUNDLED = {
    "breast_cancer": ("binary", "bool", "malignant", (None, None)),
    "wine": ("multiclass", "category", ("cultivar_0", "cultivar_1", "cultivar_2"), (None, None)),
    "diabetes": ("regression", "int", None, (20.0, 350.0)),
}


@pytest.mark.parametrize("quirk", ["no header, ';'", "trailing comma", "tab, padded values"])
@pytest.mark.parametrize("dataset", list(BUNDLED))
def test_scikit_learn_data_sets_written_with_quirks_get_their_task_and_pass_their_draft(
    dataset: str, quirk: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = bundled(dataset)
    frame.columns = [str(c).replace("_", "-").replace("mean ", "mean.") for c in frame.columns]
    write_with_quirks(frame, "data.csv", quirk)

    text = draft_and_validate("data.csv", capsys)

    contract = load_contract("draft.yaml")
    assert len(contract.features) == frame.shape[1] - 1
    if quirk != "no header, ';'":
        assert contract.names == list(frame.columns)
    task, kind, spelled, (low, high) = BUNDLED[dataset]
    target = contract.column(contract.target)
    assert (contract.task, target.type) == (task, kind)
    assert spelled in (target.positive, target.classes)
    assert (target.checks.min, target.checks.max) == (low, high)
    assert f"    task: {task}\n" in text
    validated = pd.read_parquet("v.pq")
    assert validated.shape == frame.shape
    np.testing.assert_allclose(validated.iloc[:, 0], frame.iloc[:, 0])  # no column shifted


# --------------------------------------------------------------------------------------------
# The task: detected from the target's values and said why in its note; --task overrides.
# --------------------------------------------------------------------------------------------

SEVEN = ClassMinimum(7, "the split and the cross-validation")


def target_frame(values: list[object]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=len(values)).round(3), "y": values})


@pytest.mark.parametrize(
    ("values", "task", "why"),
    [
        (["a", "b"] * 10, "binary", "two values"),
        ([0, 1] * 10, "binary", "two values"),
        (["low", "mid", "high"] * 7, "multiclass", "text with 3 values"),
        ([3, 1, 2] * 7, "multiclass", "3 distinct whole numbers, each in 7 rows or more"),
        ([1, 2] * 9 + [3] * 6, "regression", "3 distinct whole numbers, '3' in 6 rows (a class"),
        (list(range(11)) * 7, "regression", "11 distinct whole numbers, more than 10"),
        ([0.5, 1.25, 3.0] * 7, "regression", "numbers with decimals"),
    ],
)
def test_the_task_follows_the_targets_values_and_the_note_says_why(
    values: list[object], task: str, why: str
) -> None:
    draft = infer_contract(target_frame(values), "t.csv", choice=TargetChoice(minimum=SEVEN))

    assert draft.contract.task == task
    (note,) = [n for n in draft.columns[-1].notes if n.startswith("the target")]
    assert f"task {task} ({why}" in note
    assert validate_frame(target_frame(values), draft.contract).passed


def test_classes_are_listed_as_spelt_in_a_stable_order() -> None:
    as_ints = infer_contract(target_frame([10, 2, 1] * 7), "t.csv").contract
    as_text = infer_contract(target_frame(["b10", "b2", "a"] * 7), "t.csv").contract

    assert (as_ints.column("y").type, as_ints.classes) == ("int", ("1", "2", "10"))
    assert "    classes: [1, 2, 10]\n" in render(infer_contract(target_frame([10, 2, 1] * 7), "t"))
    assert (as_text.column("y").type, as_text.classes) == ("category", ("a", "b10", "b2"))


@pytest.mark.parametrize(
    ("values", "task", "outcome"),
    [
        ([3, 1, 2] * 7, "regression", "regression"),
        (list(range(12)) * 7, "multiclass", "multiclass"),
        (["low", "mid", "high"] * 7, "binary", "target 'y' has 3 distinct values, not two"),
        (
            ["low", "mid", "high"] * 7,
            "regression",
            "target 'y' reads as category .*; a regression target is float or int",
        ),
        (
            [0.5, 1.5, 2.5] * 7,
            "multiclass",
            "target 'y' reads as float .*; a multiclass target is category or int",
        ),
        (
            ["a", "b"] * 7,
            "multiclass",
            "target 'y' has 2 distinct values; two classes are task binary",
        ),
    ],
)
def test_task_overrides_the_detected_task_or_says_why_it_cannot(
    values: list[object], task: Task, outcome: str
) -> None:
    choice = TargetChoice(task=task, minimum=SEVEN)
    if outcome in ("binary", "multiclass", "regression"):
        assert infer_contract(target_frame(values), "t.csv", choice=choice).contract.task == task
    else:
        with pytest.raises(SchemaInferError, match=outcome):
            infer_contract(target_frame(values), "t.csv", choice=choice)


def test_positive_is_refused_for_a_target_that_is_not_binary() -> None:
    choice = TargetChoice(positive="high", minimum=SEVEN)

    with pytest.raises(SchemaInferError, match="--positive is for a binary target; 'y' is task"):
        infer_contract(target_frame(["low", "mid", "high"] * 7), "t.csv", choice=choice)


def test_rare_classes_are_refused_naming_them_the_rows_needed_and_the_choices(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """params.yaml holds split.test_fraction 0.2 and evaluate.cv_folds 5: a class needs 7 rows
    (1 in the test set, 5 folds' worth in the 80 % left for training, rounded up)."""
    species = ["setosa"] * 30 + ["versicolor"] * 30 + ["virginica"] * 6 + ["hybrid"]
    target_frame(species).to_csv("iris.csv", index=False)

    code = main(["schema", "infer", "iris.csv", "--output", "schema.yaml"])

    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: target 'y' has 2 class(es) with fewer than 7 rows")
    assert "'hybrid' (1 row), 'virginica' (6 rows)" in err
    assert (
        "each class needs 7 so that the test set (split.test_fraction 0.2) gets one and the "
        "training set keeps 5 for the 5-fold cross-validation (evaluate.cv_folds)"
    ) in err
    assert "merge them into another class, drop their rows, or bring more data" in err
    assert not Path("schema.yaml").exists()


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_the_task_fixtures_files_are_drafted_as_their_hand_written_contracts(
    task: Task, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = task_fixture(task)

    draft_and_validate(str(fixture.data_path), capsys)

    drafted, written = load_contract("draft.yaml"), fixture.contract
    assert (drafted.target, drafted.task, drafted.classes) == (
        written.target,
        written.task,
        written.classes,
    )
    assert (drafted.id_column, drafted.feature_names) == (written.id_column, written.feature_names)


def test_the_draft_is_byte_identical_run_after_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("adult.csv").write_text("\n".join(";".join(r) for r in census_rows()) + "\n")

    drafts = set()
    for _ in range(2):
        assert main(["schema", "infer", "adult.csv", "--output", "d.yaml", "--force"]) == 0
        drafts.add(Path("d.yaml").read_text())

    assert len(drafts) == 1


@st.composite
def laid_out_files(draw: st.DrawFn) -> tuple[str, pd.DataFrame, dict[str, object]]:
    """A small table written in any of the layouts real files come in, with what was used."""
    rows = draw(st.integers(4, 30))
    columns = {
        "amount": draw(st.lists(st.integers(-500, 500).map(str), min_size=rows, max_size=rows)),
        "plan": draw(
            st.lists(st.sampled_from(["basic", "plus", "pro"]), min_size=rows, max_size=rows)
        ),
        "score": draw(st.lists(CELLS["float"].map(str), min_size=rows, max_size=rows)),
        "churn": draw(st.lists(st.sampled_from(["yes", "no"]), min_size=rows, max_size=rows)),
    }
    frame = pd.DataFrame(columns)
    layout = {
        "delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
        "header": draw(st.booleans()),
        "trailing": draw(st.booleans()),
    }
    text = frame.to_csv(sep=layout["delimiter"], header=layout["header"], index=False)
    end = layout["delimiter"] if layout["trailing"] else ""
    return "".join(f"{line}{end}\n" for line in text.splitlines()), frame, layout


@settings(max_examples=25, deadline=None)
@given(case=laid_out_files())
def test_any_layout_is_read_back_column_for_column(
    case: tuple[str, pd.DataFrame, dict[str, object]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    text, frame, layout = case
    path = tmp_path_factory.mktemp("layout") / "data.csv"
    path.write_text(text)
    names = None if layout["header"] else list(frame.columns)

    sniffed = sniff_layout(read_sample(str(path)), names)
    read = gio.read_table(path, raw_text=True, layout=sniffed.csv)

    assert (sniffed.csv.delimiter, sniffed.csv.header) == (layout["delimiter"], layout["header"])
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)
