"""Serving pieces in-process: the prediction log never blocks or raises, and request
validation answers any JSON value with either feeds or a RequestError."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from serving_support import capture_body, capture_log, captured_lines, ship

from gitops_ml.contract import Contract
from gitops_ml.value_coercion import ValueRejected, coerce_value
from serving.metrics import ScoreHistogram
from serving.model import default_model_name
from serving.records import parse_records
from serving.v2 import parse_infer_request
from serving.validation import FeatureSpec, RequestError, id_values, request_table


def _record(contract: Contract) -> dict[str, Any]:
    """A valid record: each feature at its contract minimum or first allowed value."""
    record: dict[str, Any] = {}
    for c in contract.features:
        if c.type == "category":
            record[c.name] = c.checks.allowed[0] if c.checks.allowed else "x"
        elif c.type == "bool":
            record[c.name] = True
        else:
            low = c.checks.min or 0
            record[c.name] = int(low) if c.type == "int" else float(low)
    return record


def test_capture_drops_and_counts_rows_when_the_queue_is_full(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = capture_log(tmp_path, max_queue=2, on_dropped=dropped.append)

    predicted = {"label": np.zeros(5, dtype=np.int64), "score": np.full(5, 0.25)}
    log.record("r1", "predict", capture_body(range(5)), predicted)  # writer not started

    assert log.pending == 2 and sum(dropped) == 3


def test_capture_ships_sampled_rows_in_the_drift_format(tmp_path: Path) -> None:
    log = capture_log(tmp_path, 0.5, "churn-model", "1.0.0", seed=3)
    log.start()
    rows = 400
    body = [
        {"age": 30, "plan": "basic", "charges": None if i % 2 else float("nan")}
        for i in range(rows)
    ]
    predicted = {"label": np.ones(rows, dtype=np.int64), "score": np.full(rows, 0.75)}

    log.record("req-1", "predict", json.dumps(body).encode(), predicted)
    log.close()
    ship(log)

    lines = captured_lines(tmp_path / "store")
    assert 150 < len(lines) < 250, "about half the rows are sampled"
    assert {line["features"]["charges"] for line in lines} == {None}, "null and NaN: missing"
    assert lines[0]["features"] == {"age": 30, "plan": "basic", "charges": None}
    assert lines[0]["prediction"] == {"label": 1, "score": 0.75}
    assert lines[0]["request_id"] == "req-1" and lines[0]["model_version"] == "1.0.0"


def test_score_histogram_puts_a_score_equal_to_a_bound_in_that_bucket() -> None:
    small = ScoreHistogram("s", "doc", [0.5, 1.0])
    large = ScoreHistogram("s", "doc", [0.5, 1.0])
    scores = np.array([0.5, 0.2, 0.7, 1.0] * 3, dtype=np.float32)

    small.observe_many(scores[:4])
    large.observe_many(scores)

    assert small.counts.tolist() == [2, 2, 0]
    assert large.counts.tolist() == [6, 6, 0]
    assert math.isclose(large.total, 3 * float(scores[:4].astype(np.float64).sum()))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(name=st.integers(min_value=0, max_value=16), value=json_values)
def test_any_json_value_in_any_field_gives_feeds_or_a_request_error(
    contract: Contract, name: int, value: Any
) -> None:
    table = request_table(contract)
    record = _record(contract)
    record[table.specs[name].name] = value
    tensors = [
        {"name": k, "datatype": s.datatypes[0], "shape": [1, 1], "data": [record[k]]}
        for k, s in zip(record, table.specs, strict=True)
    ]
    for parse, body in ((parse_records, [record]), (parse_infer_request, {"inputs": tensors})):
        try:
            parsed = parse(body, table, 10)
        except RequestError as exc:
            assert exc.status in (400, 413, 422) and exc.message
        else:
            assert all(feed.shape == (1, 1) for feed in parsed.feeds.values())
            assert len(parsed.feeds) == len(table.specs)


KNOWN = "<the column's value in a valid record>"
column_values = st.lists(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", " ", "x", "Yes", "no", "3.5", "\x00", KNOWN, KNOWN])
    | st.lists(st.integers(), max_size=1),
    min_size=1,
    max_size=40,
)


def _contract_reading(spec: FeatureSpec, values: list[Any]) -> list[float] | None:
    """A numeric column as the contract's coercion reads it, or None when it refuses a value,
    a missing value of a non-nullable feature or a value outside the bounds."""
    low, high = spec.bounds
    read = []
    for value in values:
        try:
            number = coerce_value(value, spec.type, spec.encoding)
        except ValueRejected:
            return None
        if number is None or math.isnan(number):
            if not spec.nullable:
                return None
            number = math.nan
        elif not low <= number <= high:
            return None
        read.append(number)
    return read


@settings(max_examples=600, deadline=None)
@given(name=st.integers(min_value=0, max_value=16), values=column_values)
def test_a_numeric_column_reads_as_the_contracts_coercion_or_is_refused_naming_it(
    contract: Contract, name: int, values: list[Any]
) -> None:
    """Whatever the row count and value shapes, a numeric feed holds exactly what the one
    reader of raw values (`coerce_value`) makes of each value within the contract's rules,
    and anything else is a 400 naming the feature."""
    table = request_table(contract)
    spec = table.specs[name]
    assume(spec.type != "category")
    record = _record(contract)
    values = [record[spec.name] if v == KNOWN else v for v in values]
    columns = {s.name: [record[s.name]] * len(values) for s in table.specs}
    columns[spec.name] = values
    expected = _contract_reading(spec, values)

    try:
        parsed = table.build(columns, len(values), "input")
    except RequestError as exc:
        assert expected is None, exc.message
        assert exc.message.startswith(f"input {spec.name!r}") and exc.status == 400
        return
    assert expected is not None
    feed = parsed.feeds[spec.input_name].ravel()
    assert feed.tolist() == pytest.approx(np.float32(expected).tolist(), nan_ok=True)


def _one_row_tensors(contract: Contract, **changes: Any) -> dict[str, Any]:
    table = request_table(contract)
    record = {**_record(contract), **changes}
    return {
        "inputs": [
            {"name": s.name, "datatype": s.datatypes[0], "shape": [1, 1], "data": [record[s.name]]}
            for s in table.specs
        ]
    }


def test_category_feeds_are_object_arrays_so_one_long_value_costs_only_its_own_length(
    contract: Contract,
) -> None:
    table = request_table(contract)
    many = [_record(contract) for _ in range(1000)]
    many[0]["plan"] = "p" * 256  # the longest value the default max_length admits

    parsed = parse_records(many, table, 1000)

    assert parsed.feeds["plan"].dtype == object and parsed.feeds["plan"].shape == (1000, 1)
    assert parsed.feeds["region"].nbytes == 1000 * np.dtype(object).itemsize


def test_a_category_value_over_max_length_is_refused_naming_input_row_and_limit(
    contract: Contract,
) -> None:
    table = request_table(contract)
    with pytest.raises(RequestError) as caught:
        parse_infer_request(_one_row_tensors(contract, plan="x" * 257), table, 10)

    assert caught.value.status == 400
    assert caught.value.message == (
        "input 'plan': row 0 has 257 characters; feature 'plan' takes at most 256 "
        "(the contract's checks.max_length)"
    )


def test_control_characters_in_a_category_are_refused_not_scored_like_empty(
    contract: Contract,
) -> None:
    table = request_table(contract)
    for text in ("\x00", "basic\x00", "north\x0b", "\x1b[31m", "\x7f"):
        with pytest.raises(RequestError) as caught:
            parse_records([{**_record(contract), "plan": text}], table, 10)
        assert caught.value.status == 422
        assert "field 'plan': row 0 contains the control character U+00" in caught.value.message


def test_free_text_with_tabs_and_line_breaks_is_scored_as_the_training_data_holds_it(
    contract: Contract,
) -> None:
    """A CSV's quoted field keeps its line breaks: the same text from a client is the value
    the model was trained on, unknown or allowed."""
    table = request_table(contract)
    texts = ["fruity, bold\nlong finish", "a\tb", "line\r\nbreak"]
    records = [{**_record(contract), "plan": text} for text in texts]

    parsed = parse_records(records, table, 10)

    plan = next(spec for spec in table.specs if spec.name == "plan")
    assert parsed.feeds[plan.input_name].ravel().tolist() == texts


def test_a_bare_model_is_named_after_the_projects_contract(tmp_path: Path) -> None:
    assert default_model_name(tmp_path) == "model", "no data contract: a neutral name"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "schema.yaml").write_text("name: fraud-model\ncolumns: []\n")

    assert default_model_name(tmp_path) == "fraud-model"


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.text(max_size=8)
        | st.integers()
        | st.none()
        | st.sampled_from(["a\x00b", "\ud800", "x" * 300, 1.5]),
        min_size=1,
        max_size=20,
    )
)
def test_ids_are_text_or_integers_refused_when_text_could_not_reach_the_log_intact(
    contract: Contract, values: list[Any]
) -> None:
    """A column of ids is accepted exactly when every id is null, an integer or printable
    UTF-8 text within the column's max_length; else the error names the first bad row."""
    ident = request_table(contract).ident
    assert ident is not None
    bad = [
        row
        for row, value in enumerate(values)
        if not (value is None or type(value) is int)
        and not (
            type(value) is str
            and len(value) <= ident.max_length
            and not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", value)
            and not re.search(r"[\ud800-\udfff]", value)
        )
    ]

    try:
        assert id_values(ident, values, "input 'id'") == values
    except RequestError as exc:
        wrong_type = [
            r for r, v in enumerate(values) if v is not None and type(v) not in (str, int)
        ]
        assert bad, exc.message
        assert f"row {(wrong_type or bad)[0]} " in exc.message
    else:
        assert not bad
