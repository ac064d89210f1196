"""The supervised task a data contract declares, and the few facts that differ per task.

The target column says `task: binary | multiclass | regression` (data/schema.yaml). Every part
that depends on the task (estimators, metrics, gates, charts, ONNX outputs, parity, V2 outputs,
drift of predictions) looks its per-task facts up in a table keyed by the task: this one for what
is shared, its own module's table for what is its own (train's estimators, the metric registry's
metric sets). No `if task == ...` scattered through the code.

What a model predicts, per task, everywhere in the project (`predictions`):
- binary: the positive class's probability, shape (n,);
- multiclass: one probability per class in `Contract.classes` order, shape (n, k);
- regression: the predicted value, shape (n,).

Imported by serving: numpy only, nothing of the training stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Task = Literal["binary", "multiclass", "regression"]


def _positive_probability(model: Any, features: Any) -> np.ndarray:
    return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)


def _class_probabilities(model: Any, features: Any) -> np.ndarray:
    return np.asarray(model.predict_proba(features), dtype=np.float64)


def _predicted_value(model: Any, features: Any) -> np.ndarray:
    return np.asarray(model.predict(features), dtype=np.float64)


def _positive_column(numbers: np.ndarray) -> np.ndarray:
    return np.asarray(numbers[:, 1], dtype=np.float64)


def _every_column(numbers: np.ndarray) -> np.ndarray:
    return np.asarray(numbers, dtype=np.float64)


def _only_column(numbers: np.ndarray) -> np.ndarray:
    return np.asarray(numbers, dtype=np.float64).reshape(len(numbers))


@dataclass(frozen=True)
class TaskSpec:
    name: Task
    target_types: tuple[str, ...]  # contract types the target column may have
    classification: bool
    onnx_outputs: tuple[str, ...]  # the exported model's output names, in order
    v2_outputs: tuple[str, ...]  # the served model's V2 output tensors, the numbers last
    logged: str  # the prediction log's key of those numbers (docs/interfaces.md)
    predict: Callable[[Any, Any], np.ndarray]  # (fitted model, model_frame) → predictions
    from_onnx: Callable[[np.ndarray], np.ndarray]  # the last ONNX output → predictions
    predicts: str  # what the model outputs, for people ("the probability of each class")


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "binary",
            ("bool",),
            classification=True,
            onnx_outputs=("label", "probabilities"),
            v2_outputs=("label", "probabilities"),
            logged="score",
            predict=_positive_probability,
            from_onnx=_positive_column,
            predicts="the probability of the positive class",
        ),
        TaskSpec(
            "multiclass",
            ("category", "int"),
            classification=True,
            onnx_outputs=("label", "probabilities"),
            v2_outputs=("label", "probabilities"),
            logged="probabilities",
            predict=_class_probabilities,
            from_onnx=_every_column,
            predicts="the probability of each class",
        ),
        TaskSpec(
            "regression",
            ("float", "int"),
            classification=False,
            onnx_outputs=("variable",),
            v2_outputs=("predict",),
            logged="value",
            predict=_predicted_value,
            from_onnx=_only_column,
            predicts="the value of the target",
        ),
    )
}
# Every output name any task's model has: no input may take one of these names.
ONNX_OUTPUTS: tuple[str, ...] = tuple(
    dict.fromkeys(name for spec in TASKS.values() for name in spec.onnx_outputs)
)


def task_spec(task: str) -> TaskSpec:
    """The table row of `task`; a KeyError names the tasks there are."""
    found = TASKS.get(task)
    if found is None:
        raise KeyError(f"unknown task {task!r}; choose one of {list(TASKS)}")
    return found


def predictions(model: Any, features: Any, task: str) -> np.ndarray:
    """What a fitted scikit-learn model predicts for `features` (see the module docstring)."""
    return task_spec(task).predict(model, features)
