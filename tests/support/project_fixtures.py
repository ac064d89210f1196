"""The template's own test fixtures: a contract and params of its own under tests/fixtures.

Template tests read these, never the live `data/schema.yaml` or `params.yaml`, so a fork that
switches the project to its own data keeps `make test` green without touching `tests/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_ml.config import DriftParams, load_params

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
CONTRACT_PATH = FIXTURES / "churn" / "schema.yaml"
PARAMS_PATH = FIXTURES / "churn" / "params.yaml"


def fixture_params() -> dict[str, Any]:
    """The fixture params.yaml, parsed (a fresh dict each call: tests may change it)."""
    return load_params(PARAMS_PATH)


def drift_settings(**overrides: Any) -> DriftParams:
    """The fixture's drift section, with `overrides` applied."""
    raw = fixture_params()
    raw["drift"].update(overrides)
    return DriftParams.from_params(raw)
