"""Serving pieces in-process: the prediction log never blocks or raises, and request
validation answers any JSON value with either feeds or a RequestError."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops_ml.contract import Contract
from serving import validation
from serving.capture.writer import PredictionLog
from serving.metrics import ScoreHistogram
from serving.model import default_model_name
from serving.records import parse_records
from serving.v2 import parse_infer_request
from serving.validation import (
    MANY_ROWS,
    FeatureTable,
    RequestError,
    feature_specs,
    id_spec,
    id_values,
)


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


def test_prediction_log_drops_and_counts_lines_when_the_queue_is_full(tmp_path: Path) -> None:
    dropped: list[int] = []
    log = PredictionLog(
        tmp_path / "p.jsonl", 1.0, "churn-model", "1.0.0", max_queue=2, on_dropped=dropped.append
    )
    columns = {"tenure_months": [1, 2, 3, 4, 5]}

    log.record("r1", columns, np.zeros(5, dtype=np.int64), np.full(5, 0.25))  # writer not started

    assert log.pending == 2 and sum(dropped) == 3


def test_prediction_log_writes_sampled_rows_in_the_drift_format(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    log = PredictionLog(path, 0.5, "churn-model", "1.0.0", seed=3)
    log.start()
    rows = 400
    columns = {"total_charges": [None if i % 2 else float("nan") for i in range(rows)]}

    log.record("req-1", columns, np.ones(rows, dtype=np.int64), np.full(rows, 0.75))
    log.close()

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert 150 < len(lines) < 250, "about half the rows are sampled"
    assert lines[0]["features"] == {"total_charges": None}
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
    specs = feature_specs(contract)
    record = _record(contract)
    record[specs[name].name] = value
    tensors = [
        {"name": k, "datatype": s.datatypes[0], "shape": [1, 1], "data": [record[k]]}
        for k, s in zip(record, specs, strict=True)
    ]
    for parse, body in ((parse_records, [record]), (parse_infer_request, {"inputs": tensors})):
        try:
            parsed = parse(body, specs, 10)
        except RequestError as exc:
            assert exc.status in (400, 413, 422) and exc.message
        else:
            assert all(feed.shape == (1, 1) for feed in parsed.feeds.values())
            assert len(parsed.feeds) == len(specs)


KNOWN = "<the column's value in a valid record>"
column_values = st.lists(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", " ", "x", "Yes", "no", "3.5", "\x00", KNOWN, KNOWN])
    | st.lists(st.integers(), max_size=1),
    min_size=1,
    max_size=4,
)


def _outcome(build: Any) -> Any:
    try:
        parsed = build()
    except RequestError as exc:
        return exc.message, exc.status
    return sorted((k, v.ravel().tolist()) for k, v in parsed.feeds.items()), parsed.unknown


@settings(max_examples=600, deadline=None)
@given(name=st.integers(min_value=0, max_value=16), values=column_values, many=st.booleans())
def test_the_one_line_column_check_reads_what_the_per_value_path_reads(
    contract: Contract, name: int, values: list[Any], many: bool
) -> None:
    """A server's FeatureTable takes a column whose values all pass a one-line check (value by
    value for a few rows, with numpy from MANY_ROWS on) as it is; whatever it takes that way,
    the per-value path (coercion, bounds, missing values, the worded error) reads the same,
    and whatever it does not is left to that path."""
    specs = feature_specs(contract)
    table = FeatureTable(specs)
    record = _record(contract)
    known = record[specs[name].name]
    values = [known if v == KNOWN else v for v in values] * (MANY_ROWS if many else 1)
    columns = {s.name: [record[s.name]] * len(values) for s in specs}
    columns[specs[name].name] = values

    def per_value() -> Any:
        unknown: dict[str, int] = {}
        read = {s.name: FeatureTable._slow(s, columns[s.name], "input", unknown) for s in specs}
        feeds = {
            s.name: np.array(read[s.name], np.float32 if s.type != "category" else object)
            for s in specs
        }
        return SimpleNamespace(feeds=feeds, unknown=unknown)

    fast, slow = _outcome(lambda: table.build(columns, len(values), "input")), _outcome(per_value)

    assert repr(fast) == repr(slow)


def _one_row_tensors(contract: Contract, **changes: Any) -> dict[str, Any]:
    specs = feature_specs(contract)
    record = {**_record(contract), **changes}
    return {
        "inputs": [
            {"name": s.name, "datatype": s.datatypes[0], "shape": [1, 1], "data": [record[s.name]]}
            for s in specs
        ]
    }


def test_category_feeds_are_object_arrays_so_one_long_value_costs_only_its_own_length(
    contract: Contract,
) -> None:
    specs = feature_specs(contract)
    many = [_record(contract) for _ in range(1000)]
    many[0]["plan"] = "p" * 256  # the longest value the default max_length admits

    parsed = parse_records(many, specs, 1000)

    assert parsed.feeds["plan"].dtype == object and parsed.feeds["plan"].shape == (1000, 1)
    assert parsed.feeds["region"].nbytes == 1000 * np.dtype(object).itemsize


def test_a_category_value_over_max_length_is_refused_naming_input_row_and_limit(
    contract: Contract,
) -> None:
    specs = feature_specs(contract)
    with pytest.raises(RequestError) as caught:
        parse_infer_request(_one_row_tensors(contract, plan="x" * 257), specs, 10)

    assert caught.value.status == 400
    assert caught.value.message == (
        "input 'plan': row 0 has 257 characters; feature 'plan' takes at most 256 "
        "(the contract's checks.max_length)"
    )


def test_control_characters_in_a_category_are_refused_not_scored_like_empty(
    contract: Contract,
) -> None:
    specs = feature_specs(contract)
    for text in ("\x00", "basic\x00", "north\n", "\x7f"):
        with pytest.raises(RequestError) as caught:
            parse_records([{**_record(contract), "plan": text}], specs, 10)
        assert caught.value.status == 422
        assert "field 'plan': row 0 contains the control character U+00" in caught.value.message


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
def test_ids_checked_all_at_once_read_as_they_do_value_by_value(
    contract: Contract, values: list[Any]
) -> None:
    """A column of text ids is checked with one join, search and encode; what that accepts
    or leaves to the per-value check is the same as the per-value check alone decides."""
    ident = id_spec(contract)
    assert ident is not None

    def outcome() -> Any:
        try:
            return id_values(ident, values, "input 'id'")
        except RequestError as exc:
            return exc.message

    at_once = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validation, "_clean_text", lambda values, limit: False)
        one_by_one = outcome()

    assert at_once == one_by_one
