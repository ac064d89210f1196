"""The outcome join out of core: outcomes and predictions spilled to buckets by a hash of the
id and joined bucket by bucket give the documented rule's result whatever the bucket count:
the latest outcome of an id wins, it joins when known within [0, max_delay] after the
prediction (always when the prediction has no time), and the counters say what happened."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from project_fixtures import CONTRACT_PATH

from gitops_ml.contract import load_contract
from gitops_ml.monitor.outcomes import (
    JoinedBucket,
    OutcomeError,
    OutcomeJoin,
    Spill,
    join_bucket,
    prediction_columns,
    spill_outcomes,
)
from gitops_ml.monitor.performance import ScoreHistogram

DAY = 86_400.0


def joined(tmp_path: Path, buckets: int) -> JoinedBucket:
    contract = load_contract(CONTRACT_PATH)
    outcomes = tmp_path / "outcomes.csv"
    pd.DataFrame(
        {
            "id": ["a", "a", "b", "c", "d", "x", "e"],
            "timestamp": [
                "1970-01-03T00:00:00Z",  # a: superseded by the later outcome below
                "1970-01-04T00:00:00Z",
                "1970-02-20T00:00:00Z",  # b: 50 days after its prediction
                "1970-01-01T00:00:00Z",  # c: before its prediction
                "1970-01-05T00:00:00Z",  # d: its prediction has no time
                "1970-01-05T00:00:00Z",  # x: no prediction carries it
                "1970-01-05T00:00:00Z",  # e: joins both its predictions
            ],
            "label": ["true", "false", "true", "true", "true", "true", "false"],
        }
    ).to_csv(outcomes, index=False)
    join = OutcomeJoin(tmp_path / f"join-{buckets}", buckets, timedelta(days=30), "30d")
    assert spill_outcomes(join, 0, [(0, outcomes, "outcomes.csv")], contract) == 7
    spill = Spill(join, "predictions", "00000")
    ids = np.array(["a", "b", "c", "d", "e", "e", "f", None], dtype=object)
    logged_at = np.array([1, 1, 2, np.nan, 1, 2, 1, 1]) * DAY
    scores = np.linspace(0.1, 0.8, len(ids))
    spill.add(prediction_columns(ids, logged_at, scores, contract))
    spill.close()
    total = join_bucket(join, 0, contract, {})
    for number in range(1, buckets):
        total.merge(join_bucket(join, number, contract, {}))
    return total


@pytest.mark.parametrize("buckets", [1, 5])
def test_the_bucketed_join_follows_the_rule_whatever_the_bucket_count(
    tmp_path: Path, buckets: int
) -> None:
    result = joined(tmp_path, buckets)
    assert (result.joined, result.too_late) == (4, 2)  # a, d, e, e; b late, c early
    assert (result.outcomes, result.matched) == (6, 5)  # x matches no prediction
    assert result.summary(8, "30d").unmatched == 1
    histogram = result.performance
    assert isinstance(histogram, ScoreHistogram) and histogram.count == 4
    # a's latest outcome is false (0.1 scored), d true (0.4), e false twice (0.5, 0.6)
    assert histogram.pos.nonzero()[0].tolist() == [400]
    assert histogram.neg.nonzero()[0].tolist() == [100, 500, 600]


def test_an_outcome_batch_that_breaks_the_format_names_file_column_and_count(
    tmp_path: Path,
) -> None:
    contract = load_contract(CONTRACT_PATH)
    path = tmp_path / "late.csv"
    path.write_text("id,timestamp,label\nq,2026-11-02,true\nr,yesterday,false\n")
    join = OutcomeJoin(tmp_path / "join", 2, timedelta(days=30), "30d")
    with pytest.raises(OutcomeError, match=r"^crm/late.csv: column timestamp: 1 value\(s\) are"):
        spill_outcomes(join, 0, [(0, path, "crm/late.csv")], contract)
