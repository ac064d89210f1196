"""The count-based statistics agree with their textbook definitions on raw data."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from project_fixtures import drift_settings
from scipy import stats as scipy_stats

from gitops_ml.contract import Contract
from gitops_ml.monitor import stats
from gitops_ml.monitor.drift import check_drift
from gitops_ml.monitor.profile import cell_index, numeric_profile
from gitops_ml.monitor.readers import Chunk, frame_chunks
from gitops_ml.synthetic import generate_churn

SETTINGS = drift_settings()


def _cells(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(cell_index(grid, values), minlength=len(grid) + 1)


def _rounded(result: dict[str, Any]) -> Any:
    return json.loads(json.dumps(result), parse_float=lambda text: f"{float(text):.9g}")


def test_psi_is_zero_for_identical_distributions_and_matches_the_formula() -> None:
    ref = np.array([50, 30, 20])
    assert stats.psi(ref, ref * 3) == pytest.approx(0.0)
    cur = np.array([20, 30, 50])
    r, c = ref / 100, cur / 100
    assert stats.psi(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))


def test_psi_stays_finite_for_an_empty_bin_thanks_to_epsilon() -> None:
    value = stats.psi(np.array([100, 0]), np.array([70, 30]), epsilon=1e-4)
    assert np.isfinite(value)
    assert value == pytest.approx(
        (0.7 - 1) * np.log(0.7) + (0.3 - 1e-4) * np.log(0.3 / 1e-4), rel=1e-9
    )


def test_grid_ks_is_exact_for_discrete_values_and_close_for_continuous() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.poisson(2.0, 20_000).astype(float), rng.poisson(2.4, 3_000).astype(float)
    grid = np.unique(ref)
    d, _ = stats.ks_from_grid(_cells(grid, ref), _cells(grid, cur), len(ref), len(cur))
    assert d == pytest.approx(scipy_stats.ks_2samp(ref, cur).statistic, abs=1e-12)

    ref, cur = rng.normal(0, 1, 20_000), rng.normal(0.1, 1.1, 3_000)
    profile = numeric_profile(ref, SETTINGS)
    grid = np.asarray(profile["grid"])
    d, p = stats.ks_from_grid(np.asarray(profile["grid_counts"]), _cells(grid, cur), 20_000, 3_000)
    exact = scipy_stats.ks_2samp(ref, cur)
    assert exact.statistic - 0.011 <= d <= exact.statistic  # within one 1 % grid cell
    assert p < 0.01 and exact.pvalue < 0.01


def test_grid_wasserstein_matches_scipy_including_mass_beyond_the_reference_range() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(50, 10, 20_000), rng.normal(62, 10, 4_000)
    profile = numeric_profile(ref, SETTINGS)
    grid = np.asarray(profile["grid"])
    index = cell_index(grid, cur)
    sums = np.bincount(index, weights=cur, minlength=len(grid) + 1)
    excess = float(np.sum(grid[0] - cur[cur < grid[0]]) + np.sum(cur[cur > grid[-1]] - grid[-1]))
    w1 = stats.wasserstein_from_grid(
        grid,
        np.asarray(profile["grid_counts"]),
        np.asarray(profile["grid_sums"]),
        _cells(grid, cur),
        sums,
        excess,
    )
    assert w1 == pytest.approx(scipy_stats.wasserstein_distance(ref, cur), rel=1e-3)


def test_chi2_homogeneity_matches_scipy_contingency_and_ignores_empty_columns() -> None:
    ref, cur = np.array([400, 300, 0, 300]), np.array([90, 80, 0, 30])
    statistic, p = stats.chi2_homogeneity(ref, cur)
    expected = scipy_stats.chi2_contingency(
        np.array([[400, 300, 300], [90, 80, 30]]), correction=False
    )
    assert (statistic, p) == pytest.approx((expected.statistic, expected.pvalue))


def test_benjamini_hochberg_adjusts_in_the_given_order() -> None:
    adjusted = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    assert adjusted == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert stats.benjamini_hochberg([]) == []


def test_profile_bin_edges_are_grid_points_and_counts_add_up() -> None:
    values = np.append(np.random.default_rng(3).exponential(10, 9_000), [np.nan] * 1_000)
    profile = numeric_profile(values, SETTINGS)
    assert set(profile["bin_edges"]) <= set(profile["grid"])
    assert sum(profile["grid_counts"]) == sum(profile["bin_counts"]) == profile["count"] == 9_000
    assert profile["missing"] == 1_000
    assert len(profile["bin_counts"]) == len(profile["bin_edges"]) + 1 == SETTINGS.bins


def test_result_does_not_depend_on_how_the_window_is_chunked(contract: Contract) -> None:
    """Bounded memory must not change the answer: 1 chunk and 7 chunks give the same result."""
    from gitops_ml.monitor.profile import build_profile

    profile = build_profile(generate_churn(6_000, seed=5), contract, SETTINGS)
    window = frame_chunks(generate_churn(3_000, seed=6, scenario="new_plan"), contract)[0]
    cuts = np.linspace(0, len(window.frame), 8).astype(int)
    frame = window.frame
    pieces = [Chunk.from_frame(frame.iloc[a:b]) for a, b in itertools.pairwise(cuts)]
    whole = check_drift(profile, contract, [Chunk.from_frame(frame)], SETTINGS).to_json()
    chunked = check_drift(profile, contract, pieces, SETTINGS).to_json()
    assert _rounded(chunked) == _rounded(whole)  # equal up to float summation order
    assert whole["verdict"] == "drift" and "plan" in whole["drifting_features"]


def test_the_drift_maps_workers_count_without_importing_scipy() -> None:
    """A worker of the map imports gitops_ml.monitor.drift only to count; scipy (about 0.9 s
    of CPU in every process that imports it) is imported where a test is computed."""
    code = "import sys, gitops_ml.monitor.drift; print('scipy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
