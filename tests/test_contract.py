"""The data contract: each column once, with errors that name the file and the column, written
back as it was read."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gitops_ml.contract import ContractError, contract_to_dict, parse_contract

RAW: dict[str, Any] = {
    "name": "accounts",
    "columns": [
        {"name": "account id", "type": "category", "role": "id"},
        {"name": "opened", "type": "datetime", "role": "timestamp"},
        {"name": "balance-eur", "type": "float", "nullable": True, "checks": {"min": 0}},
        {"name": "plan", "type": "category", "checks": {"allowed": ["a", "b"]}, "slice": True},
        {"name": "active", "type": "bool"},
        {"name": "closed", "type": "bool", "role": "target", "positive": "yes"},
    ],
}


def _with(edit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    edit(raw)
    return raw


def test_roles_give_the_features_target_timestamp_and_slices() -> None:
    contract = parse_contract(RAW, "schema.yaml")

    assert contract.feature_names == ["balance-eur", "plan", "active"]
    assert contract.target == "closed" and contract.timestamp == "opened"
    assert [c.name for c in contract.slices] == ["plan"]


def test_a_contract_is_written_back_as_it_was_read() -> None:
    contract = parse_contract(RAW, "schema.yaml")

    assert parse_contract(contract_to_dict(contract), "again.yaml") == contract


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["columns"].append(dict(r["columns"][2])),
            "column 'balance-eur' is declared twice",
        ),
        (
            lambda r: r["columns"][2].update(type="decimal"),
            "column 'balance-eur' has type 'decimal'",
        ),
        (lambda r: r["columns"][3].update(role="label"), "column 'plan' has role 'label'"),
        (lambda r: r["columns"][2].update(positive="yes"), "are for the target column only"),
        (lambda r: r["columns"][1].update(role="feature"), "feature 'opened' is a datetime"),
        (lambda r: r.update(columns=[r["columns"][5]]), "declares no feature columns"),
        (lambda r: r.update(columns="none"), "expected a mapping with a 'columns' list"),
    ],
)
def test_a_contract_that_cannot_hold_is_refused_naming_the_file_and_column(
    edit: Any, message: str
) -> None:
    with pytest.raises(ContractError, match=rf"^schema\.yaml: .*{message}"):
        parse_contract(_with(edit), "schema.yaml")


def test_the_csv_encoding_is_one_python_knows_and_survives_a_round_trip() -> None:
    raw: dict[str, Any] = {
        "csv": {"delimiter": ";", "encoding": "cp1252"},
        "columns": [
            {"name": "city", "type": "category"},
            {"name": "y", "type": "bool", "role": "target"},
        ],
    }

    contract = parse_contract(raw)

    assert contract.csv.encoding == "cp1252"
    assert contract_to_dict(contract)["csv"] == {
        "delimiter": ";",
        "header": True,
        "encoding": "cp1252",
    }
    assert parse_contract(contract_to_dict(contract)) == contract
    raw["csv"]["encoding"] = "windows-1252x"
    with pytest.raises(
        ContractError, match=r"'csv.encoding' 'windows-1252x' is not a text encoding"
    ):
        parse_contract(raw)


def test_a_saved_row_index_is_declared_only_for_a_file_with_a_header() -> None:
    raw: dict[str, Any] = {
        "csv": {"index": True},
        "columns": [
            {"name": "a", "type": "float"},
            {"name": "y", "type": "bool", "role": "target"},
        ],
    }

    contract = parse_contract(raw)

    assert contract.csv.index and contract_to_dict(contract)["csv"]["index"] is True
    raw["csv"] = {"index": True, "header": False, "names": ["a", "y"]}
    with pytest.raises(ContractError, match=r"'csv.index' must be true or false, true only with"):
        parse_contract(raw)


def test_an_int_columns_bounds_are_written_as_integers_unless_they_are_fractions() -> None:
    contract = parse_contract(
        {
            "columns": [
                {"name": "visits", "type": "int", "checks": {"min": 0, "max": 9.5}},
                {"name": "y", "type": "bool", "role": "target", "task": "binary"},
            ]
        }
    )

    (visits, _) = contract_to_dict(contract)["columns"]

    assert visits["checks"] == {"min": 0, "max": 9.5}
    assert type(visits["checks"]["min"]) is int
    assert parse_contract(contract_to_dict(contract)) == contract
