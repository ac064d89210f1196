"""The exported model opens one way everywhere: a file that is missing, not ONNX, or the model
of another contract is a ModelLoadError naming the file and what differs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gitops_ml.contract import load_contract
from gitops_ml.model_view import model_frame, onnx_feeds
from gitops_ml.onnx_model import (
    ModelLoadError,
    check_signature,
    onnx_session,
    predict,
    read_model,
)
from gitops_ml.tasks import predictions


def test_the_exported_model_opens_and_fits_its_contract(exported_model: Any) -> None:
    data = read_model(exported_model.onnx_path)
    session = onnx_session(data, str(exported_model.onnx_path))

    check_signature(session, exported_model.contract, "model.onnx")

    options = session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)


def test_the_model_predicts_what_the_fitted_pipeline_predicts_in_the_same_shape(
    exported_model: Any,
) -> None:
    contract, test = exported_model.contract, exported_model.test_frame.head(200)
    features = model_frame(test, contract)
    session = onnx_session(read_model(exported_model.onnx_path))

    served = predict(session, onnx_feeds(features, contract), contract.task)

    fitted = predictions(exported_model.model, features, contract.task)
    assert served.shape == fitted.shape == (200,)
    assert np.allclose(served, fitted, atol=1e-4)


def test_a_missing_file_or_a_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.onnx: model file not found"):
        read_model(tmp_path / "nope.onnx")
    with pytest.raises(ModelLoadError, match="is a directory, not a model file"):
        read_model(tmp_path)


def test_bytes_that_are_not_onnx_are_refused_with_the_runtime_s_first_line() -> None:
    with pytest.raises(ModelLoadError, match=r"^upload\.onnx: not a loadable ONNX model: \S"):
        onnx_session(b"not a model", "upload.onnx")


def test_the_model_of_another_contract_is_refused_naming_the_inputs_that_differ(
    exported_model: Any, tmp_path: Path
) -> None:
    raw = yaml.safe_load(exported_model.contract_path.read_text())
    features = [c for c in raw["columns"] if c.get("role", "feature") == "feature"]
    dropped = features[0]["name"]
    raw["columns"] = [c for c in raw["columns"] if c["name"] != dropped]
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump(raw))
    other = load_contract(tmp_path / "schema.yaml")
    session = onnx_session(read_model(exported_model.onnx_path))

    with pytest.raises(ModelLoadError) as refused:
        check_signature(session, other, "model.onnx")

    message = str(refused.value)
    assert message.startswith("model.onnx: the model's inputs do not match the data contract")
    assert f"not in contract: ['{exported_model.contract.onnx_inputs[dropped]}']" in message
