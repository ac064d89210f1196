"""Typed access to `params.yaml`, with errors that name the key and the expected value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.errors import UserError
from gitops_ml.io import read_yaml

DEFAULT_PARAMS_PATH = Path("params.yaml")
SCENARIOS: tuple[str, ...] = (
    "none",
    "price_increase",
    "new_plan",
    "churn_behaviour",
    "missing_spike",
)


class ConfigError(UserError, ValueError):
    """params.yaml is missing a key or holds a value of the wrong kind."""


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    raw = read_yaml(path, "params file", ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def section(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = params.get(name)
    if not isinstance(value, Mapping):
        raise ConfigError(f"params.yaml: section '{name}' is missing or not a mapping")
    return value


def _get(
    sec: Mapping[str, Any], section_name: str, key: str, kind: type, default: Any = ...
) -> Any:
    if key not in sec:
        if default is ...:
            raise ConfigError(f"params.yaml: '{section_name}.{key}' is required")
        return default
    value = sec[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(
            f"params.yaml: '{section_name}.{key}' must be {kind.__name__}, got {value!r}"
        )
    return value


@dataclass(frozen=True)
class DataParams:
    source: str
    rows: int
    seed: int
    scenario: str

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DataParams:
        sec = section(params, "data")
        out = cls(
            source=_get(sec, "data", "source", str),
            rows=_get(sec, "data", "rows", int),
            seed=_get(sec, "data", "seed", int),
            scenario=_get(sec, "data", "scenario", str, "none"),
        )
        if out.rows <= 0:
            raise ConfigError(f"params.yaml: 'data.rows' must be positive, got {out.rows}")
        if out.scenario not in SCENARIOS:
            raise ConfigError(
                f"params.yaml: 'data.scenario' is {out.scenario!r}; "
                f"expected one of {list(SCENARIOS)}"
            )
        return out


@dataclass(frozen=True)
class SplitParams:
    test_fraction: float
    seed: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SplitParams:
        sec = section(params, "split")
        out = cls(
            test_fraction=_get(sec, "split", "test_fraction", float),
            seed=_get(sec, "split", "seed", int),
        )
        if not 0.0 < out.test_fraction < 1.0:
            raise ConfigError(
                "params.yaml: 'split.test_fraction' must be between 0 and 1, "
                f"got {out.test_fraction}"
            )
        return out


@dataclass(frozen=True)
class ModelParams:
    type: str
    seed: int
    hyperparams: dict[str, Any]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ModelParams:
        sec = section(params, "model")
        hyper = _get(sec, "model", "hyperparams", dict, {}) or {}
        return cls(
            type=_get(sec, "model", "type", str),
            seed=_get(sec, "model", "seed", int),
            hyperparams=dict(hyper),
        )


@dataclass(frozen=True)
class Costs:
    false_positive: float
    false_negative: float


@dataclass(frozen=True)
class EvaluateParams:
    threshold: float
    bootstrap_samples: int
    cv_folds: int
    seed: int
    costs: Costs

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EvaluateParams:
        sec = section(params, "evaluate")
        costs = _get(sec, "evaluate", "costs", dict)
        out = cls(
            threshold=_get(sec, "evaluate", "threshold", float),
            bootstrap_samples=_get(sec, "evaluate", "bootstrap_samples", int),
            cv_folds=_get(sec, "evaluate", "cv_folds", int),
            seed=_get(sec, "evaluate", "seed", int),
            costs=Costs(
                false_positive=_get(costs, "evaluate.costs", "false_positive", float),
                false_negative=_get(costs, "evaluate.costs", "false_negative", float),
            ),
        )
        if not 0.0 < out.threshold < 1.0:
            raise ConfigError(
                f"params.yaml: 'evaluate.threshold' must be in (0, 1), got {out.threshold}"
            )
        if out.cv_folds < 2:
            raise ConfigError(
                f"params.yaml: 'evaluate.cv_folds' must be at least 2, got {out.cv_folds}"
            )
        return out


@dataclass(frozen=True)
class ExportParams:
    opset: int
    parity_tolerance: float

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExportParams:
        sec = section(params, "export")
        return cls(
            opset=_get(sec, "export", "opset", int),
            parity_tolerance=_get(sec, "export", "parity_tolerance", float),
        )
