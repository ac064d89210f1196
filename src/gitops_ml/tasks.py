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
    # The model's numbers (scikit-learn's predict_proba or predict, the last ONNX output) →
    # predictions.
    from_numbers: Callable[[np.ndarray], np.ndarray]
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
            from_numbers=_positive_column,
            predicts="the probability of the positive class",
        ),
        TaskSpec(
            "multiclass",
            ("category", "int"),
            classification=True,
            onnx_outputs=("label", "probabilities"),
            v2_outputs=("label", "probabilities"),
            logged="probabilities",
            from_numbers=_every_column,
            predicts="the probability of each class",
        ),
        TaskSpec(
            "regression",
            ("float", "int"),
            classification=False,
            onnx_outputs=("variable",),
            v2_outputs=("predict",),
            logged="value",
            from_numbers=_only_column,
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
    spec = task_spec(task)
    numbers = model.predict_proba(features) if spec.classification else model.predict(features)
    return spec.from_numbers(numbers)
