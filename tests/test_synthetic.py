"""The demo generator: seeded, of the fixture contract's shape, imbalanced and gappy like real
records, and each drift scenario moves what its name says."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from gitops_ml.config import SCENARIOS
from gitops_ml.contract import Contract
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.synthetic import NEW_PLAN, generate_churn

ROWS = 4000


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return generate_churn(ROWS, seed=11)


def test_the_same_seed_gives_the_same_frame_and_another_seed_another(
    baseline: pd.DataFrame,
) -> None:
    pd.testing.assert_frame_equal(generate_churn(ROWS, seed=11), baseline)
    assert not generate_churn(ROWS, seed=12).equals(baseline)


def test_the_frame_is_valid_against_the_contract_with_gaps_and_a_minority_class(
    baseline: pd.DataFrame, contract: Contract
) -> None:
    result = validate_frame(baseline, contract)

    assert result.frame is not None, result.failures
    assert list(baseline.columns) == contract.names
    assert 0.1 < baseline[contract.target].mean() < 0.4
    assert baseline["satisfaction_score"].isna().mean() > 0.1
    assert baseline["snapshot_date"].is_monotonic_increasing


@pytest.mark.parametrize(
    ("scenario", "moved"),
    [
        ("price_increase", lambda f: f["monthly_charges"].mean()),
        ("new_plan", lambda f: (f["plan"] == NEW_PLAN).mean()),
        ("churn_behaviour", lambda f: f["churned"].mean()),
        ("missing_spike", lambda f: f["data_usage_gb"].isna().mean()),
    ],
)
def test_each_scenario_moves_what_it_names(
    baseline: pd.DataFrame, scenario: str, moved: Callable[[pd.DataFrame], float]
) -> None:
    assert scenario in SCENARIOS
    drifted = generate_churn(ROWS, seed=11, scenario=scenario)

    assert moved(drifted) > 1.15 * max(moved(baseline), 0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"scenario": "bogus"}, "unknown drift scenario 'bogus'"), ({"rows": 0}, "rows must be")],
)
def test_impossible_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_churn(**{"rows": 10, "seed": 1, **kwargs})  # type: ignore[arg-type]
