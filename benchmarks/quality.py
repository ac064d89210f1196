"""Quality: the default pipeline against a plain scikit-learn fit, on real data of each task.

Each data set scikit-learn ships (no download) is written to a CSV file as a user would bring it:
diabetes (regression: disease progression, a number), wine (multiclass: three cultivars, spelt
as names), breast cancer (binary: malignant or benign). The project's own functions then run
on it as `make run` does, with this checkout's params.yaml: `schema infer` drafts the contract
(no hand edit), validate, split, train, evaluate. The same estimator with the same
hyperparameters and seed is fitted plainly (scikit-learn on the numeric columns, no project code)
on the same training rows and scored on the same test rows. The two test metrics, side by side,
should agree within 0.01: the template adds no quality loss.

Usage: .venv/bin/python benchmarks/quality.py [--params params.yaml]  (make bench-quality)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets, metrics
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import EvaluateParams, ModelParams, SplitParams, load_params
from gitops_ml.contract import Contract
from gitops_ml.errors import UserError
from gitops_ml.metric_registry import metric_sets
from gitops_ml.pipeline.evaluate import evaluate
from gitops_ml.pipeline.split import Split, split_frame
from gitops_ml.pipeline.train import fit_model, model_rows
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.schema_infer import (
    ClassMinimum,
    TargetChoice,
    infer_contract,
    read_sample,
    sniff_layout,
)

TOLERANCE = 0.01
PLAIN_MODEL = "hist_gradient_boosting"  # the default model.type, fitted plainly below
ESTIMATORS = {
    "binary": HistGradientBoostingClassifier,
    "multiclass": HistGradientBoostingClassifier,
    "regression": HistGradientBoostingRegressor,
}
# Each task's headline metric (the metric registry's `headline`), scored on the plain fit by
# scikit-learn's own function.
Scorer = Callable[[Any, np.ndarray, pd.Series], float]
PLAIN_SCORES: dict[str, Scorer] = {
    "roc_auc": lambda model, x, y: float(metrics.roc_auc_score(y, model.predict_proba(x)[:, 1])),
    "macro_f1": lambda model, x, y: float(metrics.f1_score(y, model.predict(x), average="macro")),
    "r2": lambda model, x, y: float(metrics.r2_score(y, model.predict(x))),
}


def diabetes() -> pd.DataFrame:
    return datasets.load_diabetes(as_frame=True, scaled=False).frame


def wine() -> pd.DataFrame:
    frame = datasets.load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map(lambda i: f"class_{i}")
    return frame


def breast_cancer() -> pd.DataFrame:
    frame = datasets.load_breast_cancer(as_frame=True).frame
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    return frame


DATA_SETS: dict[str, Callable[[], pd.DataFrame]] = {
    "diabetes": diabetes,
    "wine": wine,
    "breast_cancer": breast_cancer,
}


@dataclass(frozen=True)
class Outcome:
    data_set: str
    rows: int
    task: str = "?"
    metric: str = "?"
    pipeline: float | None = None
    plain: float | None = None
    error: str = ""

    @property
    def within(self) -> bool:
        return (
            self.pipeline is not None
            and self.plain is not None
            and abs(self.pipeline - self.plain) <= TOLERANCE
        )


def project_run(path: Path, params: dict[str, Any]) -> tuple[Contract, Split, dict[str, Any]]:
    """The file through the project's own functions: schema infer, validate, split, train,
    evaluate; the contract, the split and evaluate's test metrics."""
    layout = sniff_layout(read_sample(str(path)))
    raw = gio.read_table(path, raw_text=True, layout=layout.csv)
    choice = TargetChoice(minimum=ClassMinimum.from_params(params))
    contract = infer_contract(raw, path.name, path.stem, choice, layout).contract
    validated = validate_frame(raw, contract)
    if validated.frame is None:
        raise UserError("; ".join(failure.line() for failure in validated.failures))
    evaluate_params = EvaluateParams.from_params(params)
    split_params = SplitParams.from_params(params)
    split = split_frame(validated.frame, contract, split_params, evaluate_params.cv_folds)
    model_params = ModelParams.from_params(params)
    model = fit_model(split.train, contract, model_params)
    evaluation = evaluate(
        model,
        model_rows(split.train, contract),
        split.test,
        contract,
        model_params,
        evaluate_params,
    )
    return contract, split, evaluation.metrics["test"]


def plain_run(contract: Contract, split: Split, model_params: ModelParams) -> float:
    """The same estimator fitted by scikit-learn alone on the same rows, scored on the same
    test rows: the features as float64 columns, the target as the data spells it."""
    features, target = contract.feature_names, contract.target
    estimator = ESTIMATORS[contract.task](**model_params.hyperparams)
    estimator.set_params(random_state=model_params.seed)
    estimator.fit(split.train[features].to_numpy(dtype=np.float64), split.train[target])
    score = PLAIN_SCORES[metric_sets(contract.task).headline]
    return score(estimator, split.test[features].to_numpy(dtype=np.float64), split.test[target])


def compare(name: str, directory: Path, params: dict[str, Any]) -> Outcome:
    frame = DATA_SETS[name]()
    path = directory / f"{name}.csv"
    frame.to_csv(path, index=False)
    try:
        contract, split, test = project_run(path, params)
    except (UserError, ValueError) as exc:
        return Outcome(name, len(frame), error=f"pipeline: {exc}")
    metric = metric_sets(contract.task).headline
    plain = plain_run(contract, split, ModelParams.from_params(params))
    return Outcome(name, len(frame), contract.task, metric, test.get(metric), plain)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=paths.PARAMS)
    args = parser.parse_args()
    params = load_params(args.params)
    model_type = ModelParams.from_params(params).type
    if model_type != PLAIN_MODEL:
        sys.exit(f"{args.params}: model.type is {model_type!r}; this benchmark fits {PLAIN_MODEL}")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as scratch:
        outcomes = [compare(name, Path(scratch), params) for name in DATA_SETS]
    print(f"quality benchmark: {args.params}, model.type {model_type}, |Δ| ≤ {TOLERANCE}\n")
    print(f"{'data set':<15}{'rows':>6}  {'task':<11}{'metric':<10}{'pipeline':>9}{'plain':>9}"
          f"{'|Δ|':>8}  verdict")  # fmt: skip
    for o in outcomes:
        if o.error:
            print(f"{o.data_set:<15}{o.rows:>6}  FAILED {o.error}")
            continue
        pipeline = "-" if o.pipeline is None else f"{o.pipeline:.4f}"
        delta = "-" if o.pipeline is None or o.plain is None else f"{abs(o.pipeline - o.plain):.4f}"
        print(
            f"{o.data_set:<15}{o.rows:>6}  {o.task:<11}{o.metric:<10}{pipeline:>9}"
            f"{o.plain:>9.4f}{delta:>8}  {'ok' if o.within else 'MISSED'}"
        )
    ok = all(o.within for o in outcomes)
    print("\nwithin tolerance on every data set" if ok else "\nTOLERANCE MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
