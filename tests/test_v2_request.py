"""The one request builder (gitops_ml.v2_request): raw rows as users write them become the JSON
the server takes, through the contract's own encoding."""

from __future__ import annotations

import pandas as pd
import pytest
from serving_support import fork_contract

from gitops_ml.contract import Contract, contract_to_dict, parse_contract
from gitops_ml.v2_request import example_payloads, example_rows, records, v2_request
from serving.records import parse_request
from serving.validation import dump_json, request_table


@pytest.fixture(scope="module")
def yes_no_contract() -> Contract:
    return fork_contract()


def test_raw_cells_are_read_through_the_contract_encoding(yes_no_contract: Contract) -> None:
    frame = pd.DataFrame(
        {
            "customerID": ["7590-VHVEG", "5575-GNVDE"],
            "SeniorCitizen": [0, 1],
            "Partner": ["Yes", "No"],
            "TotalCharges": ["29.85", " "],
            "tenure": [1, 34],
            "Contract": ["One year", "Two year"],
            "Churn": ["No", "Yes"],
        }
    )

    assert records(frame, yes_no_contract) == [
        {
            "customerID": "7590-VHVEG",
            "SeniorCitizen": False,
            "Partner": True,
            "TotalCharges": 29.85,
            "tenure": 1,
            "Contract": "One year",
        },
        {
            "customerID": "5575-GNVDE",
            "SeniorCitizen": True,
            "Partner": False,
            "TotalCharges": None,
            "tenure": 34,
            "Contract": "Two year",
        },
    ]
    request = v2_request(frame, yes_no_contract, request_id="smoke")
    assert request["id"] == "smoke"
    assert [(t["name"], t["datatype"]) for t in request["inputs"]] == [
        ("customerID", "BYTES"),
        ("SeniorCitizen", "BOOL"),
        ("Partner", "BOOL"),
        ("TotalCharges", "FP32"),
        ("tenure", "INT64"),
        ("Contract", "BYTES"),
    ]
    assert all(t["shape"] == [2, 1] for t in request["inputs"])


def test_example_rows_come_from_the_contract_alone_and_stay_inside_it(
    contract: Contract, yes_no_contract: Contract
) -> None:
    for each in (contract, yes_no_contract):
        rows = example_rows(each, rows=3)
        for column in each.features:
            values = [v for v in rows[column.name] if v is not None and v == v]
            if column.checks.allowed is not None:
                assert set(values) <= set(column.checks.allowed), column.name
            if column.checks.min is not None:
                assert min(values) >= column.checks.min, column.name
            if column.checks.max is not None:
                assert max(values) <= column.checks.max, column.name
            assert len(values) == (2 if column.nullable else 3), column.name
    assert example_rows(yes_no_contract)["customerID"] == ["example-1", "example-2"]


def test_example_rows_fit_a_contract_of_short_codes() -> None:
    """Text of a category with no allowed values, and the ids, within `checks.max_length`."""
    short = parse_contract(
        {
            "name": "codes",
            "columns": [
                {"name": "id", "type": "category", "role": "id", "checks": {"max_length": 1}},
                {"name": "zip", "type": "category", "checks": {"max_length": 5}},
                {"name": "unit", "type": "category", "checks": {"max_length": 1}},
                {"name": "y", "type": "bool", "role": "target"},
            ],
        }
    )
    rows = example_rows(short)
    assert rows == {"id": ["1", "2"], "zip": ["x", "x"], "unit": ["x", "x"]}
    for name, body in example_payloads(short).items():
        api = "predict" if name.startswith("predict") else "v2"
        assert parse_request(api, dump_json(body), request_table(short), 10).rows == 2


def test_ids_travel_as_text_whatever_the_id_columns_type(yes_no_contract: Contract) -> None:
    raw = contract_to_dict(yes_no_contract)
    raw["columns"][0]["type"] = "int"
    int_ids = parse_contract(raw)
    frame = pd.DataFrame(example_rows(int_ids, rows=3))
    examples = v2_request(frame, int_ids)
    frame["customerID"] = [7590.0, float("nan"), 12.0]  # an int column with a gap, as read

    request = v2_request(frame, int_ids)

    assert examples["inputs"][0]["data"] == ["example-1", "example-2", "example-3"]
    assert request["inputs"][0] == {
        "name": "customerID",
        "datatype": "BYTES",
        "shape": [3, 1],
        "data": ["7590", None, "12"],
    }
