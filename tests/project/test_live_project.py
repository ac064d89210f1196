"""The project's own contract, params and committed outputs: checks that pass for ANY valid data.

Everything else under tests/ tests the template's code on fixtures of its own. This group reads
the live files a fork changes when it switches to its data (data/schema.yaml, params.yaml, the
committed metrics and profile), and asserts only what must hold for every dataset.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gitops_ml import paths
from gitops_ml.config import (
    DataParams,
    DriftParams,
    EvaluateParams,
    ExportParams,
    ModelParams,
    SplitParams,
    load_params,
)
from gitops_ml.contract import Contract, load_contract
from gitops_ml.evaluate_metrics import read_evaluate_metrics
from gitops_ml.metric_registry import metric_sets
from gitops_ml.release.versions import model_name
from gitops_ml.review.gates import GateParams
from gitops_ml.stage_metrics import read_data_metrics, read_export_metrics, read_validation_metrics
from gitops_ml.tasks import task_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(ROOT / paths.CONTRACT)


def test_the_live_contract_loads_with_features_and_a_target_of_its_task(
    contract: Contract,
) -> None:
    assert contract.features
    assert contract.column(contract.target).type in task_spec(contract.task).target_types


def test_every_params_section_reads_strictly(contract: Contract) -> None:
    params = load_params(ROOT / paths.PARAMS)
    for section in (DataParams, SplitParams, ModelParams, EvaluateParams, ExportParams):
        section.from_params(params)
    DriftParams.from_params(params)
    GateParams.from_params(params, contract.task)


def test_the_model_artifact_in_dvc_yaml_is_named_after_the_live_contract() -> None:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        artifacts = repo.artifacts.read()[paths.DVC_YAML]
    assert {name: a.path for name, a in artifacts.items()} == {model_name(ROOT): paths.MODEL_ONNX}


def test_committed_profile_covers_the_contract_features(contract: Contract) -> None:
    profile = json.loads((ROOT / paths.PROFILE).read_text())
    assert [f["name"] for f in profile["features"]] == contract.feature_names


def test_committed_metrics_describe_a_passing_validation_and_a_parity_checked_model(
    contract: Contract,
) -> None:
    validation = read_validation_metrics(ROOT / paths.VALIDATION_METRICS)
    parity = read_export_metrics(ROOT / paths.EXPORT_METRICS).parity
    evaluation = read_evaluate_metrics(ROOT / paths.EVALUATE_METRICS)
    data = read_data_metrics(ROOT / paths.DATA_METRICS)
    assert validation.status == "passed"
    assert parity.max_abs_diff <= parity.tolerance
    assert not parity.label_flips  # a regressor has no labels to flip
    assert evaluation.task == contract.task
    headline = evaluation.test[metric_sets(contract.task).headline]
    assert headline is not None and math.isfinite(headline)
    assert data.rows.total == data.rows.train + data.rows.test


def test_the_model_card_is_committed_and_names_the_contract(contract: Contract) -> None:
    card = (ROOT / paths.MODEL_CARD).read_text()
    assert all(f"`{name}`" in card for name in contract.feature_names)


def test_the_committed_request_examples_fit_the_live_contract(contract: Contract) -> None:
    from gitops_ml.pipeline.examples import stale_examples

    stale = stale_examples(contract, ROOT / Path(paths.EXAMPLE_PREDICT).parent)
    assert stale == [], f"regenerate with `gitops-ml examples`: {stale}"


def test_dvc_lock_records_only_stages_that_dvc_yaml_declares() -> None:
    """DVC keeps the lock entry of a stage deleted from dvc.yaml; `dvc remove STAGE` drops both."""
    import yaml

    declared = yaml.safe_load((ROOT / paths.DVC_YAML).read_text())["stages"]
    recorded = yaml.safe_load((ROOT / paths.DVC_LOCK).read_text())["stages"]
    assert sorted(set(recorded) - set(declared)) == []
