"""`gitops-ml schema infer`: a drafted contract loads, guesses types and roles the way a person
would, and the data it was drafted from passes `validate` against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops_ml.cli import main
from gitops_ml.contract import Contract, load_contract, parse_contract
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.schema_infer import SchemaInferError, _nice_bounds, infer_contract, render
from gitops_ml.synthetic import generate_churn


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return generate_churn(3000, seed=13)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
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


def test_target_is_the_name_hinted_binary_column_else_the_last_one() -> None:
    frame = pd.DataFrame(
        {"label": [1, 0, 1, 0], "x": [1.5, 2.5, 3.5, 4.5], "active": [True, False, False, True]}
    )

    assert infer_contract(frame, "f.csv").contract.target == "label"
    renamed = frame.rename(columns={"label": "flag"})
    assert infer_contract(renamed, "f.csv").contract.target == "active"
    assert infer_contract(frame, "f.csv", target="active").contract.target == "active"


def test_draft_needs_a_feature_besides_target_id_and_timestamp() -> None:
    frame = pd.DataFrame({"when": ["2020-01-01", "2020-01-02"], "y": [True, False]})

    with pytest.raises(SchemaInferError, match="no feature columns left"):
        infer_contract(frame, "f.csv")


def test_target_must_be_binary() -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5, 3.5], "segment": ["a", "b", "c"]})

    with pytest.raises(SchemaInferError, match="no binary column to use as the target"):
        infer_contract(frame, "f.csv")
    with pytest.raises(SchemaInferError, match="--target 'segment' is category, not binary"):
        infer_contract(frame.assign(flag=[True, False, True]), "f.csv", target="segment")


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
    assert _nice_bounds(low, high, integer) == expected


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
