"""Drift statistics computed from counts, so that any window size costs the same memory.

Every function here works on small count vectors (reference vs current) rather than raw rows:
the reference side comes from the profile, the current side from streamed chunks.

scipy is imported by the functions that test: the drift check's map runs in worker processes
that import this module (through gitops_ml.monitor.drift) but only count, and scipy's import
would cost each of them about 0.9 s of CPU.
"""

from __future__ import annotations

import numpy as np

# Proportions below this are clipped before the PSI log-ratio, so a bin that is empty on one side
# contributes a large but finite term (e.g. a brand-new category at 30 % adds ≈ 0.3·ln(3000) ≈ 2.4).
DEFAULT_EPSILON = 1e-4


def proportions(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(reference: np.ndarray, current: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> float:
    """Population stability index Σ (c − r)·ln(c / r) over shared bins, proportions ≥ epsilon."""
    r = np.clip(proportions(reference), epsilon, None)
    c = np.clip(proportions(current), epsilon, None)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) between the binned distributions: 0 = same, 1 = disjoint."""
    r, c = proportions(reference), proportions(current)
    if r.sum() == 0 or c.sum() == 0:
        return float("nan")
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(r, c, base=2))


def chi2_homogeneity(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test that both count vectors come from one distribution (2×K contingency)."""
    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    from scipy import stats

    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


def cdf_at_grid(cell_counts: np.ndarray) -> np.ndarray:
    """Empirical CDF at each grid point from counts in cells (−∞, g0], (g0, g1], …, (g_last, ∞)."""
    cumulative = np.cumsum(np.asarray(cell_counts, dtype=np.float64))
    total = cumulative[-1] if len(cumulative) else 0.0
    return cumulative[:-1] / total if total > 0 else np.zeros(len(cumulative) - 1)


def ks_from_grid(
    ref_cells: np.ndarray, cur_cells: np.ndarray, n_ref: int, n_cur: int
) -> tuple[float, float]:
    """Two-sample KS statistic evaluated on the reference's quantile grid, asymptotic p-value.

    Approximation (documented in the README): the supremum is taken over the grid points only, so
    the statistic can be lower than the exact one by at most the mass of one grid cell (≈ 1 % of
    the reference with a 100-quantile grid). For discrete features whose every value is a grid
    point it is exact. The p-value uses the Kolmogorov distribution, conservative with ties.
    """
    if n_ref == 0 or n_cur == 0:
        return 0.0, 1.0
    d = float(np.max(np.abs(cdf_at_grid(ref_cells) - cdf_at_grid(cur_cells)), initial=0.0))
    en = np.sqrt(n_ref * n_cur / (n_ref + n_cur))
    from scipy import stats

    return d, float(stats.kstwobign.sf(en * d))


def wasserstein_from_grid(
    grid: np.ndarray,
    ref_cells: np.ndarray,
    ref_sums: np.ndarray,
    cur_cells: np.ndarray,
    cur_sums: np.ndarray,
    cur_excess: float,
) -> float:
    """W1 = ∫|F_ref − F_cur| dx from per-cell counts and value sums on the reference grid.

    Inside cell (a, b] the integral of an empirical CDF is exact from its count k and sum s:
    ∫F = F(a)·(b − a) + (k·b − s)/n, so W1 is exact except where the two CDFs cross inside one
    cell (≈ 1 % of the reference). The reference has no mass outside [grid[0], grid[-1]], so the
    tails are exact too: `cur_excess` is the summed distance of current values beyond them.
    """
    n_ref, n_cur = float(np.sum(ref_cells)), float(np.sum(cur_cells))
    if n_ref == 0 or n_cur == 0 or len(grid) == 0:
        return float("nan")
    grid = np.asarray(grid, dtype=np.float64)
    left, right = grid[:-1], grid[1:]
    inner = slice(1, len(grid))  # cells (g0, g1], …, (g_last-1, g_last]
    f_ref, f_cur = cdf_at_grid(ref_cells)[:-1], cdf_at_grid(cur_cells)[:-1]

    def integral(f: np.ndarray, cells: np.ndarray, sums: np.ndarray, n: float) -> np.ndarray:
        counts = np.asarray(cells, dtype=np.float64)[inner]
        return f * (right - left) + (counts * right - np.asarray(sums)[inner]) / n

    diff = integral(f_ref, ref_cells, ref_sums, n_ref) - integral(f_cur, cur_cells, cur_sums, n_cur)
    return float(np.sum(np.abs(diff)) + cur_excess / n_cur)


def two_proportion_p(k_ref: int, n_ref: int, k_cur: int, n_cur: int) -> float:
    """p-value that two rates (e.g. missing rates) are equal: 2×2 chi-square, no correction."""
    if n_ref == 0 or n_cur == 0:
        return 1.0
    return chi2_homogeneity(np.array([k_ref, n_ref - k_ref]), np.array([k_cur, n_cur - k_cur]))[1]


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """BH-adjusted p-values (false discovery rate), same order as given."""
    if not p_values:
        return []
    from scipy import stats

    adjusted = stats.false_discovery_control(np.asarray(p_values, dtype=np.float64), method="bh")
    return [float(p) for p in np.minimum(adjusted, 1.0)]
