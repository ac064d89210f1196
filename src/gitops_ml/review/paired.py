"""The paired base-vs-PR comparison: both models scored on the PR's test rows, every metric of
the contract's task (gitops_ml.scoring computes them per task).

Comparing a PR value with the base's own bootstrap interval mixes two sources of noise and
misses the point: on a small test set a change of seed can cross a gate while a real
regression hides inside a wide interval. Scoring the base model on the same rows as the PR
model and bootstrapping the *difference* cancels the noise both share (which rows happen to be
in the test set), so the interval of PR − base is narrow and "real" (it excludes 0) means it.
The interval also carries the training noise both evaluate stages measured (scoring.py), at the
family-wise level of the gated metrics.

The base model is the base's ONNX file, found by the md5 the base's dvc.lock records for it: in
the local DVC cache, else through DVC from the remote. When it cannot be had, or the test sets
differ (a data change), the report falls back to the unpaired comparison and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import EvaluateParams
from gitops_ml.contract import Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.markdown import escape
from gitops_ml.metric_registry import metric_sets
from gitops_ml.model_view import model_frame, onnx_feeds, target_vector
from gitops_ml.onnx_model import onnx_session, predict
from gitops_ml.release.versions import lock_hashes
from gitops_ml.scoring import CI_LEVEL, Difference, paired_differences
from gitops_ml.tasks import task_spec


@dataclass(frozen=True)
class Comparison:
    """How base and PR were compared: paired on the same rows, or why not (`note`)."""

    paired: bool
    note: str
    rows: int = 0
    samples: int = 0
    differences: dict[str, Difference] = field(default_factory=dict)


class Unavailable(Exception):
    """The paired comparison cannot run; the message says why, for the report (markdown: what
    it quotes from the data or from DVC goes through `escape`)."""


def locked_md5(lock: Mapping[str, Any] | None, path: str) -> str | None:
    """The md5 a dvc.lock records for the output `path`, or None."""
    return lock_hashes(lock).get(path)


def base_model_bytes(base_sha: str, md5: str, root: str | Path = ".") -> bytes:
    """The base's ONNX file by its md5: the local DVC cache first, then DVC (remote)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cached = Path(repo.cache.local.oid_to_path(md5))
    if cached.is_file():
        return cached.read_bytes()
    import dvc.api

    try:
        with dvc.api.open(paths.MODEL_ONNX, repo=str(root), rev=base_sha, mode="rb") as handle:
            data: bytes = handle.read()
    except Exception as exc:  # DVC raises many kinds here; each means "not available"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unavailable(
            f"the base model (`{paths.MODEL_ONNX}`, md5 {md5[:8]}…) is neither in the local DVC "
            f"cache nor fetchable from the remote ({escape(first)}); run `dvc pull` for the base "
            "or configure the DVC remote in CI"
        ) from None
    return data


def onnx_predictions(onnx_bytes: bytes, frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """What an ONNX model predicts for `frame` (inputs named by the model), in the shape
    `gitops_ml.tasks.predictions` gives for the contract's task."""
    session = onnx_session(onnx_bytes)
    feeds = onnx_feeds(model_frame(frame, contract), contract)
    wanted = [i.name for i in session.get_inputs()]
    missing = [name for name in wanted if name not in feeds]
    if missing:
        raise Unavailable(
            f"the base model takes input(s) the PR's contract no longer has: {escape(missing)}"
        )
    output = task_spec(contract.task).onnx_outputs[-1]
    if output not in {o.name for o in session.get_outputs()}:
        raise Unavailable(
            f"the base model has no `{output}` output: it was not trained for a "
            f"{contract.task} target"
        )
    return predict(session, {name: feeds[name] for name in wanted}, contract.task)


def compare_models(
    base_sha: str,
    base_lock: Mapping[str, Any] | None,
    pr_lock: Mapping[str, Any] | None,
    thresholds: tuple[float | None, float | None],
    params: Mapping[str, Any],
    root: str | Path = ".",
    *,
    level: float = CI_LEVEL,
    training_sd: Mapping[str, float] | None = None,
    training_df: float | None = None,
) -> Comparison:
    """Score the PR's test set with both models and bootstrap every difference.

    `thresholds` are the decision thresholds each side was evaluated at (None: the PR's
    `evaluate.threshold`); `params` the PR's parsed params.yaml (bootstrap samples, seed, costs);
    `level`, `training_sd` and `training_df` as in `scoring.paired_differences`.
    Never raises for a missing piece: it returns an unpaired Comparison saying which one.
    """
    root = Path(root)
    base_model = locked_md5(base_lock, paths.MODEL_ONNX)
    base_test, pr_test = locked_md5(base_lock, paths.TEST), locked_md5(pr_lock, paths.TEST)
    try:
        if base_model is None:
            raise Unavailable(f"the base records no `{paths.MODEL_ONNX}` in its dvc.lock")
        if base_test != pr_test:
            raise Unavailable(
                f"the test sets differ (`{paths.TEST}` md5 {str(base_test)[:8]} on the base, "
                f"{str(pr_test)[:8]} in the PR): the data changed, so the models cannot be "
                "scored on the same rows"
            )
        for path in (paths.TEST, paths.MODEL_ONNX, paths.CONTRACT):
            if not (root / path).is_file():
                raise Unavailable(f"`{path}` is missing in the workspace (run `dvc repro`)")
        try:
            evaluate = EvaluateParams.from_params(params)
            contract = load_contract(root / paths.CONTRACT)
        except UserError as exc:
            raise Unavailable(escape(exc)) from None
        test = gio.read_table(root / paths.TEST)
        y = target_vector(test, contract)
        p_pr = onnx_predictions((root / paths.MODEL_ONNX).read_bytes(), test, contract)
        p_base = onnx_predictions(base_model_bytes(base_sha, base_model, root), test, contract)
    except Unavailable as exc:
        return Comparison(paired=False, note=str(exc))
    costs = evaluate.cost_pair if metric_sets(contract.task).cost is not None else None
    base_threshold, pr_threshold = (t if t is not None else evaluate.threshold for t in thresholds)
    differences = paired_differences(
        y,
        p_base,
        p_pr,
        (base_threshold, pr_threshold),
        evaluate.bootstrap_samples,
        evaluate.seed,
        costs,
        level=level,
        training_sd=training_sd,
        training_df=training_df,
        task=contract.task,
        classes=contract.classes,
    )
    return Comparison(
        paired=True,
        note=(
            f"both models scored on the PR's {len(y):,} test rows; intervals from "
            f"{evaluate.bootstrap_samples:,} paired bootstrap resamples of those rows"
        ),
        rows=len(y),
        samples=evaluate.bootstrap_samples,
        differences=differences,
    )
