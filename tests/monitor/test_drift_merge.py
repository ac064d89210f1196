"""Drift as map and merge: a window's parts accumulated apart and merged hold what one
accumulator of the whole window holds, so they give the same findings and verdict (every task,
with and without outcomes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import ExportedModel
from monitor_support import same_report, write_fixture_profile
from project_fixtures import drift_settings
from task_support import TaskProject, task_project

from gitops_ml.cli import main
from gitops_ml.config import ConfigError, DriftParams
from gitops_ml.contract import Contract
from gitops_ml.monitor import drift
from gitops_ml.monitor.drift import WindowAccumulator, evaluate_window
from gitops_ml.monitor.readers import ModelScorer, frame_chunks

__all__ = ["task_project"]


def same(a: Any, b: Any, where: str = "") -> None:
    """Field by field: counts equal, floating-point sums equal up to summation order."""
    if hasattr(a, "__dict__") and not isinstance(a, (Contract, ModelScorer)):
        assert type(a) is type(b), where
        assert vars(a).keys() == vars(b).keys(), where
        for name in vars(a):
            same(vars(a)[name], vars(b)[name], f"{where}.{name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype.kind in "iub":
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (float, np.ndarray)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=where)
    else:
        assert a == b, where


def check_map_and_merge(
    profile: dict[str, Any],
    contract: Contract,
    frame: pd.DataFrame,
    scorer: ModelScorer,
    settings: DriftParams,
) -> None:
    parts = [frame.iloc[rows] for rows in np.array_split(np.arange(len(frame)), 3)]
    chunks = [chunk for part in parts for chunk in frame_chunks(part, contract)]
    whole = WindowAccumulator(profile, contract, scorer)
    for chunk in chunks:
        whole.update(chunk)
    merged = WindowAccumulator(profile, contract, scorer)
    for chunk in chunks:
        one = WindowAccumulator(profile, contract, scorer)
        one.update(chunk)
        merged.merge(one)
    same(merged, whole)
    expected = evaluate_window(whole, settings)
    same_report(evaluate_window(merged, settings).to_json(), expected.to_json())
    labelled = contract.target in frame.columns
    assert (expected.performance.level != "not_computed") == labelled


@pytest.mark.parametrize("labelled", [False, True], ids=["features", "labelled"])
def test_binary_parts_merged_are_the_whole_window(
    exported_model: ExportedModel, tmp_path: Any, labelled: bool
) -> None:
    contract = exported_model.contract
    write_fixture_profile(exported_model, tmp_path / "profile.json")
    profile = json.loads((tmp_path / "profile.json").read_text())
    frame = exported_model.test_frame
    frame = frame if labelled else frame.drop(columns=[contract.target])
    scorer = ModelScorer(exported_model.onnx_path, contract)
    check_map_and_merge(profile, contract, frame, scorer, drift_settings(min_rows=100))


@pytest.mark.parametrize("labelled", [False, True], ids=["features", "labelled"])
def test_multiclass_and_regression_parts_merged_are_the_whole_window(
    task_project: TaskProject, labelled: bool
) -> None:
    project = task_project
    contract = project.contract
    profile = json.loads(project.profile_path.read_text())
    frame = project.frame if labelled else project.frame.drop(columns=[contract.target])
    scorer = ModelScorer(project.onnx_path, contract)
    check_map_and_merge(profile, contract, frame, scorer, project.settings)


def test_unseen_categories_merge_in_the_order_one_pass_meets_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Names beyond the bound pool as they would in one pass; the unseen count stays exact."""
    monkeypatch.setattr(drift, "MAX_UNSEEN_NAMES", 3)
    reference = {"kind": "categorical", "categories": {"a": 10}}
    first, second = ["a", "x", "y", "x", None], ["z", "w", "y", "a", "v"]
    whole = drift.CategoricalAccumulator(reference)
    whole.update(pd.Series(first + second))
    merged, other = drift.CategoricalAccumulator(reference), drift.CategoricalAccumulator(reference)
    merged.update(pd.Series(first))
    other.update(pd.Series(second))
    merged.merge(other)
    assert vars(merged) == vars(whole)
    assert merged.unseen == {"x": 2, "y": 2, "z": 1} and merged.unseen_pooled == 2


def test_the_worker_count_is_one_per_core_or_a_positive_number(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert drift_settings(workers=-1).workers == -1
    with pytest.raises(ConfigError, match=r"'drift\.workers' must be -1 \(one per core\) or at"):
        drift_settings(workers=0)
    with pytest.raises(SystemExit) as exited:
        main(["drift", "--current", "window.parquet", "--workers", "two"])
    assert exited.value.code == 2
    assert "--workers: 'two': use -1 (one per core) or a positive count" in capsys.readouterr().err


def test_one_per_core_starts_no_more_workers_than_the_windows_size_pays_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drift, "effective_n_jobs", lambda n: 4 if n == -1 else n)
    small, large = tmp_path / "small.jsonl.gz", tmp_path / "large.jsonl.gz"
    small.write_bytes(b"x" * 1000)
    with large.open("wb") as handle:  # a sparse file: its size without writing its bytes
        handle.truncate(2 * drift.MIN_BYTES_PER_WORKER + 1)

    assert drift.workers_for([small], -1) == 1  # read in this process
    assert drift.workers_for([small, large], -1) == 2
    assert drift.workers_for([large] * 9, -1) == 4  # one per core at most
    assert drift.workers_for([small], 3) == 3  # a count asked for is a count started
