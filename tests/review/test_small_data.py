"""The done-when test of the paired review (issue 11): on ≈1,500 test rows the default gates
neither fail on randomness nor miss a genuinely weaker model.

Forty pull requests, run on the pure functions (train in process, no DVC): 20 change only
randomness (the random forest's seed, or a different 95 % subsample of the training rows), 20
drop the strongest feature. Each is judged like `gitops-ml report` judges a PR: the paired
bootstrap of PR − base on the same test rows, widened by the training noise both sides'
evaluate stage measures (`training_noise`), at the gates' family-wise level, then the fixture's
default gates. The refits replace the model's seed, so every seed PR's training noise is the
base's; a subsample PR's would be measured on its 95 % of the rows, and the base's stands in.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from project_fixtures import fixture_params
from threadpoolctl import threadpool_limits

from gitops_ml.config import EvaluateParams, ModelParams
from gitops_ml.contract import Contract, model_frame, target_vector
from gitops_ml.metric_registry import lower_is_better
from gitops_ml.pipeline.evaluate import bootstrap_intervals, training_noise
from gitops_ml.pipeline.train import fit_model
from gitops_ml.review.gates import GateParams, GateResult, check_gates
from gitops_ml.scoring import (
    Difference,
    difference_sd,
    paired_differences,
    point_metrics,
    unpaired_difference,
)
from gitops_ml.synthetic import generate_churn

ROWS, TEST_ROWS = 7_500, 1_500
STRONGEST = "contract"  # the generated data's strongest feature (largest AUC loss when dropped)
PARITY_OK = {"max_abs_diff": 0.0, "label_flips": 0}
PRS = 20


def forest(seed: int) -> ModelParams:
    return ModelParams(
        type="random_forest", seed=seed, hyperparams={"n_estimators": 60, "min_samples_leaf": 5}
    )


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = generate_churn(ROWS, seed=3).sort_values("snapshot_date", kind="stable")
    cut = ROWS - TEST_ROWS
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


class Judge:
    """Scores PR models against one base model the way the report does."""

    def __init__(self, data: tuple[pd.DataFrame, pd.DataFrame], contract: Contract) -> None:
        params = fixture_params()
        self.train, self.test = data
        self.contract = contract
        self.gates = GateParams.from_params(params)
        self.evaluate = EvaluateParams.from_params(params)
        self.y = target_vector(self.test, contract)
        self.p_base = self.scores(fit_model(self.train, contract, forest(0)), contract)
        self.base_noise = self.noise(contract)

    def scores(self, model, contract: Contract) -> np.ndarray:
        return np.asarray(model.predict_proba(model_frame(self.test, contract))[:, 1])

    def noise(self, contract: Contract) -> dict[str, float]:
        """The training noise the evaluate stage records for the forest on `contract`."""
        found = training_noise(self.train, self.test, contract, forest(0), self.evaluate)
        assert found is not None
        return dict(found["sd"])

    def judge(
        self, model, contract: Contract, noise: dict[str, float]
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
            (e.costs.false_positive, e.costs.false_negative),
            level=self.gates.interval_level(),
            training_sd=difference_sd(self.base_noise, noise),
        )
        base = point_metrics(self.y, self.p_base, threshold)
        pr = point_metrics(self.y, p_pr, threshold)
        return diffs, check_gates(self.gates, pr, base, PARITY_OK, diffs)


def gated(diffs: dict[str, Difference], gates: GateParams) -> dict[str, Difference]:
    return {name: diffs[name] for name in gates.max_regression}


@pytest.mark.slow
def test_randomness_passes_and_a_weaker_model_fails_on_1500_test_rows(data, contract) -> None:
    with threadpool_limits(limits=1):
        judge = Judge(data, contract)
        noise = []
        for i in range(PRS):
            if i % 2 == 0:  # another seed of the same forest
                model = fit_model(judge.train, contract, forest(100 + i))
            else:  # another 95 % subsample of the training rows, same seed
                rows = judge.train.sample(frac=0.95, random_state=i).reset_index(drop=True)
                model = fit_model(rows, contract, forest(0))
            noise.append(judge.judge(model, contract, judge.base_noise))
        without = replace(contract, columns=[c for c in contract.columns if c.name != STRONGEST])
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
    print(
        f"\nrandomness: {noise_passed}/{PRS} pass, real calls {noise_real}, largest "
        f"|Δ|/detectable {closest[0]:.2f} (PR {closest[1]}, {closest[2]}); weaker: "
        f"{weaker_failed}/{PRS} fail, {weaker_real}/{PRS} real"
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
def test_on_1500_rows_the_paired_interval_is_narrower_than_the_unpaired_one(data, contract) -> None:
    """The fixture's boosting model, 120 → 30 trees: the 1,500-row rows of the detectable table
    in docs/review.md (paired, and unpaired as when the test set changed), both with the
    training noise of each side's refits at the gates' level."""
    params = fixture_params()
    gates, e = GateParams.from_params(params), EvaluateParams.from_params(params)
    base_params = ModelParams.from_params(params)
    pr_params = base_params.model_copy(
        update={"hyperparams": {**base_params.hyperparams, "max_iter": 30}}
    )
    train, test = data
    y = target_vector(test, contract)
    level = gates.interval_level()
    with threadpool_limits(limits=1):
        p, noise = [], []
        for model_params in (base_params, pr_params):
            model = fit_model(train, contract, model_params)
            p.append(np.asarray(model.predict_proba(model_frame(test, contract))[:, 1]))
            found = training_noise(train, test, contract, model_params, e)
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
