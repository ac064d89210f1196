"""The exported ONNX model, opened one way wherever it runs: export's parity check, the review's
paired comparison, the deploy smoke test, the drift check's scorer and the server.

Imported by serving: onnxruntime and the contract only, nothing of the training stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from gitops_ml.contract import Contract
from gitops_ml.errors import UserError
from gitops_ml.tasks import task_spec


class ModelLoadError(UserError):
    """The model is missing, corrupt, or not the model of the data contract."""


def session_options() -> ort.SessionOptions:
    """One intra-op and one inter-op thread: one request at a time per core beats sharing, and
    the offline tools run beside the pipeline's own threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def read_model(path: str | Path) -> bytes:
    """The model file's bytes, the ones whose sha256 a caller checks and hands to `onnx_session`."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: model file not found") from None
    except IsADirectoryError:
        raise ModelLoadError(f"{path}: is a directory, not a model file") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the model: {exc.strerror}") from None


def onnx_session(onnx_bytes: bytes, source: str = "the model") -> ort.InferenceSession:
    """A session on the bytes themselves (not a path), so what runs is what was hashed."""
    try:
        return ort.InferenceSession(
            onnx_bytes, sess_options=session_options(), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad models
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{source}: not a loadable ONNX model: {first_line}") from None


def check_signature(session: ort.InferenceSession, contract: Contract, source: str) -> None:
    """The ONNX inputs must be the contract's features, the outputs its task's."""
    actual = {i.name: i.type for i in session.get_inputs()}
    expected = {
        contract.onnx_inputs[column.name]: (
            "tensor(string)" if column.type == "category" else "tensor(float)"
        )
        for column in contract.features
    }
    if actual != expected:
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        wrong = sorted(n for n in set(actual) & set(expected) if actual[n] != expected[n])
        raise ModelLoadError(
            f"{source}: the model's inputs do not match the data contract "
            f"(missing: {missing or 'none'}, not in contract: {extra or 'none'}, "
            f"wrong type: {wrong or 'none'}); use the contract it was trained on"
        )
    outputs = list(task_spec(contract.task).onnx_outputs)
    found = {o.name for o in session.get_outputs()}
    if not set(outputs) <= found:
        raise ModelLoadError(
            f"{source}: the model has outputs {sorted(found)}; the contract's task expects "
            f"{outputs} (a classifier exported with zipmap=False, a regressor's one output): "
            "use the contract it was trained on"
        )


def predict(session: ort.InferenceSession, feeds: dict[str, Any], task: str) -> np.ndarray:
    """What the model predicts for `feeds`, in the shape `gitops_ml.tasks.predictions` gives."""
    spec = task_spec(task)
    (numbers,) = session.run([spec.onnx_outputs[-1]], feeds)
    return spec.from_numbers(numbers)
