"""The Open Inference Protocol's rules as fast unit tests: each broken rule of a V2 request is
a 400 whose message names the input, the row and the rule (no server, no sockets)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from project_fixtures import CONTRACT_PATH
from serving_support import v2_body

from gitops_ml.contract import Contract, load_contract
from gitops_ml.v2_request import example_rows, records
from serving.records import parse_records
from serving.v2 import parse_infer_request
from serving.validation import RequestError, request_table


def _v2_error_cases(contract: Contract, rows: list[dict[str, Any]]) -> list[tuple[str, Any, str]]:
    """(case, body, expected words in the error): each breaks one rule of the protocol."""
    good = v2_body(rows[:3], contract)

    def edit(change: Any) -> Any:
        body = copy.deepcopy(good)
        change(body)
        return body

    def tensor(body: Any, name: str) -> dict[str, Any]:
        return next(t for t in body["inputs"] if t["name"] == name)

    return [
        ("not an object", [1, 2], "JSON object with an 'inputs' array"),
        ("no inputs", {"inputs": []}, "non-empty array"),
        (
            "missing feature",
            edit(lambda b: b["inputs"].remove(tensor(b, "tenure_months"))),
            "missing input(s) for contract feature(s): tenure_months",
        ),
        (
            "extra feature",
            edit(lambda b: b["inputs"].append(dict(b["inputs"][0], name="shoe_size"))),
            "input 'shoe_size' is not a feature (or the id) of the data contract",
        ),
        (
            "duplicate feature",
            edit(lambda b: b["inputs"].append(copy.deepcopy(b["inputs"][0]))),
            "given more than once",
        ),
        (
            "wrong datatype",
            edit(lambda b: tensor(b, "tenure_months").update(datatype="BYTES")),
            "datatype 'BYTES' does not fit contract type int; use INT64 or INT32",
        ),
        (
            "wrong value type",
            edit(lambda b: tensor(b, "monthly_charges")["data"].__setitem__(1, "cheap")),
            "input 'monthly_charges': row 1 is \"cheap\"",
        ),
        (
            "fractional int",
            edit(lambda b: tensor(b, "support_calls")["data"].__setitem__(0, 1.5)),
            "input 'support_calls': row 0 is 1.5, not a whole number; feature 'support_calls'",
        ),
        (
            "number for a bool",
            edit(lambda b: tensor(b, "senior_citizen")["data"].__setitem__(2, 2)),
            "input 'senior_citizen': row 2 is 2, a number other than 0 or 1; feature "
            "'senior_citizen' has contract type bool and takes true/false, 0/1 or the "
            "contract's true/false tokens",
        ),
        (
            "number for a category",
            edit(lambda b: tensor(b, "plan")["data"].__setitem__(0, 3)),
            "feature 'plan' is a category and takes strings",
        ),
        (
            "null where not nullable",
            edit(lambda b: tensor(b, "age")["data"].__setitem__(0, None)),
            "input 'age': row 0 missing (null or NaN); feature 'age' is not nullable",
        ),
        (
            "empty category where not nullable",
            edit(lambda b: tensor(b, "region")["data"].__setitem__(1, "")),
            "feature 'region' is not nullable",
        ),
        (
            "below the contract minimum",
            edit(lambda b: tensor(b, "monthly_charges")["data"].__setitem__(2, -5.0)),
            "below the contract minimum 0 of feature 'monthly_charges'",
        ),
        (
            "above the contract maximum",
            edit(lambda b: tensor(b, "tenure_months")["data"].__setitem__(0, 121)),
            "above the contract maximum 120 of feature 'tenure_months'",
        ),
        (
            "wrong shape rank",
            edit(lambda b: tensor(b, "age").update(shape=[3])),
            "input 'age': shape must be [N, 1], got [3]",
        ),
        (
            "shape disagrees with data",
            edit(lambda b: tensor(b, "age").update(shape=[4, 1])),
            "shape [4, 1] says 4 rows but 'data' has 3 values",
        ),
        (
            "row counts differ",
            edit(lambda b: tensor(b, "age").update(shape=[2, 1], data=[30, 40])),
            "all inputs must have the same number of rows",
        ),
        (
            "unknown output",
            edit(lambda b: b.update(outputs=[{"name": "logits"}])),
            "unknown output 'logits'",
        ),
        (
            "binary tensor extension",
            edit(lambda b: b.update(parameters={"binary_data_output": True})),
            "binary tensor extension is not supported",
        ),
    ]


def test_a_valid_request_parses_into_one_feed_per_feature(contract: Contract) -> None:
    rows = records(example_rows(contract, 3), contract)

    parsed = parse_infer_request(v2_body(rows, contract), request_table(contract), 10)

    assert sorted(parsed.feeds) == sorted(contract.feature_names)
    assert all(feed.shape == (3, 1) for feed in parsed.feeds.values())
    assert parsed.ids == ["example-1", "example-2", "example-3"]


CONTRACT = load_contract(CONTRACT_PATH)
CASES = _v2_error_cases(CONTRACT, records(example_rows(CONTRACT, 3), CONTRACT))


@pytest.mark.parametrize(("case", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_broken_rule_is_a_400_naming_field_and_rule(
    case: str, body: Any, expected: str
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_infer_request(body, request_table(CONTRACT), 10)

    assert caught.value.status == 400, case
    assert expected in caught.value.message, (case, caught.value.message)


def test_an_error_never_echoes_a_hostile_name_whole() -> None:
    """A megabyte of tensor name, output name or record keys comes back as a few dozen
    characters: the error names what is wrong, it does not return the body."""
    rows = records(example_rows(CONTRACT, 2), CONTRACT)
    long_input = v2_body(rows, CONTRACT)
    long_input["inputs"][0]["name"] = "x" * 1_000_000
    long_output = dict(v2_body(rows, CONTRACT), outputs=[{"name": "y" * 1_000_000}])
    table = request_table(CONTRACT)

    for body, start in (
        (long_input, "input 'xxxxxxxx"),
        (long_output, "outputs[0]: unknown output 'yyyyyyyy"),
    ):
        with pytest.raises(RequestError) as caught:
            parse_infer_request(body, table, 10)
        assert caught.value.message.startswith(start) and "...'" in caught.value.message
        assert len(caught.value.message) < 1_000

    many_keys = [dict(rows[0], **{f"k{i:05d}": 1 for i in range(50_000)})]
    with pytest.raises(RequestError) as caught:
        parse_records(many_keys, table, 10)
    assert "unknown field(s) 'k00000', 'k00001', 'k00002', 'k00003', 'k00004' and 49995 more" in (
        caught.value.message
    )
