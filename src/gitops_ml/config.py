"""Typed, strict access to `params.yaml`: every section a frozen dataclass, read one way.

Defaults live in `params.yaml` only, never here: a section read from the file must name every
field (a field with a dataclass default is an optional rule, such as a gate, that is off when
left out). An unknown or misspelt key is an error naming the
file, the key and the nearest valid name, so `model: {hyperparameters: …}` or `data.scenaro`
can never pass silently and train on something else than what the file says.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from gitops_ml import paths
from gitops_ml.errors import UserError
from gitops_ml.io import read_yaml

DEFAULT_PARAMS_PATH = Path(paths.PARAMS)
SCENARIOS: tuple[str, ...] = (
    "none",
    "price_increase",
    "new_plan",
    "churn_behaviour",
    "missing_spike",
)


class ConfigError(UserError, ValueError):
    """params.yaml is missing a key, has an unknown one, or holds a value of the wrong kind."""


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest known name, or "" when nothing is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def refuse_unknown(
    raw: Iterable[Any],
    known: Iterable[str],
    where: str,
    section: str | None = None,
    error: type[UserError] = ConfigError,
) -> None:
    """Every file with a fixed set of keys (params.yaml, the data contract) refuses an unknown
    one the same way, so a typo never passes silently: `where` names the file (and the place
    in it), then the key (dotted under `section`), the nearest valid name and all valid ones."""
    valid = list(known)
    for key in raw:
        if key not in valid:
            dotted = f"{section}.{key}" if section else str(key)
            scope = f" in {section!r}" if section else ""
            raise error(
                f"{where}: unknown key {dotted!r}{did_you_mean(str(key), valid)}; "
                f"valid{scope}: {', '.join(valid)}"
            )


class Params(dict[str, Any]):
    """Parsed params that remember the file they came from, so an error in any section names
    the file the user passed (`--params other.yaml`), not the default."""

    def __init__(self, raw: Mapping[str, Any], path: str) -> None:
        super().__init__(raw)
        self.path = path


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> Params:
    raw = read_yaml(path, "params file", ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    refuse_unknown(raw, SECTIONS, str(path))
    return Params(raw, str(path))


Section = TypeVar("Section")


def read_section(cls: type[Section], params: Mapping[str, Any], name: str) -> Section:
    """The section `name` of parsed params as a `cls` dataclass, checked field by field."""
    try:
        raw = params.get(name)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{paths.PARAMS}: section '{name}' is missing or not a mapping")
        return _build(cls, raw, name)
    except ConfigError as exc:
        raise _in_file(exc, getattr(params, "path", paths.PARAMS)) from None


def _in_file(error: ConfigError, path: str) -> ConfigError:
    """Section rules (here and in review/gates.py) say `params.yaml: …`; name the file read."""
    default = f"{paths.PARAMS}: "
    message = str(error)
    if path == paths.PARAMS or not message.startswith(default):
        return error
    return ConfigError(f"{path}: {message.removeprefix(default)}")


def _build(cls: type[Section], raw: Mapping[str, Any], where: str) -> Section:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    keys = {f.metadata.get("key", f.name): f.name for f in fields.values()}
    refuse_unknown(raw, keys, paths.PARAMS, section=where)
    values: dict[str, Any] = {}
    for key, attr in keys.items():
        kind = hints[attr]
        optional = _is_optional(kind)
        field = fields[attr]
        absent = key not in raw or raw[key] is None
        if absent and (
            field.default is not dataclasses.MISSING
            or field.default_factory is not dataclasses.MISSING
        ):
            continue  # an optional rule left out (a gate that is off), not a hidden default
        if absent:
            if not optional:
                raise ConfigError(f"{paths.PARAMS}: '{where}.{key}' is required")
            values[attr] = None
            continue
        values[attr] = _convert(raw[key], _strip_none(kind), f"{where}.{key}")
    out = cls(**values)
    check = getattr(out, "check", None)
    if check is not None:
        check()
    return out


def _is_optional(kind: Any) -> bool:
    return isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)


def _strip_none(kind: Any) -> Any:
    if not _is_optional(kind):
        return kind
    rest = [k for k in typing.get_args(kind) if k is not type(None)]
    return rest[0]


def _convert(value: Any, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be a mapping, got {value!r}")
        return _build(kind, value, key)  # type: ignore[arg-type]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be a mapping, got {value!r}")
        _, item_kind = typing.get_args(kind)
        if item_kind is Any:
            return dict(value)
        return {str(k): _convert(v, item_kind, f"{key}.{k}") for k, v in value.items()}
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be finite, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be a whole number, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{paths.PARAMS}: '{key}' must be text, got {value!r}")
        return value
    raise TypeError(f"unsupported params type {kind!r} for {key}")  # a bug, not a user error


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"{paths.PARAMS}: {message}")


# ------------------------------------------------------------------------------------ sections


class ParamsSection:
    """A section of params.yaml, read by `from_params` under the name in `section`."""

    section: ClassVar[str]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        return read_section(cls, params, cls.section)


@dataclass(frozen=True)
class DataParams(ParamsSection):
    section: ClassVar[str] = "data"

    source: str  # "synthetic", or a CSV/Parquet path or URL
    rows: int  # rows generated when source is synthetic
    seed: int
    scenario: str

    def check(self) -> None:
        _require(self.rows > 0, f"'data.rows' must be positive, got {self.rows}")
        _require(
            self.scenario in SCENARIOS,
            f"'data.scenario' is {self.scenario!r}{did_you_mean(self.scenario, SCENARIOS)}; "
            f"expected one of {list(SCENARIOS)}",
        )


@dataclass(frozen=True)
class SplitParams(ParamsSection):
    section: ClassVar[str] = "split"

    test_fraction: float
    seed: int

    def check(self) -> None:
        _require(
            0.0 < self.test_fraction < 1.0,
            f"'split.test_fraction' must be between 0 and 1, got {self.test_fraction}",
        )


@dataclass(frozen=True)
class ModelParams(ParamsSection):
    section: ClassVar[str] = "model"

    type: str
    seed: int
    hyperparams: dict[str, Any]  # checked against the estimator by the train stage


@dataclass(frozen=True)
class Costs:
    """What one wrong decision costs, in the fork's own unit (`evaluate.costs`)."""

    false_positive: float
    false_negative: float


@dataclass(frozen=True)
class EvaluateParams(ParamsSection):
    section: ClassVar[str] = "evaluate"

    threshold: float
    bootstrap_samples: int
    cv_folds: int
    seed: int
    refits: int  # training-noise refits (0: off); see scoring.py
    refit_fraction: float
    costs: Costs | None = None  # the business view (cost per 1,000 rows); off when left out

    @property
    def cost_pair(self) -> tuple[float, float] | None:
        """(false positive, false negative) cost per row, or None when no costs are set."""
        if self.costs is None:
            return None
        return (self.costs.false_positive, self.costs.false_negative)

    def check(self) -> None:
        _require(
            0.0 < self.threshold < 1.0,
            f"'evaluate.threshold' must be in (0, 1), got {self.threshold}",
        )
        _require(self.cv_folds >= 2, f"'evaluate.cv_folds' must be at least 2, got {self.cv_folds}")
        _require(
            self.refits == 0 or self.refits >= 2,
            f"'evaluate.refits' must be 0 (off) or at least 2 (a spread needs two), got "
            f"{self.refits}",
        )
        _require(
            0.0 < self.refit_fraction <= 1.0,
            f"'evaluate.refit_fraction' must be in (0, 1], got {self.refit_fraction}",
        )


@dataclass(frozen=True)
class ExportParams(ParamsSection):
    section: ClassVar[str] = "export"

    opset: int
    parity_tolerance: float


@dataclass(frozen=True)
class DriftParams(ParamsSection):
    """Every threshold of the drift check and the profile (meanings in params.yaml)."""

    section: ClassVar[str] = "drift"

    window_rows: int
    min_rows: int
    min_feature_rows: int
    alpha: float
    psi_warn: float
    psi_alert: float
    missing_warn: float
    missing_alert: float
    unseen_warn: float
    unseen_alert: float
    drift_share: float
    performance_tolerance: float
    epsilon: float
    bins: int
    quantile_grid: int
    max_categories: int
    chunk_rows: int
    bootstrap_samples: int
    seed: int

    def check(self) -> None:
        _require(
            self.bins >= 2 and self.quantile_grid % self.bins == 0,
            "'drift.quantile_grid' must be a multiple of 'drift.bins' (≥ 2), "
            f"got {self.quantile_grid} and {self.bins}",
        )
        _require(0 < self.alpha < 1, f"'drift.alpha' must be in (0, 1), got {self.alpha}")
        for low, high in (
            ("psi_warn", "psi_alert"),
            ("missing_warn", "missing_alert"),
            ("unseen_warn", "unseen_alert"),
        ):
            _require(
                getattr(self, low) <= getattr(self, high),
                f"'drift.{low}' must not exceed 'drift.{high}'",
            )
        for name in ("min_rows", "min_feature_rows", "chunk_rows", "max_categories"):
            _require(getattr(self, name) >= 1, f"'drift.{name}' must be at least 1")


# The sections params.yaml may hold; `gates` is read by gitops_ml.review.gates.
SECTIONS: tuple[str, ...] = ("data", "split", "model", "evaluate", "export", "drift", "gates")
