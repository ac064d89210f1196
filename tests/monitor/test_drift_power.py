"""The drift check as a statistical procedure: false-alarm rate and power, over 100 trials each.

One reference profile (40,000 generated training rows) and, per scenario, one pool of generated
production rows; each trial draws a fresh window of the default size (`drift.window_rows`) from
the pool and runs the pure check on it, so 600 checks stay within a few seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from project_fixtures import drift_settings

from gitops_ml.contract import Contract
from gitops_ml.monitor.drift import check_drift
from gitops_ml.monitor.profile import build_profile
from gitops_ml.monitor.readers import Chunk, frame_chunks
from gitops_ml.synthetic import generate_churn

TRIALS = 100
POOL_ROWS = 60_000
SETTINGS = drift_settings()  # the fixture params: a fork's thresholds do not change this test
WINDOW = SETTINGS.window_rows

# What each generator knob moves (read from gitops_ml/synthetic.py): features that must be named,
# and features that may legitimately be named too because they are computed from a moved one.
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "price_increase": ({"monthly_charges"}, {"total_charges"}),
    "new_plan": ({"plan", "monthly_charges"}, {"total_charges"}),
    "churn_behaviour": ({"support_calls", "satisfaction_score"}, set()),
    "missing_spike": ({"data_usage_gb", "avg_session_minutes", "satisfaction_score"}, set()),
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def profile(contract: Contract) -> dict[str, Any]:
    return build_profile(generate_churn(40_000, seed=101), contract, SETTINGS)


def _windows(contract: Contract, scenario: str, seed: int) -> list[Chunk]:
    """TRIALS windows of WINDOW rows drawn without replacement from one normalised pool."""
    pool = frame_chunks(generate_churn(POOL_ROWS, seed=seed, scenario=scenario), contract)[0]
    frame = pool.frame
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(TRIALS):
        rows = rng.choice(len(frame), WINDOW, replace=False)
        out.append(Chunk.from_frame(frame.iloc[rows]))
    return out


def _run(profile: dict[str, Any], contract: Contract, windows: list[Chunk]) -> list[dict[str, Any]]:
    return [check_drift(profile, contract, [window], SETTINGS).to_json() for window in windows]


@pytest.fixture(scope="module")
def null_results(profile: dict[str, Any], contract: Contract) -> list[dict[str, Any]]:
    return _run(profile, contract, _windows(contract, "none", seed=303))


def test_no_drift_windows_raise_a_false_alarm_in_at_most_5_percent_of_100_trials(
    null_results: list[dict[str, Any]],
) -> None:
    alarms = sum(r["verdict"] != "no_drift" for r in null_results)
    assert alarms <= 5, pd.Series([r["verdict"] for r in null_results]).value_counts().to_dict()
    assert all(r["rows"] == WINDOW for r in null_results)


def test_corrected_tests_alone_are_calibrated_under_no_drift(
    null_results: list[dict[str, Any]],
) -> None:
    """Without the effect-size rule, BH keeps "any feature significant" near alpha (global null)."""
    any_significant = sum(any(f["significant"] for f in r["features"]) for r in null_results)
    assert any_significant <= 10
    raw = np.array([f["p_value"] for r in null_results for f in r["features"]])
    assert 0.005 < np.mean(raw < 0.05) < 0.08  # neither anti-conservative nor dead


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_each_scenario_is_detected_in_95_percent_of_trials_naming_the_moved_features(
    profile: dict[str, Any], contract: Contract, scenario: str
) -> None:
    required, allowed = EXPECTED[scenario]
    results = _run(profile, contract, _windows(contract, scenario, seed=404 + len(scenario)))
    detected = sum(r["verdict"] == "drift" for r in results)
    named_right = sum(
        required <= set(r["drifting_features"]) <= required | allowed for r in results
    )
    assert detected >= 95, f"{scenario}: detected in {detected}/{TRIALS}"
    named = pd.Series([",".join(sorted(r["drifting_features"])) for r in results])
    assert named_right >= 95, named.value_counts().to_dict()
