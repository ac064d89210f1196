"""What a served model answers, per task (docs/serving.md, "Requests and answers"), from the
exported model's outputs (docs/interfaces.md, "The ONNX model").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from gitops_ml.contract import Contract
from gitops_ml.tasks import task_spec

LABEL, PROBABILITIES = task_spec("binary").v2_outputs  # a multiclass classifier's are the same
(PREDICT,) = task_spec("regression").v2_outputs
# The numbers' keys in the prediction log (beside a classifier's "label"), also the task table's.
SCORE, CLASS_PROBABILITIES, VALUE = (
    task_spec(task).logged for task in ("binary", "multiclass", "regression")
)


@dataclass(frozen=True)
class Prediction:
    """The model's answer for n rows: `labels` int64 [n] (indices into `classes`) and
    `probabilities` float32 [n, k] from a classifier, `values` float [n] from a regressor."""

    classes: Sequence[str] = ()
    labels: Any = None
    probabilities: Any = None
    values: Any = None


def _classifier(classes: Sequence[str], labels: Any, probabilities: Any) -> Prediction:
    return Prediction(classes, np.asarray(labels), np.asarray(probabilities))


def _regressor(classes: Sequence[str], values: Any) -> Prediction:
    return Prediction(classes, values=np.asarray(values, dtype=np.float64).reshape(-1))


def tensor(
    name: str, datatype: str, shape: list[int], data: list[Any] | None = None, **parameters: Any
) -> dict[str, Any]:
    """A V2 tensor's metadata, and an output tensor's `data`."""
    described: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    if parameters:
        described["parameters"] = parameters
    if data is not None:
        described["data"] = data
    return described


@dataclass(frozen=True)
class Outputs:
    """One task's answers: `read` (classes, *ONNX outputs) → Prediction, the V2 tensors and
    their metadata, the `/predict` answers and their documented fields, what the model
    metadata adds, the prediction log's columns, and the score histogram's number per row
    (`score_buckets` None: no fixed range, no histogram)."""

    read: Callable[..., Prediction]
    v2: Callable[[Prediction], list[dict[str, Any]]]
    v2_metadata: Callable[[Sequence[str]], list[dict[str, Any]]]
    record: Callable[[Prediction], list[dict[str, Any]]]
    record_fields: Callable[[Contract], dict[str, Any]]
    parameters: Callable[[Contract], dict[str, Any]]
    logged: Callable[[Prediction], dict[str, Any]]
    score: Callable[[Prediction], np.ndarray]
    score_help: str
    score_buckets: tuple[float, ...] | None


PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
OUTPUTS: dict[str, Outputs] = {
    "binary": Outputs(
        read=_classifier,
        v2=lambda p: [
            tensor(LABEL, "INT64", [len(p.labels)], p.labels.tolist()),
            tensor(PROBABILITIES, "FP32", [len(p.labels), 2], p.probabilities.ravel().tolist()),
        ],
        v2_metadata=lambda _: [
            tensor(LABEL, "INT64", [-1]),
            tensor(PROBABILITIES, "FP32", [-1, 2]),
        ],
        record=lambda p: [
            {"label": label, "probability": score}
            for label, score in zip(p.labels.tolist(), p.probabilities[:, 1].tolist(), strict=True)
        ],
        record_fields=lambda contract: {
            "label": (Literal[0, 1], Field(description="1 for the positive class")),
            "probability": (
                float,
                Field(
                    ge=0,
                    le=1,
                    description="probability of the positive class "
                    f"({contract.target} = {contract.positive_label})",
                ),
            ),
        },
        parameters=lambda contract: {"positive_label": contract.positive_label},
        logged=lambda p: {"label": p.labels, SCORE: p.probabilities[:, 1]},
        score=lambda p: p.probabilities[:, 1],
        score_help="Predicted probability of the positive class per row",
        score_buckets=PROBABILITY_BUCKETS,
    ),
    "multiclass": Outputs(
        read=_classifier,
        v2=lambda p: [
            tensor(
                LABEL,
                "BYTES",
                [len(p.labels)],
                [p.classes[i] for i in p.labels.tolist()],
                classes=list(p.classes),
            ),
            tensor(
                PROBABILITIES,
                "FP32",
                list(p.probabilities.shape),
                p.probabilities.ravel().tolist(),
                classes=list(p.classes),
            ),
        ],
        v2_metadata=lambda classes: [
            tensor(LABEL, "BYTES", [-1], classes=list(classes)),
            tensor(PROBABILITIES, "FP32", [-1, len(classes)], classes=list(classes)),
        ],
        record=lambda p: [
            {"label": p.classes[label], "probabilities": dict(zip(p.classes, row, strict=True))}
            for label, row in zip(p.labels.tolist(), p.probabilities.tolist(), strict=True)
        ],
        record_fields=lambda contract: {
            "label": (
                Literal[tuple(contract.classes)],
                Field(description=f"the predicted {contract.target}"),
            ),
            "probabilities": (
                dict[str, float],
                Field(
                    description="the probability of each class",
                    examples=[dict.fromkeys(contract.classes, round(1 / len(contract.classes), 3))],
                ),
            ),
        },
        parameters=lambda contract: {"classes": list(contract.classes)},
        logged=lambda p: {
            "label": [p.classes[i] for i in p.labels.tolist()],
            CLASS_PROBABILITIES: p.probabilities,
        },
        score=lambda p: p.probabilities[np.arange(len(p.labels)), p.labels],
        score_help="Predicted probability of the predicted class per row",
        score_buckets=PROBABILITY_BUCKETS,
    ),
    "regression": Outputs(
        read=_regressor,
        v2=lambda p: [tensor(PREDICT, "FP64", [len(p.values)], p.values.tolist())],
        v2_metadata=lambda _: [tensor(PREDICT, "FP64", [-1])],
        record=lambda p: [{"prediction": value} for value in p.values.tolist()],
        record_fields=lambda contract: {
            "prediction": (float, Field(description=f"the predicted {contract.target}"))
        },
        parameters=lambda _: {},
        logged=lambda p: {VALUE: p.values},
        score=lambda p: p.values,
        score_help="Predicted value per row",
        score_buckets=None,
    ),
}
