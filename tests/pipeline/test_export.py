"""export: ONNX parity is a gate for every registered model type of every task."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import onnx
import pandas as pd
import pytest
import yaml
from onnx import TensorProto
from project_fixtures import EXPORT, PARAMS_PATH, task_fixture
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from gitops_ml.cli import main
from gitops_ml.config import ModelParams
from gitops_ml.contract import Contract, onnx_input_names, parse_contract
from gitops_ml.model_view import model_frame, onnx_feeds
from gitops_ml.onnx_model import onnx_session
from gitops_ml.pipeline.export import (
    ExportError,
    canonical_bytes,
    export_model,
    export_onnx,
)
from gitops_ml.pipeline.train import REGISTRY, build_model, fit_model
from gitops_ml.stage_metrics import parse_export_metrics
from gitops_ml.synthetic import generate_churn
from gitops_ml.v2_request import records, v2_request
from serving.app import create_app
from serving.model import load_model

SMALL_MODELS = {
    "hist_gradient_boosting": {"max_iter": 40},
    "random_forest": {"n_estimators": 15, "max_depth": 8},
    "logistic_regression": {"C": 0.5},
    "ridge": {"alpha": 2.0},
}
Frames = tuple[Contract, pd.DataFrame, pd.DataFrame]  # contract, train, test


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = generate_churn(3000, seed=21)
    return frame.iloc[:2400], frame.iloc[2400:]


@pytest.fixture(scope="module")
def task_frames(contract: Contract, frames: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Frames]:
    """Per task: generated churn rows (binary), wine (multiclass), diabetes (regression)."""
    tasks: dict[str, Frames] = {"binary": (contract, *frames)}
    for task in ("multiclass", "regression"):
        fixture = task_fixture(task)
        tasks[task] = (fixture.contract, *fixture.split())
    return tasks


Exported = dict[str, tuple[Pipeline, bytes, dict[str, Any]]]  # per task: model, ONNX, metrics


@pytest.fixture(scope="module")
def exported(task_frames: dict[str, Frames], exported_model) -> Exported:
    """Per task: histogram gradient boosting fitted, exported and checked (binary: the
    session's exported churn model)."""
    out: Exported = {
        "binary": (
            exported_model.model,
            exported_model.onnx_path.read_bytes(),
            json.loads(exported_model.export_metrics_path.read_text()),
        )
    }
    hyperparams = SMALL_MODELS["hist_gradient_boosting"]
    for task in ("multiclass", "regression"):
        contract, train, test = task_frames[task]
        model = fit_model(
            train,
            contract,
            ModelParams(type="hist_gradient_boosting", seed=1, hyperparams=hyperparams),
        )
        out[task] = (model, *export_model(model, test, contract, EXPORT))
    return out


@pytest.mark.parametrize(("model_type", "task"), sorted(REGISTRY))
def test_parity_holds_for_every_registered_model_type_of_every_task(
    model_type: str, task: str, task_frames: dict[str, Frames]
) -> None:
    contract, train, test = task_frames[task]
    model = fit_model(
        train, contract, ModelParams(type=model_type, seed=1, hyperparams=SMALL_MODELS[model_type])
    )
    onnx_bytes, metrics = export_model(model, test, contract, EXPORT)
    parity = metrics["parity"]
    assert parity.get("label_flips", 0) == 0  # none for a regressor, which has no label
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["tolerance"] == 1e-4
    assert set(parity["slices"]) == {"test", "all_missing_numeric", "unseen_categories"}
    assert metrics["onnx"]["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()


@pytest.mark.parametrize(
    ("task", "measure", "flips"),
    [
        ("binary", "max |Δp|", True),
        ("multiclass", "max |Δp|", True),
        ("regression", "max |Δŷ| / sd(y)", False),
    ],
)
def test_export_metrics_say_what_parity_measured(
    task: str,
    measure: str,
    flips: bool,
    exported: Exported,
) -> None:
    _, _, metrics = exported[task]
    parity = parse_export_metrics(metrics).parity  # the typed reader's shape
    assert parity.measure == measure
    assert (parity.label_flips is not None) is flips  # a regressor predicts no label
    assert all((s.label_flips is not None) is flips for s in parity.slices.values())


def run_onnx(
    exported: Exported, task_frames: dict[str, Frames], task: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The task's ONNX model run on its test rows (outputs by name), and scikit-learn's
    `predict` of the same rows."""
    model, onnx_bytes, _ = exported[task]
    contract, _, test = task_frames[task]
    session = onnx_session(onnx_bytes)
    features = model_frame(test, contract)
    outputs = session.run(None, onnx_feeds(features, contract))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, outputs, strict=True)), model.predict(features)


def test_a_multiclass_onnx_model_gives_the_class_index_and_k_probabilities(
    exported: Exported, task_frames: dict[str, Frames]
) -> None:
    outputs, predicted = run_onnx(exported, task_frames, "multiclass")
    assert list(outputs) == ["label", "probabilities"]  # no ZipMap
    label, probabilities = outputs["label"], outputs["probabilities"]
    assert label.dtype == np.int64 and label.shape == predicted.shape
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(label), 3)
    np.testing.assert_array_equal(label, probabilities.argmax(axis=1))
    np.testing.assert_array_equal(label, predicted)


def test_a_regression_onnx_model_gives_one_float_per_row(
    exported: Exported, task_frames: dict[str, Frames]
) -> None:
    outputs, predicted = run_onnx(exported, task_frames, "regression")
    assert list(outputs) == ["variable"]
    value = outputs["variable"]
    assert value.dtype == np.float32 and value.shape == (len(predicted), 1)
    np.testing.assert_allclose(value[:, 0], predicted, rtol=1e-5)


@pytest.mark.parametrize(
    ("task", "description"),
    [
        ("binary", "churn-model: probability that churned is true, from the raw contract columns"),
        (
            "multiclass",
            "wine-cultivar: probability of each class of cultivar (class_0, class_1, class_2, in "
            "this order), from the raw contract columns",
        ),
        (
            "regression",
            "diabetes-progression: predicted progression, from the raw contract columns",
        ),
    ],
)
def test_the_onnx_model_describes_what_it_predicts(
    task: str, description: str, exported: Exported
) -> None:
    _, onnx_bytes, _ = exported[task]
    assert onnx.load_from_string(onnx_bytes).doc_string == description


def test_regression_parity_failure_reports_the_difference_relative_to_the_targets_spread(
    exported: Exported,
    task_frames: dict[str, Frames],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, _, _ = exported["regression"]
    contract, _, test = task_frames["regression"]
    spread = float(np.std(test["progression"]))
    original = model.predict
    monkeypatch.setattr(model, "predict", lambda features: original(features) + 0.01 * spread)
    with pytest.raises(ExportError) as caught:
        export_model(model, test, contract, EXPORT)
    assert "test: max |Δŷ| / sd(y) = 0.01 (tolerance 0.0001) in 110 rows" in str(caught.value)


def test_onnx_takes_one_input_per_contract_feature(exported_model) -> None:
    graph = onnx.load_from_string(exported_model.onnx_path.read_bytes()).graph
    types = {i.name: TensorProto.DataType.Name(i.type.tensor_type.elem_type) for i in graph.input}
    contract = exported_model.contract
    assert list(types) == contract.feature_names
    for name in contract.categorical_features:
        assert types[name] == "STRING"
    for name in contract.numeric_features:
        assert types[name] == "FLOAT"


def test_onnx_outputs_label_and_probabilities_without_zipmap(exported_model) -> None:
    session = onnx_session(exported_model.onnx_path.read_bytes())
    features = model_frame(exported_model.test_frame.head(5), exported_model.contract)
    label, probabilities = session.run(None, onnx_feeds(features, exported_model.contract))
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    assert label.shape == (5,) and probabilities.shape == (5, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_export_is_byte_identical_for_the_same_model(exported_model) -> None:
    again = export_onnx(exported_model.model, exported_model.contract, 17)
    assert again == Path(exported_model.onnx_path).read_bytes()


@pytest.mark.parametrize(("task", "outputs"), [("multiclass", 2), ("regression", 1)])
def test_the_train_and_export_commands_ship_a_model_of_the_contracts_task(
    task: str, outputs: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = task_fixture(task)
    train, test = fixture.split()
    train.to_parquet(tmp_path / "train.parquet")
    test.to_parquet(tmp_path / "test.parquet")
    shared = ["--contract", str(fixture.contract_path), "--params", str(PARAMS_PATH)]
    model, onnx_path, metrics = (
        tmp_path / "model.joblib",
        tmp_path / "model.onnx",
        tmp_path / "e.json",
    )
    assert (
        main(["train", *shared, "--train", str(tmp_path / "train.parquet"), "--output", str(model)])
        == 0
    )
    exported = [
        "export",
        *shared,
        *("--model", str(model), "--test", str(tmp_path / "test.parquet")),
        *("--output", str(onnx_path), "--metrics", str(metrics)),
        *("--model-card", str(tmp_path / "card.md")),
    ]
    assert main(exported) == 0
    measure = json.loads(metrics.read_text())["parity"]["measure"]
    assert f"export: parity {measure} " in capsys.readouterr().out
    assert len(onnx.load(str(onnx_path)).graph.output) == outputs


def test_a_model_of_another_task_than_the_contracts_is_refused_before_converting(
    exported: Exported, task_frames: dict[str, Frames]
) -> None:
    regressor, _, _ = exported["regression"]
    contract, _, _ = task_frames["regression"]
    target = contract.column(contract.target)
    as_classes = replace(target, task="multiclass", classes=("1", "2", "3"))
    multiclass = replace(
        contract, columns=tuple(as_classes if c is target else c for c in contract.columns)
    )
    with pytest.raises(ExportError) as caught:
        export_onnx(regressor, multiclass, 17)
    assert str(caught.value) == (
        "the model is a regressor but the contract's task is multiclass, which needs a "
        "classifier: train it on this contract (`dvc repro train`)"
    )


class _HandWrittenClassifier(ClassifierMixin, BaseEstimator):
    """An estimator skl2onnx has never heard of."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return np.tile([0.5, 0.5], (len(X), 1))


def test_unconvertible_model_fails_export_with_the_converters_message(
    frames: tuple[pd.DataFrame, pd.DataFrame], contract: Contract
) -> None:
    train, _ = frames
    base = build_model(ModelParams(type="logistic_regression", seed=0, hyperparams={}), contract)
    model = Pipeline(
        [("preprocess", base.named_steps["preprocess"]), ("c", _HandWrittenClassifier())]
    )
    model.fit(model_frame(train, contract), train["churned"].astype(int))
    with pytest.raises(ExportError, match=r"skl2onnx cannot convert this model: .*HandWritten"):
        export_onnx(model, contract, 17)


def test_parity_failure_reports_the_numbers(
    exported_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = exported_model.model
    original = model.predict_proba

    def skewed(features):
        return np.clip(original(features) + np.array([0.01, -0.01]), 0, 1)

    monkeypatch.setattr(model, "predict_proba", skewed)
    with pytest.raises(ExportError, match=r"test: max \|Δp\| = 0\.01 \(tolerance 0\.0001\)"):
        export_model(model, exported_model.test_frame, exported_model.contract, EXPORT)


def test_the_opset_domains_are_serialised_in_one_order_whatever_order_they_came_in() -> None:
    """skl2onnx lists a model's opset domains in set order; the bytes (and the sha256 the
    bundle and the deploy check) must not depend on it."""

    def model(opsets: list[tuple[str, int]]) -> onnx.ModelProto:
        graph = onnx.helper.make_graph([], "g", [], [])
        imports = [onnx.helper.make_opsetid(domain, version) for domain, version in opsets]
        return onnx.helper.make_model(graph, opset_imports=imports)

    opsets = [("", 17), ("ai.onnx.ml", 3)]
    assert canonical_bytes(model(opsets)) == canonical_bytes(model(opsets[::-1]))


@pytest.mark.slow  # two export subprocesses
def test_export_bytes_do_not_depend_on_the_python_hash_seed(exported_model, tmp_path) -> None:
    """The whole export under two hash seeds: nothing else in it may follow set order."""
    script = (
        "import sys, joblib\n"
        "from gitops_ml.contract import load_contract\n"
        "from gitops_ml.pipeline.export import export_onnx\n"
        "model = joblib.load(sys.argv[1])\n"
        "sys.stdout.buffer.write(export_onnx(model, load_contract(sys.argv[2]), 17))\n"
    )
    model_path = tmp_path / "model.joblib"
    joblib.dump(exported_model.model, model_path)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, str(model_path), str(exported_model.contract_path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("0", "1")
    }
    assert len(outputs) == 1


def test_export_metrics_record_the_opsets_actually_used(exported_model) -> None:
    metrics = json.loads(exported_model.export_metrics_path.read_text())
    used = metrics["onnx"]["opset_used"]
    assert set(used) == {"ai.onnx", "ai.onnx.ml"}
    assert used["ai.onnx"] <= metrics["onnx"]["opset"]


def test_onnx_input_names_are_valid_unique_and_kept_when_already_valid() -> None:
    names = ["education-num", "plan type", "plan_type", "größe", "1st_score", "label", "age"]
    mapped = onnx_input_names(names)
    assert mapped == {
        "education-num": "education_num",
        "plan type": "plan_type_2",  # "plan_type" is a column of its own and keeps its name
        "plan_type": "plan_type",
        "größe": "gr__e",
        "1st_score": "_1st_score",
        "label": "label_2",  # never an output's name
        "age": "age",
    }
    assert len(set(mapped.values())) == len(names)


def odd_named(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    years = rng.integers(1, 17, rows)
    plan = rng.choice(["basic", "premium"], rows)
    noise = rng.normal(0, 1, rows)
    return pd.DataFrame(
        {
            "education-num": years,
            "plan type": plan,
            "rate.monthly": np.round(rng.uniform(10, 90, rows), 2),
            "größe": rng.choice(["S", "M", "L"], rows),
            "label": rng.choice(["x", "y"], rows),
            "income >50K": (years / 4 + (plan == "premium") + noise) > 3,
        }
    )


ODD_CONTRACT = {
    "name": "census",
    "encoding": {"strip": True},
    "columns": [
        {"name": "education-num", "type": "int"},
        {"name": "plan type", "type": "category", "checks": {"allowed": ["basic", "premium"]}},
        {"name": "rate.monthly", "type": "float"},
        {"name": "größe", "type": "category"},
        {"name": "label", "type": "category"},
        {"name": "income >50K", "type": "bool", "role": "target"},
    ],
}


@pytest.fixture(scope="module")
def odd_export() -> tuple[Contract, Pipeline, bytes, dict[str, Any]]:
    contract = parse_contract(ODD_CONTRACT)
    model = fit_model(
        odd_named(800, 1),
        contract,
        ModelParams(type="hist_gradient_boosting", seed=0, hyperparams={}),
    )
    onnx_bytes, metrics = export_model(model, odd_named(200, 2), contract, EXPORT)
    return contract, model, onnx_bytes, metrics


def test_a_model_on_any_column_names_exports_with_parity(
    odd_export: tuple[Contract, Pipeline, bytes, dict[str, Any]],
) -> None:
    """`education-num` used to crash the parity check: skl2onnx renamed the input."""
    contract, _, onnx_bytes, metrics = odd_export

    inputs = [i.name for i in onnx.load_from_string(onnx_bytes).graph.input]
    assert inputs == list(contract.onnx_inputs.values())
    assert inputs == ["education_num", "plan_type", "rate_monthly", "gr__e", "label_2"]
    assert metrics["parity"]["label_flips"] == 0


def test_serving_takes_and_shows_the_data_names_and_feeds_the_models(
    odd_export: tuple[Contract, Pipeline, bytes, dict[str, Any]], tmp_path: Path
) -> None:
    contract, model, onnx_bytes, _ = odd_export
    (tmp_path / "model.onnx").write_bytes(onnx_bytes)
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(ODD_CONTRACT, allow_unicode=True))
    served = load_model(tmp_path / "model.onnx", tmp_path / "schema.yaml", model_name="census")
    rows = odd_named(5, 3)
    padded = rows.assign(**{"plan type": " " + rows["plan type"]})  # read with encoding.strip

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(served))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return [
                await client.get("/v2/models/census"),
                await client.post("/predict", json=records(padded, contract)),
                await client.post("/v2/models/census/infer", json=v2_request(rows, contract)),
            ]

    metadata, predicted, inferred = asyncio.run(ask())

    assert [i["name"] for i in metadata.json()["inputs"]] == contract.feature_names
    expected = model.predict_proba(model_frame(rows, contract))[:, 1]
    assert predicted.status_code == inferred.status_code == 200
    by_record = [p["probability"] for p in predicted.json()["predictions"]]
    np.testing.assert_allclose(by_record, expected, atol=1e-5)
    (probabilities,) = [o for o in inferred.json()["outputs"] if o["name"] == "probabilities"]
    np.testing.assert_allclose(probabilities["data"][1::2], expected, atol=1e-5)
