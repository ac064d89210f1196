"""Typed `drift:` section of params.yaml: every threshold the drift check and profile use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from gitops_ml.config import ConfigError, _get, section


@dataclass(frozen=True)
class DriftParams:
    window_rows: int = 5000  # default rows of a simulated production window
    min_rows: int = 500  # fewer current rows: verdict "not_enough_data"
    min_feature_rows: int = 100  # fewer non-missing values: that feature is "not_enough_data"
    alpha: float = 0.05  # false discovery rate (Benjamini–Hochberg over the features)
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    missing_warn: float = 0.05  # absolute change in the missing rate
    missing_alert: float = 0.15
    unseen_warn: float = 0.01  # share of current values in categories the reference never had
    unseen_alert: float = 0.05
    drift_share: float = 0.3  # this share of features at warn or above also means drift
    performance_tolerance: float = 0.02  # metric drop that counts as large
    epsilon: float = 1e-4  # PSI proportion floor
    bins: int = 10  # reference-quantile bins per numeric feature (PSI, charts)
    quantile_grid: int = 100  # fine grid for KS and Wasserstein; a multiple of `bins`
    max_categories: int = 50  # categories kept per feature; the rest pool into "other"
    chunk_rows: int = 200_000
    bootstrap_samples: int = 200
    seed: int = 42

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DriftParams:
        """Read `drift:`; keys left out take the defaults above, unknown keys are rejected."""
        sec = section(params, "drift")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(sec) - set(known))
        if unknown:
            raise ConfigError(f"params.yaml: unknown key(s) in 'drift': {unknown}")
        values = {
            name: _get(sec, "drift", name, type(f.default), f.default) for name, f in known.items()
        }
        out = cls(**values)
        out.validate()
        return out

    def validate(self) -> None:
        if self.bins < 2 or self.quantile_grid % self.bins:
            raise ConfigError(
                "params.yaml: 'drift.quantile_grid' must be a multiple of 'drift.bins' (≥ 2), "
                f"got {self.quantile_grid} and {self.bins}"
            )
        if not 0 < self.alpha < 1:
            raise ConfigError(f"params.yaml: 'drift.alpha' must be in (0, 1), got {self.alpha}")
        for low, high in (
            ("psi_warn", "psi_alert"),
            ("missing_warn", "missing_alert"),
            ("unseen_warn", "unseen_alert"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"params.yaml: 'drift.{low}' must not exceed 'drift.{high}'")
        for name in ("min_rows", "min_feature_rows", "chunk_rows", "max_categories"):
            if getattr(self, name) < 1:
                raise ConfigError(f"params.yaml: 'drift.{name}' must be at least 1")
