"""The done-when test of the paired review (issues 11 and 23): on ≈1,500 test rows the default
gates of each task neither fail on randomness nor miss a genuinely weaker model.

For each task (binary: the churn generator; multiclass and regression: data generated here with
a known strongest feature), forty pull requests, run on the pure functions (train in process, no
DVC): 20 change only randomness (the random forest's seed, or a different 95 % subsample of the
training rows), 20 drop the strongest feature. Each is judged like `gitops-ml report` judges a
PR: the paired bootstrap of PR − base on the same test rows, widened by the training noise both
sides' evaluate stage measures (`training_noise`), at the gates' family-wise level, then the
fixture's default gates of the task. The refits replace the model's seed, so every seed PR's
training noise is the base's; a subsample PR's would be measured on its 95 % of the rows, and
the base's stands in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from project_fixtures import CONTRACT_PATH, fixture_params

from gitops_ml.config import EvaluateParams, ModelParams
from gitops_ml.contract import Contract, load_contract, parse_contract
from gitops_ml.metric_registry import lower_is_better, metric_sets
from gitops_ml.model_view import model_frame, target_vector
from gitops_ml.pipeline.evaluate import bootstrap_intervals, training_noise
from gitops_ml.pipeline.train import fit_model, model_rows
from gitops_ml.review.gates import GateParams, GateResult, check_gates
from gitops_ml.scoring import (
    Difference,
    difference_sd,
    paired_differences,
    point_metrics,
    unpaired_difference,
)
from gitops_ml.synthetic import generate_churn
from gitops_ml.tasks import predictions

# 1,500 test rows, as the done-when asks, and 3,000 training rows of a 20-tree forest: a sixth
# of the fitting time of 6,000 rows and 60 trees, with margins to spare on both sides
# (docs/review.md's table; the refits measure the noisier forest's training noise too).
ROWS, TEST_ROWS = 4_500, 1_500
PARITY_OK = {"max_abs_diff": 0.0, "label_flips": 0}
PRS = 20
FEATURES = 6  # numeric features of the generated regression and multiclass data, x0 strongest
REGIONS = ("north", "south", "east")


def forest(seed: int) -> ModelParams:
    return ModelParams(
        type="random_forest", seed=seed, hyperparams={"n_estimators": 20, "min_samples_leaf": 5}
    )


def generated_contract(task: str, target: dict[str, Any]) -> Contract:
    """A contract for the generated data: x0 … x5, a categorical region, the `task` target."""
    columns = [{"name": f"x{i}", "type": "float", "nullable": False} for i in range(FEATURES)]
    columns.append({"name": "region", "type": "category", "nullable": False})
    columns.append({"name": "y", "role": "target", "nullable": False, "task": task, **target})
    return parse_contract({"name": f"generated-{task}", "columns": columns}, f"generated {task}")


def features(rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    x = rng.normal(size=(ROWS, FEATURES))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(FEATURES)])
    region = rng.integers(0, len(REGIONS), size=ROWS)
    frame["region"] = pd.Categorical(np.asarray(REGIONS)[region], categories=list(REGIONS))
    return frame, region


def regression_data(seed: int) -> pd.DataFrame:
    """y = 1.2·x0 + 2·sin(x1) + x2·x3 + a region effect + noise (sd 1.5): R² at best ≈ 0.65,
    and x0 alone carries about a fifth of the variance."""
    rng = np.random.default_rng(seed)
    frame, region = features(rng)
    x = frame[[f"x{i}" for i in range(FEATURES)]].to_numpy()
    signal = 1.2 * x[:, 0] + 2 * np.sin(x[:, 1]) + x[:, 2] * x[:, 3] + 0.5 * (region == 1)
    frame["y"] = signal + rng.normal(scale=1.5, size=ROWS)
    return frame


MULTICLASS = ("low", "medium", "high")


def multiclass_data(seed: int) -> pd.DataFrame:
    """Three classes drawn from a softmax of linear scores (so the labels are noisy): x0 moves
    low against high the most, x1 and x2 separate medium, the region shifts all."""
    rng = np.random.default_rng(seed)
    frame, region = features(rng)
    x = frame[[f"x{i}" for i in range(FEATURES)]].to_numpy()
    weights = np.zeros((FEATURES, 3))
    weights[0] = (1.5, 0.0, -1.5)
    weights[1] = (0.0, 1.0, -1.0)
    weights[2] = (-0.7, 0.7, 0.0)
    logits = x @ weights + np.eye(3)[region] * 0.4
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    drawn = (probabilities.cumsum(axis=1) < rng.random(ROWS)[:, None]).sum(axis=1)
    frame["y"] = pd.Categorical(np.asarray(MULTICLASS)[drawn], categories=list(MULTICLASS))
    return frame


@dataclass(frozen=True)
class Case:
    """One task's data: train/test frames (the newest / last TEST_ROWS rows are the test set),
    its contract and its strongest feature (the largest loss when dropped)."""

    train: pd.DataFrame
    test: pd.DataFrame
    contract: Contract
    strongest: str


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = ROWS - TEST_ROWS
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def churn_case() -> Case:
    """The churn generator's data and contract, the newest rows as test set."""
    frame = generate_churn(ROWS, seed=3).sort_values("snapshot_date", kind="stable")
    return Case(*split(frame), load_contract(CONTRACT_PATH), "contract")


def regression_case() -> Case:
    return Case(
        *split(regression_data(3)), generated_contract("regression", {"type": "float"}), "x0"
    )


def multiclass_case() -> Case:
    target = {"type": "category", "classes": list(MULTICLASS)}
    return Case(*split(multiclass_data(3)), generated_contract("multiclass", target), "x0")


CASES: dict[str, Callable[[], Case]] = {
    "binary": churn_case,
    "multiclass": multiclass_case,
    "regression": regression_case,
}


class Judge:
    """Scores PR models against one base model the way the report does."""

    def __init__(self, data: Case) -> None:
        params = fixture_params()
        self.train, self.test = data.train, data.test
        contract = data.contract
        self.task, self.classes = contract.task, contract.classes
        self.gates = GateParams.from_params(params, self.task)
        evaluate = EvaluateParams.from_params(params)
        if metric_sets(self.task).cost is None:  # costs price a yes/no decision
            evaluate = evaluate.model_copy(update={"costs": None})
        self.evaluate = evaluate
        self.y = target_vector(self.test, contract)
        self.p_base = self.scores(fit_model(self.train, contract, forest(0)), contract)
        self.base_noise = self.noise(contract)

    def scores(self, model: Any, contract: Contract) -> np.ndarray:
        return predictions(model, model_frame(self.test, contract), self.task)

    def noise(self, contract: Contract) -> dict[str, float]:
        """The training noise the evaluate stage records for the forest on `contract`."""
        found = training_noise(
            model_rows(self.train, contract), self.test, contract, forest(0), self.evaluate
        )
        assert found is not None
        return dict(found["sd"])

    def judge(
        self, model: Any, contract: Contract, noise: dict[str, float]
    ) -> tuple[dict[str, Difference], list[GateResult]]:
        p_pr = self.scores(model, contract)
        e = self.evaluate
        threshold = e.threshold
        diffs = paired_differences(
            self.y,
            self.p_base,
            p_pr,
            (threshold, threshold),
            e.bootstrap_samples,
            e.seed,
            e.cost_pair,
            level=self.gates.interval_level(),
            training_sd=difference_sd(self.base_noise, noise),
            training_df=e.refits - 1,  # as the report reads it from both sides' refits
            task=self.task,
            classes=self.classes,
        )
        base = point_metrics(self.y, self.p_base, threshold, task=self.task, classes=self.classes)
        pr = point_metrics(self.y, p_pr, threshold, task=self.task, classes=self.classes)
        return diffs, check_gates(self.gates, pr, base, PARITY_OK, diffs)


def gated(diffs: dict[str, Difference], gates: GateParams) -> dict[str, Difference]:
    return {name: diffs[name] for name in gates.max_regression}


@pytest.mark.slow
@pytest.mark.parametrize("task", list(CASES))
def test_randomness_passes_and_a_weaker_model_fails_on_1500_test_rows(task: str) -> None:
    data = CASES[task]()
    judge = Judge(data)
    noise = []
    for i in range(PRS):
        if i % 2 == 0:  # another seed of the same forest
            model = fit_model(judge.train, data.contract, forest(100 + i))
        else:  # another 95 % subsample of the training rows, same seed
            rows = judge.train.sample(frac=0.95, random_state=i).reset_index(drop=True)
            model = fit_model(rows, data.contract, forest(0))
        noise.append(judge.judge(model, data.contract, judge.base_noise))
    without = replace(
        data.contract, columns=[c for c in data.contract.columns if c.name != data.strongest]
    )
    weaker_noise = judge.noise(without)  # the same for all 20: they differ only in seed
    weaker = [
        judge.judge(fit_model(judge.train, without, forest(i)), without, weaker_noise)
        for i in range(PRS)
    ]

    noise_passed = sum(all(g.passed for g in gates) for _, gates in noise)
    noise_real = [
        (i, name, "better" if better(name, d) else "worse")
        for i, (diffs, _) in enumerate(noise)
        for name, d in gated(diffs, judge.gates).items()
        if d.real
    ]
    weaker_failed = sum(not all(g.passed for g in gates) for _, gates in weaker)
    weaker_real = sum(
        any(d.real and not better(n, d) for n, d in gated(diffs, judge.gates).items())
        for diffs, _ in weaker
    )
    closest = max(
        (abs(d.delta) / d.detectable, i, name)
        for i, (diffs, _) in enumerate(noise)
        for name, d in gated(diffs, judge.gates).items()
    )
    # Each weaker PR's clearest worse gated metric (|Δ| / detectable); the faintest of those.
    faintest = min(
        max((abs(d.delta) / d.detectable for n, d in gated(diffs, judge.gates).items()
             if not better(n, d)), default=0.0)
        for diffs, _ in weaker
    )  # fmt: skip
    print(
        f"\n{task}: randomness: {noise_passed}/{PRS} pass, real calls {noise_real}, largest "
        f"|Δ|/detectable {closest[0]:.2f} (PR {closest[1]}, {closest[2]}); weaker: "
        f"{weaker_failed}/{PRS} fail, {weaker_real}/{PRS} real, smallest |Δ|/detectable of "
        f"its clearest worse metric {faintest:.2f}"
    )
    for kind, prs in (("randomness", noise), ("weaker", weaker)):
        for name in judge.gates.max_regression:
            found = [diffs[name] for diffs, _ in prs]
            print(
                f"  {kind} {name}: Δ {min(d.delta for d in found):+.4f} … "
                f"{max(d.delta for d in found):+.4f}, detectable (mean) "
                f"±{np.mean([d.detectable for d in found]):.4f}, of which training "
                f"±{np.mean([d.training for d in found]):.4f}"
            )
    assert noise_real == []  # neither direction: randomness is never called real
    assert noise_passed >= PRS - 1
    assert weaker_real == PRS
    assert weaker_failed >= PRS - 1


def better(name: str, difference: Difference) -> bool:
    return (difference.delta < 0) == lower_is_better(name)


@pytest.mark.slow
def test_on_1500_rows_the_paired_interval_is_narrower_than_the_unpaired_one() -> None:
    """The fixture's boosting model, 120 → 30 trees: the 1,500-row rows of the detectable table
    in docs/review.md (paired, and unpaired as when the test set changed), both with the
    training noise of each side's refits at the gates' level."""
    params = fixture_params()
    gates, e = GateParams.from_params(params, "binary"), EvaluateParams.from_params(params)
    base_params = ModelParams.from_params(params)
    pr_params = base_params.model_copy(
        update={"hyperparams": {**base_params.hyperparams, "max_iter": 30}}
    )
    data = churn_case()
    train, test, contract = data.train, data.test, data.contract
    y = target_vector(test, contract)
    level = gates.interval_level()
    p, noise = [], []
    for model_params in (base_params, pr_params):
        model = fit_model(train, contract, model_params)
        p.append(np.asarray(model.predict_proba(model_frame(test, contract))[:, 1]))
        found = training_noise(model_rows(train, contract), test, contract, model_params, e)
        assert found is not None
        noise.append(found["sd"])
    sd = difference_sd(*noise)
    paired = paired_differences(
        y, p[0], p[1], (e.threshold, e.threshold), e.bootstrap_samples, e.seed,
        level=level, training_sd=sd,
    )  # fmt: skip
    intervals = [bootstrap_intervals(y, q, e.threshold, e.bootstrap_samples, e.seed) for q in p]
    point = [point_metrics(y, q, e.threshold) for q in p]
    for name in gates.max_regression:
        unpaired = unpaired_difference(
            point[0][name],
            point[1][name],
            (intervals[0][name]["low"], intervals[0][name]["high"]),
            (intervals[1][name]["low"], intervals[1][name]["high"]),
            level=level,
            training_sd=sd[name],
        )
        print(
            f"\n120 → 30 trees, {name}: Δ {paired[name].delta:+.4f}, detectable paired "
            f"±{paired[name].detectable:.4f} (training ±{paired[name].training:.4f}), unpaired "
            f"±{unpaired.detectable:.4f}"
        )
        assert unpaired.delta == pytest.approx(paired[name].delta)
        assert paired[name].detectable < unpaired.detectable
