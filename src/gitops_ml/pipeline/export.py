"""export: convert the fitted Pipeline to ONNX; refuse to ship it unless it agrees with sklearn.

Parity is a gate, not a report: on the whole test set and on edge slices (every numeric feature
missing, every category unseen) ONNX and scikit-learn must agree, or the stage fails with the
numbers. What "agree" means depends on the task (`EXPORTS`): a classifier's largest absolute
probability difference stays within `export.parity_tolerance` with zero label flips; a
regressor's largest absolute prediction difference, relative to the standard deviation of the
target on the test rows, stays within `export.regression_parity_tolerance`.
"""

from __future__ import annotations

import argparse
import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import ExportParams, load_params
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.model_view import model_frame, onnx_feeds, target_vector
from gitops_ml.onnx_model import onnx_session
from gitops_ml.pipeline.model_card import model_card_from_files
from gitops_ml.pipeline.train import load_model
from gitops_ml.stage_metrics import parse_export_metrics
from gitops_ml.tasks import task_spec

UNSEEN_CATEGORY = "__unseen_category__"
ONNX_PATH = paths.MODEL_ONNX


class ExportError(UserError):
    """The model cannot be converted, or the converted model disagrees with scikit-learn."""

    exit_code = 1


@dataclass(frozen=True)
class SliceParity:
    rows: int
    max_abs_diff: float  # in the task's parity measure (ExportSpec.measure)
    label_flips: int | None  # None: the task predicts no label

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows, "max_abs_diff": float(f"{self.max_abs_diff:.3e}")}
        if self.label_flips is not None:
            out["label_flips"] = self.label_flips
        return out


def _probability_parity(
    model: Pipeline, outputs: list[np.ndarray], features: pd.DataFrame, scale: float
) -> SliceParity:
    label, proba = outputs
    return SliceParity(
        rows=len(features),
        max_abs_diff=float(np.max(np.abs(proba - model.predict_proba(features)))),
        label_flips=int(np.sum(label.reshape(-1) != model.predict(features))),
    )


def _prediction_parity(
    model: Pipeline, outputs: list[np.ndarray], features: pd.DataFrame, scale: float
) -> SliceParity:
    (value,) = outputs
    difference = np.abs(value.reshape(-1) - model.predict(features))
    return SliceParity(len(features), float(np.max(difference)) / scale, None)


def _unit_scale(test: pd.DataFrame, contract: Contract) -> float:
    """Probabilities are compared as they are."""
    return 1.0


def _target_sd(test: pd.DataFrame, contract: Contract) -> float:
    """A prediction difference counts relative to the spread of what is predicted: the
    standard deviation of the target on the test rows (1 when the target is constant there)."""
    return float(np.std(target_vector(test, contract))) or 1.0


@dataclass(frozen=True)
class ExportSpec:
    """What differs per task in the export (the output names are tasks.TASKS')."""

    options: dict[str, Any]  # skl2onnx options of the final estimator
    describe: Callable[[Contract], str]  # the ONNX model's doc_string
    measure: str  # what parity's max_abs_diff measures, for people
    scale: Callable[[pd.DataFrame, Contract], float]  # (test rows, contract) → divisor
    parity: Callable[[Pipeline, list[np.ndarray], pd.DataFrame, float], SliceParity]
    tolerance: Callable[[ExportParams], float]


def _classifier(describe: Callable[[Contract], str]) -> ExportSpec:
    """Classification tasks: probabilities without ZipMap, compared as they are, and labels."""
    return ExportSpec(
        options={"zipmap": False},
        describe=describe,
        measure="max |Δp|",
        scale=_unit_scale,
        parity=_probability_parity,
        tolerance=lambda params: params.parity_tolerance,
    )


EXPORTS: dict[str, ExportSpec] = {
    "binary": _classifier(
        lambda c: (
            f"{c.name}: probability that {c.target} is {c.positive_label}, "
            "from the raw contract columns"
        )
    ),
    "multiclass": _classifier(
        lambda c: (
            f"{c.name}: probability of each class of {c.target} "
            f"({', '.join(c.classes)}, in this order), from the raw contract columns"
        )
    ),
    "regression": ExportSpec(
        options={},
        describe=lambda c: f"{c.name}: predicted {c.target}, from the raw contract columns",
        measure="max |Δŷ| / sd(y)",
        scale=_target_sd,
        parity=_prediction_parity,
        tolerance=lambda params: params.regression_parity_tolerance,
    ),
}


def export_onnx(model: Pipeline, contract: Contract, opset: int) -> bytes:
    """Serialized ONNX: one [N, 1] input per feature (named by `Contract.onnx_inputs`), the
    task's outputs (`tasks.TASKS`: `label` and `probabilities`, or `variable`)."""
    names = contract.onnx_inputs
    spec = EXPORTS[contract.task]
    kind = {True: "classifier", False: "regressor"}
    has, needs = is_classifier(model), task_spec(contract.task).classification
    if has is not needs:
        raise ExportError(
            f"the model is a {kind[has]} but the contract's task is {contract.task}, which "
            f"needs a {kind[needs]}: train it on this contract (`dvc repro train`)"
        )
    initial_types = [
        (
            names[c.name],
            StringTensorType([None, 1]) if c.is_categorical else FloatTensorType([None, 1]),
        )
        for c in contract.features
    ]
    try:
        with warnings.catch_warnings():
            # skl2onnx 1.20 passes booleans where protobuf 6 expects ints: harmless below
            # protobuf 7, which is why pyproject pins protobuf<7.
            warnings.filterwarnings("ignore", ".*Expected an int, got a bool", DeprecationWarning)
            proto = convert_sklearn(
                model,
                name=contract.name,
                initial_types=initial_types,
                options={id(model): spec.options},
                target_opset={"": opset, "ai.onnx.ml": 3},
            )
    except Exception as exc:  # skl2onnx raises many types; the message is what users need
        raise ExportError(
            f"skl2onnx cannot convert this model: {type(exc).__name__}: {exc}"
        ) from None
    converted = [i.name for i in proto.graph.input]
    if converted != list(names.values()):
        raise ExportError(
            f"skl2onnx named the model's inputs {converted}, not {list(names.values())}: "
            "the model must be fitted on model_view.model_frame()"
        )
    outputs = [o.name for o in proto.graph.output]
    expected = list(task_spec(contract.task).onnx_outputs)
    if outputs != expected:
        raise ExportError(
            f"skl2onnx gave the model outputs {outputs}, not {expected} of a {contract.task} "
            "model: is it the model of this contract's task?"
        )
    proto.doc_string = spec.describe(contract)
    return canonical_bytes(proto)


def canonical_bytes(proto: onnx.ModelProto) -> bytes:
    """The model serialised with its opset domains sorted: skl2onnx lists them in set order,
    which can follow Python's hash seed, and the same model must give the same sha256."""
    opsets = sorted(proto.opset_import, key=lambda o: o.domain)
    del proto.opset_import[:]
    proto.opset_import.extend(opsets)
    return proto.SerializeToString()


def opset_versions(onnx_bytes: bytes) -> dict[str, int]:
    """Operator set actually used per domain (skl2onnx picks the lowest that suffices)."""
    model = onnx.load_from_string(onnx_bytes)
    return {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}


def edge_slices(features: pd.DataFrame, contract: Contract) -> dict[str, pd.DataFrame]:
    """The test rows as the model sees them, plus the two slices where conversions go wrong."""
    sample = features.head(100)
    all_missing = sample.copy()
    for name in contract.numeric_inputs:
        all_missing[name] = np.float32(np.nan)
    unseen = sample.copy()
    for name in contract.categorical_inputs:
        unseen[name] = UNSEEN_CATEGORY
    return {"test": features, "all_missing_numeric": all_missing, "unseen_categories": unseen}


def check_parity(
    model: Pipeline, onnx_bytes: bytes, test: pd.DataFrame, contract: Contract
) -> dict[str, SliceParity]:
    session = onnx_session(onnx_bytes)
    spec = EXPORTS[contract.task]
    outputs = list(task_spec(contract.task).onnx_outputs)
    scale = spec.scale(test, contract)
    # One OpenMP thread, as in train: HistGradientBoosting's threads spin between predictions
    # (a second of CPU per export on a 2-core runner) and the predictions are the same.
    with threadpool_limits(limits=1):
        return {
            name: spec.parity(
                model, session.run(outputs, onnx_feeds(features, contract)), features, scale
            )
            for name, features in edge_slices(model_frame(test, contract), contract).items()
        }


def parity_failures(parity: dict[str, SliceParity], tolerance: float, measure: str) -> list[str]:
    return [
        f"{name}: {measure} = {p.max_abs_diff:.3g} (tolerance {tolerance:g})"
        + ("" if p.label_flips is None else f", {p.label_flips} label flip(s)")
        + f" in {p.rows:,} rows"
        for name, p in parity.items()
        if p.max_abs_diff > tolerance or p.label_flips
    ]


def export_metrics(
    onnx_bytes: bytes, opset: int, parity: dict[str, SliceParity], tolerance: float, measure: str
) -> dict[str, Any]:
    flips = [p.label_flips for p in parity.values() if p.label_flips is not None]
    return {
        "onnx": {
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "size_bytes": len(onnx_bytes),
            "opset": opset,
            "opset_used": opset_versions(onnx_bytes),
            "path": ONNX_PATH,
            "inputs": len(onnx.load_from_string(onnx_bytes).graph.input),
        },
        "parity": {
            "measure": measure,
            "max_abs_diff": max(p.as_dict()["max_abs_diff"] for p in parity.values()),
            **({"label_flips": sum(flips)} if flips else {}),
            "rows_checked": sum(p.rows for p in parity.values()),
            "tolerance": tolerance,
            "slices": {name: p.as_dict() for name, p in parity.items()},
        },
        "versions": {
            package: metadata.version(package)
            for package in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime")
        },
    }


def export_model(
    model: Pipeline, test: pd.DataFrame, contract: Contract, params: ExportParams
) -> tuple[bytes, dict[str, Any]]:
    """Convert, check parity, and return the ONNX bytes with the export metrics."""
    onnx_bytes = export_onnx(model, contract, params.opset)
    parity = check_parity(model, onnx_bytes, test, contract)
    spec = EXPORTS[contract.task]
    tolerance = spec.tolerance(params)
    failures = parity_failures(parity, tolerance, spec.measure)
    if failures:
        raise ExportError("ONNX parity check failed:\n  " + "\n  ".join(failures))
    return onnx_bytes, export_metrics(onnx_bytes, params.opset, parity, tolerance, spec.measure)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=paths.MODEL_JOBLIB)
    parser.add_argument("--test", default=paths.TEST)
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--output", default=ONNX_PATH)
    parser.add_argument("--metrics", default=paths.EXPORT_METRICS)
    parser.add_argument("--model-card", default=paths.MODEL_CARD)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    params = load_params(args.params)
    export_params = ExportParams.from_params(params)
    contract = load_contract(args.contract)
    model = load_model(args.model)
    # Every test row at once: parity is a maximum over them that row groups could also give,
    # but the test set is a fifth of the table and export peaks at ~0.6 GB per million table
    # rows, half the pipeline's bound (docs/performance.md); evaluate sets the peak.
    test = gio.read_table(args.test)
    print(f"export: converting to ONNX (opset {export_params.opset})", flush=True)
    onnx_bytes, metrics = export_model(model, test, contract, export_params)
    gio.write_bytes(args.output, onnx_bytes)
    gio.write_json(args.metrics, metrics)
    card = model_card_from_files(
        params,
        contract,
        parse_export_metrics(metrics, args.metrics),
        metrics_dir=Path(args.metrics).parent,
    )
    gio.write_text(args.model_card, card)
    parity = metrics["parity"]
    flips = f", {parity['label_flips']} flips" if "label_flips" in parity else ""
    print(
        f"export: parity {parity['measure']} {parity['max_abs_diff']:.2e}{flips} "
        f"on {parity['rows_checked']:,} rows; wrote {args.output} "
        f"({metrics['onnx']['size_bytes'] / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return 0
