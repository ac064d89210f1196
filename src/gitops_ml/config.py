"""Typed, strict access to `params.yaml`: every section a frozen pydantic model, read one way.

Defaults live in `params.yaml` only, never here: a section read from the file must name every
field (a field with a default is an optional rule, such as a gate, that is off when left out).
Pydantic validates (strict types, no unknown key, frozen); its errors are told the way this
project tells every config error: the file, the dotted key, what was expected and what was
found, and for an unknown or misspelt key the nearest valid name, so `model: {hyperparameters:
…}` or `data.scenaro` can never pass silently and train on something else than the file says.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic_core import PydanticCustomError

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


class ParamsModel(BaseModel):
    """Strict, closed and frozen: the rules every part of params.yaml is read by."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )


Section = TypeVar("Section", bound=ParamsModel)

# What a pydantic error type says was expected, in the words of this project's messages.
_EXPECTED = {
    "float_type": "a number",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "string_type": "text",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "finite_number": "finite",
}


def read_section(cls: type[Section], params: Mapping[str, Any], name: str) -> Section:
    """The section `name` of parsed params as a `cls` model, then its own cross-field rules."""
    try:
        raw = params.get(name)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{paths.PARAMS}: section '{name}' is missing or not a mapping")
        try:
            section = cls.model_validate(_without_nulls(raw), by_alias=True, by_name=False)
        except ValidationError as error:
            raise _explained(error, cls, name) from None
        check = getattr(section, "check", None)
        if check is not None:
            check()
        return section
    except ConfigError as exc:
        raise _in_file(exc, getattr(params, "path", paths.PARAMS)) from None


def _without_nulls(raw: Any) -> Any:
    """A key left empty (`max_parity_diff:`) is a key left out: its default, or `required`."""
    if isinstance(raw, Mapping):
        return {k: _without_nulls(v) for k, v in raw.items() if v is not None}
    return raw


def _explained(error: ValidationError, cls: type[ParamsModel], name: str) -> ConfigError:
    """Pydantic's first complaint as this project's message (file, dotted key, expectation); an
    unknown key first, since a misspelt key also leaves the right one missing."""
    errors = error.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    location = [str(part) for part in first["loc"]]
    dotted = ".".join([name, *location])
    if first["type"] == "extra_forbidden":
        model = _model_at(cls, location[:-1])
        known = [field.alias or key for key, field in model.model_fields.items()]
        section = ".".join([name, *location[:-1]])
        try:
            refuse_unknown([location[-1]], known, paths.PARAMS, section=section)
        except ConfigError as unknown:
            return unknown
    if first["type"] == "missing":
        return ConfigError(f"{paths.PARAMS}: '{dotted}' is required")
    expected = _EXPECTED.get(first["type"])
    if expected is None:  # a rule without words of ours: pydantic's own message
        return ConfigError(f"{paths.PARAMS}: '{dotted}': {first['msg']}, got {first['input']!r}")
    return ConfigError(f"{paths.PARAMS}: '{dotted}' must be {expected}, got {first['input']!r}")


def _model_at(cls: type[ParamsModel], location: list[str]) -> type[ParamsModel]:
    """The model that holds the field at `location` (a nested section such as evaluate.costs)."""
    model = cls
    for key in location:
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        kinds = [fields[key].annotation] if key in fields else []
        while kinds and isinstance(kinds[0], types.UnionType):
            kinds = list(typing.get_args(kinds[0]))
        nested = [k for k in kinds if isinstance(k, type) and issubclass(k, ParamsModel)]
        if not nested:
            return model
        model = nested[0]
    return model


def _in_file(error: ConfigError, path: str) -> ConfigError:
    """Section rules (here and in review/gates.py) say `params.yaml: …`; name the file read."""
    default = f"{paths.PARAMS}: "
    message = str(error)
    if path == paths.PARAMS or not message.startswith(default):
        return error
    return ConfigError(f"{path}: {message.removeprefix(default)}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"{paths.PARAMS}: {message}")


# ------------------------------------------------------------------------------------ sections


class ParamsSection(ParamsModel):
    """A section of params.yaml, read by `from_params` under the name in `section`."""

    section: ClassVar[str]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        return read_section(cls, params, cls.section)


class DataParams(ParamsSection):
    section: ClassVar[str] = "data"

    source: str  # the CSV/Parquet file ingest reads, tracked by DVC
    rows: int  # rows the generator (stage generate) writes
    seed: int
    scenario: str

    def check(self) -> None:
        _require(self.rows > 0, f"'data.rows' must be positive, got {self.rows}")
        _require(
            self.scenario in SCENARIOS,
            f"'data.scenario' is {self.scenario!r}{did_you_mean(self.scenario, SCENARIOS)}; "
            f"expected one of {list(SCENARIOS)}",
        )


class SplitParams(ParamsSection):
    section: ClassVar[str] = "split"

    test_fraction: float
    seed: int

    def check(self) -> None:
        _require(
            0.0 < self.test_fraction < 1.0,
            f"'split.test_fraction' must be between 0 and 1, got {self.test_fraction}",
        )

    def rows_per_class(self, cv_folds: int) -> int:
        """The fewest rows a class of a classification target needs: at this test_fraction,
        one in the test set and `cv_folds` (evaluate.cv_folds) in the training set for the
        stratified cross-validation. (Rounded before the ceiling: 2 / (1 - 0.8) is 10, not 11.)"""
        fraction = self.test_fraction
        return math.ceil(round(max(1 / fraction, cv_folds / (1 - fraction)), 9))


class ModelParams(ParamsSection):
    section: ClassVar[str] = "model"

    type: str
    seed: int
    hyperparams: dict[str, Any]  # checked against the estimator by the train stage


class Costs(ParamsModel):
    """What one wrong decision costs, in the fork's own unit (`evaluate.costs`)."""

    false_positive: float
    false_negative: float


AUTO_JOBS: Final = "auto"
Jobs = int | Literal["auto"]  # evaluate.jobs: fits at once, or "auto" (pipeline/evaluate.py)


class EvaluateParams(ParamsSection):
    section: ClassVar[str] = "evaluate"

    threshold: float
    bootstrap_samples: int
    cv_folds: int
    seed: int
    refits: int  # training-noise refits (0: off); see scoring.py
    refit_fraction: float
    jobs: Jobs  # fits (CV folds, refits) run at once; see pipeline/evaluate.py
    costs: Costs | None = None  # the business view (cost per 1,000 rows); off when left out

    @field_validator("jobs", mode="before")
    @classmethod
    def _auto_or_count(cls, value: Any) -> Any:
        """One message for a wrong kind (pydantic would name each member of the union)."""
        if value == AUTO_JOBS or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise PydanticCustomError("jobs", "must be 'auto' or a whole number")

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
        _require(
            isinstance(self.jobs, str) or self.jobs >= 1,  # a string is "auto" (the type)
            f"'evaluate.jobs' must be 'auto' or at least 1, got {self.jobs}",
        )


class ExportParams(ParamsSection):
    section: ClassVar[str] = "export"

    opset: int
    parity_tolerance: float  # classification: max |Δp|
    regression_parity_tolerance: float  # regression: max |Δŷ| / sd of the test target


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
    workers: int
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
        _require(
            self.workers == -1 or self.workers >= 1,
            f"'drift.workers' must be -1 (one per core) or at least 1, got {self.workers}",
        )


# The sections params.yaml may hold; `gates` is read by gitops_ml.review.gates.
SECTIONS: tuple[str, ...] = ("data", "split", "model", "evaluate", "export", "drift", "gates")
