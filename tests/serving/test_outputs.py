"""Every task served (issue 23): a regressor's `predict` (FP64 [n]) and a multiclass classifier's
class names with their probabilities, in the V2 metadata and outputs and in `/predict`, with the
same validation and limits as the binary model. The models are small scikit-learn fits of the
fixture projects' real data (diabetes: regression, wine: multiclass), converted here with
skl2onnx as the export stage converts (a regressor's one float output, a classifier's label
index and probabilities without ZipMap)."""

from __future__ import annotations

import asyncio
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from project_fixtures import TaskFixture, task_fixture
from serving_support import capture_log, captured_lines, ship
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.monitor.readers import iter_chunks
from gitops_ml.onnx_model import ModelLoadError
from gitops_ml.tasks import task_spec
from gitops_ml.v2_request import records, v2_request
from serving.app import create_app
from serving.model import Model, load_model
from serving.settings import Settings

ESTIMATORS = {
    "regression": HistGradientBoostingRegressor,
    "multiclass": HistGradientBoostingClassifier,
}
ROWS = 8


@dataclass(frozen=True)
class Served:
    task: str
    fixture: TaskFixture
    fitted: Pipeline
    onnx_path: Path
    model: Model
    test: pd.DataFrame  # ROWS test rows, target dropped

    def expected(self) -> Any:
        """What scikit-learn predicts for the test rows: values, or (labels, probabilities)."""
        features = model_frame(self.test, self.fixture.contract)
        if self.task == "regression":
            return self.fitted.predict(features)
        return self.fitted.predict(features), self.fitted.predict_proba(features)


def export(fixture: TaskFixture, task: str, path: Path) -> Pipeline:
    """A small model of the fixture's task, fitted and written to `path` as ONNX."""
    contract = fixture.contract
    train, _ = fixture.split()
    features = model_frame(train, contract)
    names = list(features.columns)  # every feature of both fixtures is numeric
    estimator = ESTIMATORS[task](max_iter=20, random_state=0)
    fitted = Pipeline(
        [("columns", ColumnTransformer([("numbers", "passthrough", names)])), ("model", estimator)]
    ).fit(features, target_vector(train, contract))
    onnx = convert_sklearn(
        fitted,
        initial_types=[(name, FloatTensorType([None, 1])) for name in names],
        options={id(estimator): {"zipmap": False}} if task != "regression" else None,
        target_opset=17,
    )
    path.write_bytes(onnx.SerializeToString())
    return fitted


@pytest.fixture(scope="module", params=["regression", "multiclass"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Served:
    task = request.param
    fixture = task_fixture(task)
    path = tmp_path_factory.mktemp(task) / "model.onnx"
    fitted = export(fixture, task, path)
    model = load_model(path, fixture.contract_path, model_name=fixture.contract.name)
    _, test = fixture.split()
    return Served(task, fixture, fitted, path, model, test.iloc[:ROWS])


def call(app: Any, *requests: tuple[str, str, Any]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            answers = []
            async with app.router.lifespan_context(app):
                for method, path, body in requests:
                    answers.append(await client.request(method, path, json=body))
            return answers

    return asyncio.run(run())


def infer_path(served: Served) -> str:
    return f"/v2/models/{served.fixture.contract.name}/infer"


def test_the_v2_metadata_names_each_tasks_outputs(served: Served) -> None:
    contract = served.fixture.contract
    (answer,) = call(create_app(served.model), ("GET", f"/v2/models/{contract.name}", None))
    metadata = answer.json()

    assert metadata["parameters"]["task"] == served.task
    if served.task == "regression":
        assert metadata["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        assert "positive_label" not in metadata["parameters"]
    else:
        classes = ["class_0", "class_1", "class_2"]
        assert metadata["outputs"] == [
            {
                "name": "label",
                "datatype": "BYTES",
                "shape": [-1],
                "parameters": {"classes": classes},
            },
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [-1, 3],
                "parameters": {"classes": classes},
            },
        ]
        assert metadata["parameters"]["classes"] == classes


def test_v2_infer_answers_with_the_tasks_outputs_as_scikit_learn_predicts(served: Served) -> None:
    contract = served.fixture.contract
    body = v2_request(served.test.drop(columns=[contract.target]), contract)
    (answer,) = call(create_app(served.model), ("POST", infer_path(served), body))

    assert answer.status_code == 200, answer.text
    outputs = {tensor["name"]: tensor for tensor in answer.json()["outputs"]}
    assert outputs.pop(contract.id_column)["data"] == served.test[contract.id_column].tolist()
    if served.task == "regression":
        (predict,) = outputs.values()
        assert (predict["name"], predict["datatype"], predict["shape"]) == (
            "predict",
            "FP64",
            [ROWS],
        )
        assert predict["data"] == pytest.approx(served.expected().tolist(), rel=1e-4)
    else:
        labels, probabilities = served.expected()
        classes = list(contract.classes)
        label, scores = outputs["label"], outputs["probabilities"]
        assert (label["datatype"], label["shape"]) == ("BYTES", [ROWS])
        assert label["data"] == [classes[i] for i in labels]
        assert label["parameters"] == scores["parameters"] == {"classes": classes}
        assert (scores["datatype"], scores["shape"]) == ("FP32", [ROWS, 3])
        assert scores["data"] == pytest.approx(probabilities.ravel().tolist(), abs=1e-5)


def test_predict_answers_a_prediction_or_a_label_with_probabilities_keyed_by_class(
    served: Served,
) -> None:
    contract = served.fixture.contract
    body = records(served.test.drop(columns=[contract.target]), contract)
    (answer,) = call(create_app(served.model), ("POST", "/predict", body))

    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    ids = [prediction.pop(contract.id_column) for prediction in predictions]
    assert ids == served.test[contract.id_column].tolist()
    if served.task == "regression":
        assert [set(p) for p in predictions] == [{"prediction"}] * ROWS
        got = [p["prediction"] for p in predictions]
        assert got == pytest.approx(served.expected().tolist(), rel=1e-4)
    else:
        labels, probabilities = served.expected()
        classes = list(contract.classes)
        assert [p["label"] for p in predictions] == [classes[i] for i in labels]
        assert [list(p["probabilities"]) for p in predictions] == [classes] * ROWS
        got = [list(p["probabilities"].values()) for p in predictions]
        assert np.allclose(got, probabilities, atol=1e-5)


def test_the_same_validation_and_limits_hold_for_every_task(served: Served) -> None:
    contract = served.fixture.contract
    frame = served.test.drop(columns=[contract.target])
    feature = contract.features[0].name
    too_many = records(pd.concat([frame] * 2), contract)
    wrong = records(frame.iloc[:1], contract)
    wrong[0][feature] = "not a number"
    asks = {**v2_request(frame.iloc[:1], contract), "outputs": [{"name": "score"}]}
    app = create_app(served.model, Settings(max_rows=ROWS))

    answers = call(
        app,
        ("POST", "/predict", too_many),
        ("POST", "/predict", wrong),
        ("POST", infer_path(served), asks),
    )

    assert [a.status_code for a in answers] == [413, 422, 400]
    assert f'field {feature!r}: row 0 is "not a number"' in answers[1].json()["error"]
    names = "predict" if served.task == "regression" else "label and probabilities"
    assert (
        answers[2]
        .json()["error"]
        .endswith(f"unknown output 'score'; the outputs are {names} and {contract.id_column}")
    )


def test_the_openapi_document_describes_the_tasks_answer(served: Served) -> None:
    (answer,) = call(create_app(served.model), ("GET", "/openapi.json", None))
    document = answer.json()
    schemas = document["components"]["schemas"]
    fields = set(schemas["Prediction"]["properties"]) - {served.fixture.contract.id_column}

    assert fields == ({"prediction"} if served.task == "regression" else {"label", "probabilities"})
    answer = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    (example, *_) = answer["application/json"]["example"]["predictions"]
    assert set(example) - {served.fixture.contract.id_column} == fields, "the model's own answer"
    if served.task == "multiclass":
        assert schemas["Prediction"]["properties"]["label"]["enum"] == [
            "class_0",
            "class_1",
            "class_2",
        ]


def test_capture_keeps_the_value_or_the_class_and_its_probability(
    served: Served, tmp_path: Path
) -> None:
    """The documented prediction keys of each task (docs/interfaces.md): a regressor's
    `value`; a multiclass classifier's `label` as the contract spells the class and one
    probability per class in the contract's order."""
    contract = served.fixture.contract
    log = capture_log(tmp_path, 1.0, contract.name, "dev", served.fixture.contract_path)
    body = v2_request(served.test.iloc[:2].drop(columns=[contract.target]), contract)
    call(create_app(served.model, prediction_log=log), ("POST", infer_path(served), body))
    ship(log)

    lines = [line["prediction"] for line in captured_lines(tmp_path / "store")]
    if served.task == "regression":
        assert [list(line) for line in lines] == [["value"]] * 2
        expected = served.expected()[:2].tolist()
        assert [line["value"] for line in lines] == pytest.approx(expected, rel=1e-4)
    else:
        assert [list(line) for line in lines] == [["label", "probabilities"]] * 2
        labels, probabilities = served.expected()
        classes = served.fixture.contract.classes
        assert [line["label"] for line in lines] == [classes[i] for i in labels[:2]]
        got = [line["probabilities"] for line in lines]
        assert np.allclose(got, probabilities[:2], atol=1e-5)


def test_the_drift_check_reads_the_logged_predictions_in_its_tasks_shape(
    served: Served, tmp_path: Path
) -> None:
    """What the server captures is the drift check's input: read back by the monitor's one
    prediction-log reader, the predictions are the model's (the value per row, or one
    probability per class)."""
    contract = served.fixture.contract
    log = capture_log(tmp_path, 1.0, contract.name, "dev", served.fixture.contract_path)
    body = v2_request(served.test.drop(columns=[contract.target]), contract)
    call(create_app(served.model, prediction_log=log), ("POST", infer_path(served), body))
    ship(log)

    (chunk,) = iter_chunks(sorted((tmp_path / "store").rglob("*.jsonl.gz")), contract, 1000)

    expected = served.expected()
    expected = expected if served.task == "regression" else expected[1]
    assert chunk.rows == ROWS and chunk.predictions is not None
    assert np.allclose(chunk.predictions, expected, rtol=1e-4, atol=1e-5)


def test_the_capture_sidecar_ships_the_same_prediction_keys_from_the_bodies_it_reads(
    served: Served, tmp_path: Path
) -> None:
    """The server writes each body as received with its predictions; the sidecar reads the
    body with the server's parser (the task's outputs included) and ships the lines the log
    would hold."""
    contract = served.fixture.contract
    log = capture_log(tmp_path, 1.0, contract.name, "dev", served.fixture.contract_path)
    body = v2_request(served.test.drop(columns=[contract.target]), contract)
    asks = {
        **body,
        "outputs": [{"name": name} for name in task_spec(contract.task).v2_outputs],
    }
    call(create_app(served.model, prediction_log=log), ("POST", infer_path(served), asks))
    ship(log)

    (shipped,) = (tmp_path / "store").rglob("*.jsonl.gz")
    lines = [json.loads(line) for line in gzip.decompress(shipped.read_bytes()).splitlines()]
    (chunk,) = iter_chunks([shipped], contract, chunk_rows=1000)
    expected = served.expected()
    expected = expected if served.task == "regression" else expected[1]
    assert [line["id"] for line in lines] == served.test[contract.id_column].tolist()
    assert chunk.predictions is not None and np.allclose(chunk.predictions, expected, atol=1e-4)


OTHER_TASK = {  # the target of each fixture contract, declared as the other task
    "regression": {"task": "multiclass", "classes": [25, 50, 75]},
    "multiclass": {"task": "regression", "type": "float", "classes": None},
}


def test_a_model_of_another_task_is_refused_at_load_naming_the_outputs_expected(
    served: Served, tmp_path: Path
) -> None:
    """Same features, same data, the target declared as the other task: the model's outputs
    are not that task's, and the server does not start."""
    raw = yaml.safe_load(served.fixture.contract_path.read_text())
    target = next(column for column in raw["columns"] if column.get("role") == "target")
    target.update(OTHER_TASK[served.task])
    contract_path = tmp_path / "schema.yaml"
    contract_path.write_text(yaml.safe_dump(raw))

    with pytest.raises(ModelLoadError) as refused:
        load_model(served.onnx_path, contract_path)

    expected = ["label", "probabilities"] if served.task == "regression" else ["variable"]
    assert f"the contract's task expects {expected}" in str(refused.value)
