"""Loading the ONNX model, from a release bundle or a bare `model.onnx`, and running it.

The bytes handed to onnxruntime are the bytes whose sha256 was checked, and the session must
fit the contract, so a server never starts answering with a model it cannot vouch for.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import yaml

from gitops_ml import paths
from gitops_ml.contract import Contract, load_contract
from gitops_ml.onnx_model import ModelLoadError, check_signature, onnx_session, read_model
from gitops_ml.release import versions
from gitops_ml.release.bundle import load_bundle
from gitops_ml.stage_metrics import read_export_metrics
from gitops_ml.tasks import task_spec
from serving.outputs import OUTPUTS, Outputs, Prediction

FALLBACK_MODEL_NAME = "model"
DEV_VERSION = "dev"


@dataclass(frozen=True)
class ModelInfo:
    """What identifies the served model in its metadata, headers and metrics."""

    name: str
    version: str
    onnx_sha256: str
    git_revision: str
    source: str
    expected_sha256: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        """The metadata recorded a sha256 and the loaded bytes have it."""
        return self.expected_sha256 is not None and self.expected_sha256 == self.onnx_sha256


class Model:
    """An onnxruntime session that fits its contract, answering in the task's outputs."""

    def __init__(self, session: ort.InferenceSession, contract: Contract, info: ModelInfo) -> None:
        self.session = session
        self.contract = contract
        self.info = info
        self.outputs: Outputs = OUTPUTS[contract.task]
        self.onnx_outputs = list(task_spec(contract.task).onnx_outputs)
        self.classes = contract.classes
        check_signature(session, contract, info.source)

    def predict(self, feeds: dict[str, np.ndarray]) -> Prediction:
        return self.outputs.read(self.classes, *self.session.run(self.onnx_outputs, feeds))


def default_model_name(root: str | Path = ".") -> str:
    """A bare model is named after the project's data contract, as the pipeline's model is."""
    try:
        return versions.model_name(root)
    except (versions.VersionError, OSError, yaml.YAMLError):
        return FALLBACK_MODEL_NAME


def load_model(
    model_path: str | Path,
    contract_path: str | Path = paths.CONTRACT,
    metadata_path: str | Path | None = None,
    model_name: str | None = None,
) -> Model:
    """Load a bundle directory or a bare model.onnx; raise ModelLoadError with a clear cause."""
    path = Path(model_path)
    git_revision = os.environ.get("GIT_REVISION", "unknown")
    if path.is_dir():
        bundle = load_bundle(path)
        contract = bundle.contract
        name = model_name or bundle.model_name
        version = bundle.version
        expected: str | None = bundle.onnx_sha256
        git_revision = bundle.metadata.git_revision or git_revision
        metrics = bundle.metadata.metrics
        onnx_path = bundle.model_path
    else:
        contract = load_contract(contract_path)
        name = model_name or default_model_name()
        version = DEV_VERSION
        expected = None if metadata_path is None else read_export_metrics(metadata_path).onnx.sha256
        metrics = {}
        onnx_path = path
    onnx_bytes = read_model(onnx_path)
    sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    if expected is not None and sha256 != expected:
        raise ModelLoadError(
            f"{onnx_path}: sha256 {sha256[:12]}… does not match the recorded {expected[:12]}…; "
            "the model file is not the one its metadata describes"
        )
    info = ModelInfo(
        name=name,
        version=version,
        onnx_sha256=sha256,
        git_revision=git_revision,
        source=str(onnx_path),
        expected_sha256=expected,
        metrics=metrics,
    )
    return Model(onnx_session(onnx_bytes, str(onnx_path)), contract, info)
