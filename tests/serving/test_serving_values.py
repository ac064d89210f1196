"""One reading of raw values (issue 15): serving accepts what the contract's coercion accepts,
takes the id column beside the features and echoes it, and says `probability`, not a domain
word. Pure request logic, in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from serving_support import capture_log, captured_lines, fork_contract, ship

from gitops_ml.contract import Contract
from gitops_ml.pipeline.examples import render
from gitops_ml.v2_request import example_payloads, v2_request
from serving import validation
from serving.outputs import OUTPUTS, Prediction
from serving.records import parse_records, predict_response
from serving.v2 import infer_response, parse_infer_request
from serving.validation import FeatureTable, RequestError, request_table


@pytest.fixture(scope="module")
def fork() -> Contract:
    return fork_contract()


def _record(**changes: Any) -> dict[str, Any]:
    record = {
        "SeniorCitizen": False,
        "Partner": True,
        "TotalCharges": 29.85,
        "tenure": 1,
        "Contract": "Month-to-month",
    }
    return {**record, **changes}


def test_bools_take_json_booleans_zero_one_and_the_contract_tokens(fork: Contract) -> None:
    table = request_table(fork)
    body = [
        _record(SeniorCitizen=0, Partner="Yes"),
        _record(SeniorCitizen=1, Partner="No"),
        _record(SeniorCitizen=True, Partner=" "),
        _record(SeniorCitizen="yes", Partner=None),
    ]

    parsed = parse_records(body, table, 10)

    assert parsed.feeds["SeniorCitizen"].ravel().tolist() == [0.0, 1.0, 1.0, 1.0]
    partner = parsed.feeds["Partner"].ravel()
    assert partner[:2].tolist() == [1.0, 0.0] and np.isnan(partner[2:]).all()


def test_missing_tokens_and_numeric_text_read_as_the_pipeline_reads_them(fork: Contract) -> None:
    table = request_table(fork)
    body = [
        _record(TotalCharges=" ", Contract=" "),
        _record(TotalCharges="29.85", tenure="34"),
    ]

    parsed = parse_records(body, table, 10)

    charges = parsed.feeds["TotalCharges"].ravel()
    assert np.isnan(charges[0]) and charges[1] == np.float32(29.85)
    assert parsed.feeds["tenure"].ravel().tolist() == [1.0, 34.0]
    assert parsed.feeds["Contract"].ravel().tolist() == ["", "Month-to-month"]


def test_plain_json_numbers_skip_the_per_value_coercion_and_read_the_same(
    fork: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path of a 100-row request: a JSON number of the column's own type (float or
    int for float, int for int, true/false for bool) is read inline; only other shapes (an
    integral float for an int, 0/1 or tokens for a bool, text) pay the coercion call."""
    table = request_table(fork)
    coerced: list[Any] = []
    original = validation.coerce_value

    def counting(value: Any, *args: Any) -> Any:
        coerced.append(value)
        return original(value, *args)

    monkeypatch.setattr(validation, "coerce_value", counting)
    plain = [_record(SeniorCitizen=True, TotalCharges=3, tenure=7) for _ in range(50)]
    plain.append(_record(SeniorCitizen=False, TotalCharges=float("nan"), tenure=0))

    parsed = parse_records(plain, table, 100)

    assert coerced == []
    assert parsed.feeds["tenure"].ravel().tolist() == [7.0] * 50 + [0.0]
    assert np.isnan(parsed.feeds["TotalCharges"].ravel()[-1])
    other = [_record(SeniorCitizen=1, TotalCharges="2.5", tenure=7.0)]
    parsed = parse_records(other, table, 10)
    assert coerced == [1, "2.5", 7.0]
    assert [parsed.feeds[n].item() for n in ("SeniorCitizen", "TotalCharges", "tenure")] == [
        1.0,
        2.5,
        7.0,
    ]


def test_a_value_the_coercion_rejects_is_a_422_that_says_why(fork: Contract) -> None:
    table = request_table(fork)
    for change, expected in (
        ({"SeniorCitizen": "maybe"}, "field 'SeniorCitizen': row 0 is \"maybe\", not true/false"),
        ({"SeniorCitizen": 2}, "field 'SeniorCitizen': row 0 is 2, a number other than 0 or 1"),
        ({"tenure": "ten"}, "field 'tenure': row 0 is \"ten\", text that is not a number"),
        ({"SeniorCitizen": " "}, "field 'SeniorCitizen': row 0 missing"),
    ):
        with pytest.raises(RequestError) as caught:
            parse_records([_record(**change)], table, 10)
        assert caught.value.status == 422
        assert caught.value.message.startswith(expected), caught.value.message


def test_ids_are_accepted_echoed_per_prediction_and_never_fed_to_the_model(
    fork: Contract,
) -> None:
    table = request_table(fork)
    ident = table.ident
    body = [_record(customerID="7590-VHVEG"), _record(customerID=5575)]

    parsed = parse_records(body, table, 10)
    answer = Prediction(labels=np.array([0, 1]), probabilities=np.array([[0.8, 0.2], [0.3, 0.7]]))
    response = predict_response("m", "1", answer, OUTPUTS["binary"], parsed, ident)

    assert "customerID" not in parsed.feeds
    assert response["predictions"] == [
        {"customerID": "7590-VHVEG", "label": 0, "probability": 0.2},
        {"customerID": 5575, "label": 1, "probability": 0.7},
    ]
    without = parse_records([_record()], table, 10)
    assert without.ids is None
    with pytest.raises(RequestError, match=r"unknown field\(s\) 'customerID'"):
        parse_records([_record(customerID="x")], FeatureTable(table.specs), 10)
    with pytest.raises(RequestError, match="the id column 'customerID' takes strings or integers"):
        parse_records([_record(customerID=1.5)], table, 10)


def test_a_v2_id_input_is_echoed_as_an_output_tensor(fork: Contract) -> None:
    table = request_table(fork)
    ident = table.ident
    assert ident is not None
    inputs = v2_request(pd.DataFrame([_record(customerID="7590-VHVEG")]), fork)["inputs"]

    answer = Prediction(labels=np.array([1]), probabilities=np.array([[0.25, 0.75]]))
    parsed = parse_infer_request({"inputs": inputs}, table, 10)
    response = infer_response("m", "1", answer, OUTPUTS["binary"], parsed, ident)

    assert [t["name"] for t in response["outputs"]] == ["label", "probabilities", "customerID"]
    assert response["outputs"][2] == {
        "name": "customerID",
        "datatype": "BYTES",
        "shape": [1],
        "data": ["7590-VHVEG"],
    }
    only = parse_infer_request(
        {"inputs": inputs, "outputs": [{"name": "probabilities"}]}, table, 10
    )
    response = infer_response("m", "1", answer, OUTPUTS["binary"], only, ident)
    assert [t["name"] for t in response["outputs"]] == ["probabilities"]


def test_capture_ships_the_id_of_each_row(tmp_path: Path) -> None:
    log = capture_log(tmp_path)
    log.start()

    row = {"age": 1, "plan": "basic", "charges": 1.5}
    with_ids = json.dumps([{"id": "a", **row}, {"id": "b", **row}]).encode()
    log.record("r1", "predict", with_ids, {"label": [0, 1], "score": [0.2, 0.7]})
    log.record("r2", "predict", json.dumps([row]).encode(), {"label": [0], "score": [0.1]})
    log.close()
    ship(log)

    lines = captured_lines(tmp_path / "store")
    assert [line.get("id") for line in lines] == ["a", "b", None]
    assert "id" not in lines[2]


def test_example_payloads_come_from_the_contract_and_are_accepted(
    contract: Contract, fork: Contract
) -> None:
    for each in (contract, fork):
        payloads = example_payloads(each)
        table = request_table(each)
        predict = json.loads(render(payloads["predict.json"]))
        infer = json.loads(render(payloads["infer_v2.json"]))
        assert parse_records(predict, table, 10).rows == 2
        assert parse_infer_request(infer, table, 10).ids == ["example-1", "example-2"]
