"""Profile and drift for a regression and a multiclass model (the diabetes and wine fixtures):
the predictions are watched like a feature (the predicted value on its quantile grid, the
predicted classes by their shares), outcomes are read as the data spells the target, and the
performance is the registry's monitor metrics of the task."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from monitor_support import run_drift
from task_support import TaskProject, task_project

from gitops_ml import io as gio
from gitops_ml.metric_registry import metric_sets
from gitops_ml.monitor.drift import check_drift
from gitops_ml.monitor.profile import ProfileError, load_profile
from gitops_ml.monitor.readers import (
    CurrentDataError,
    ModelScorer,
    frame_chunks,
    parse_labels,
)
from gitops_ml.monitor.simulate import prediction_log_lines, resolve_scenarios, simulate_window

__all__ = ["task_project"]

# The feature a shifted subset is cut on: the one the model leans on most.
SHIFTED = {"regression": "bmi", "multiclass": "proline"}


def _drift(project: TaskProject, current: Path, out: Path, *extra: str) -> dict[str, Any]:
    code = run_drift(
        project.profile_path,
        project.contract_path,
        current,
        out,
        "--params",
        str(project.params_path),
        *extra,
    )
    assert code == 0
    result: dict[str, Any] = json.loads((out / "drift.json").read_text())
    return result


def test_the_profile_records_the_predictions_and_the_outcomes_of_the_task(
    task_project: TaskProject,
) -> None:
    project = task_project
    profile = json.loads(project.profile_path.read_text())
    scores = ModelScorer(project.onnx_path, project.contract).score(project.train)
    prediction, target = profile["score"], profile["target"]
    values = project.train[project.contract.target]
    if project.task == "regression":
        assert prediction["kind"] == target["kind"] == "numeric"
        assert prediction["mean"] == pytest.approx(scores.mean())
        assert target["mean"] == pytest.approx(values.astype(float).mean())
        assert sum(target["grid_counts"]) == len(project.train)
    else:
        classes = list(project.contract.classes)
        assert prediction["kind"] == target["kind"] == "categorical"
        predicted = pd.Series(np.asarray(classes)[scores.argmax(axis=1)]).value_counts()
        assert prediction["categories"] == {c: int(predicted.get(c, 0)) for c in classes}
        assert list(prediction["probability_means"]) == classes
        assert sum(prediction["probability_means"].values()) == pytest.approx(1.0)
        assert target["categories"] == values.value_counts().to_dict()
    assert profile["metrics"]["test"].keys() == set(metric_sets(project.task).monitor)


def test_a_random_half_is_no_drift_and_a_shifted_subset_is_drift(
    task_project: TaskProject, tmp_path: Path
) -> None:
    project = task_project
    rows = len(project.frame)
    half = np.random.default_rng(1).choice(rows, rows // 2, replace=False)
    values = project.frame[SHIFTED[project.task]].to_numpy(dtype=float)
    high = np.flatnonzero(values > np.nanmedian(values))
    model = ("--model", str(project.onnx_path))

    calm = _drift(project, project.window_csv("half.csv", half), tmp_path / "half", *model)
    assert calm["verdict"] == "no_drift", calm["reason"]
    assert calm["prediction"]["level"] == "ok"
    assert calm["performance"]["level"] == "ok"
    assert calm["performance"]["metrics"].keys() == set(metric_sets(project.task).monitor)

    moved = _drift(project, project.window_csv("high.csv", high), tmp_path / "high", *model)
    assert moved["verdict"] == "drift", moved["reason"]
    assert SHIFTED[project.task] in moved["drifting_features"]
    assert moved["prediction"]["level"] == "alert"
    means = moved["prediction"].get("probability_means")
    if project.task == "multiclass":  # each class's mean probability, reference → current
        assert list(means) == list(project.contract.classes)
        profiled = json.loads(project.profile_path.read_text())["score"]["probability_means"]
        assert {k: v["reference"] for k, v in means.items()} == profiled
        assert sum(v["current"] for v in means.values()) == pytest.approx(1.0)
        assert "Mean probability of each class" in (tmp_path / "high" / "drift.md").read_text()
    else:
        assert means is None


def test_outcomes_are_read_as_the_data_spells_the_target(task_project: TaskProject) -> None:
    contract = task_project.contract
    source = Path("outcomes.csv")
    if task_project.task == "regression":
        codes = parse_labels(pd.Series(["151", "75", None]), contract, source)
        assert codes is not None
        np.testing.assert_array_equal(codes, [151.0, 75.0, np.nan])
        bad, rule = pd.Series(["151", "high"]), "column 'progression' must be int"
    else:
        codes = parse_labels(pd.Series(["class_2", "class_0", None]), contract, source)
        assert codes is not None
        np.testing.assert_array_equal(codes, [2.0, 0.0, np.nan])
        bad, rule = pd.Series(["class_1", "class_9"]), "'class_9'); its classes are ['class_0'"
    with pytest.raises(CurrentDataError, match=re.escape(rule)):
        parse_labels(bad, contract, source)


def test_a_simulated_prediction_log_is_read_back_with_its_predictions_and_outcomes(
    task_project: TaskProject, tmp_path: Path
) -> None:
    """simulate's log carries the task's predictions and outcomes; drift reads both from it
    (no --model): the same window scores the same as the model scoring the rows."""
    project = task_project
    contract, profile = project.contract, json.loads(project.profile_path.read_text())
    scorer = ModelScorer(project.onnx_path, contract)
    window = simulate_window(
        profile,
        contract,
        400,
        resolve_scenarios([], contract),
        seed=5,
        labels=True,
        scorer=scorer,
        train=project.train,
    )
    log = tmp_path / "window.jsonl"
    gio.write_text(log, "\n".join(prediction_log_lines(window, contract, "m")) + "\n")
    first = json.loads(log.read_text().splitlines()[0])
    assert contract.target not in first["features"]
    from_log = _drift(project, log, tmp_path / "log")
    assert from_log["prediction"]["level"] != "not_computed"
    assert from_log["performance"]["rows"] == 400
    parquet = tmp_path / "window.parquet"
    gio.write_parquet(parquet, window.frame)
    scored = _drift(project, parquet, tmp_path / "scored", "--model", str(project.onnx_path))
    for key in ("prediction", "performance"):
        assert json.dumps(from_log[key], sort_keys=True) == json.dumps(scored[key], sort_keys=True)


def test_simulated_outcomes_follow_the_profile_and_a_label_shift_is_a_performance_alert(
    task_project: TaskProject, tmp_path: Path
) -> None:
    project = task_project
    contract, profile = project.contract, json.loads(project.profile_path.read_text())
    target = contract.target
    none, shifted = (resolve_scenarios(s, contract) for s in ([], ["label_shift:+0.5"]))
    drawn = simulate_window(profile, contract, 4000, none, seed=3, labels=True).frame[target]
    if project.task == "regression":
        assert drawn.astype(float).mean() == pytest.approx(profile["target"]["mean"], rel=0.05)
    else:
        reference = pd.Series(profile["target"]["categories"], dtype=float)
        shares = drawn.value_counts(normalize=True).reindex(reference.index)
        assert shares.to_numpy() == pytest.approx(
            (reference / reference.sum()).to_numpy(), abs=0.03
        )
    scorer = ModelScorer(project.onnx_path, contract)
    window = simulate_window(
        profile, contract, 400, shifted, seed=4, labels=True, scorer=scorer, train=project.train
    )
    path = tmp_path / "shifted.parquet"
    gio.write_parquet(path, window.frame)
    result = _drift(project, path, tmp_path / "out", "--model", str(project.onnx_path))
    assert result["performance"]["level"] == "alert"
    assert result["features"] and all(f["level"] == "ok" for f in result["features"])


def test_outcomes_joined_by_id_give_the_performance_the_labelled_log_gives(
    task_project: TaskProject, tmp_path: Path
) -> None:
    """Outcomes arrive later as the data spells the target (a class, a number) and join the
    logged predictions by id: the same performance as the log carrying them itself."""
    project = task_project
    contract, profile = project.contract, json.loads(project.profile_path.read_text())
    scorer = ModelScorer(project.onnx_path, contract)
    start = pd.Timestamp("2026-11-01")
    window = simulate_window(
        profile,
        contract,
        400,
        resolve_scenarios([], contract),
        seed=6,
        labels=True,
        scorer=scorer,
        train=project.train,
        start=start,
        days=1,
    )
    labelled, unlabelled = [], []
    for line in prediction_log_lines(window, contract, "m"):
        record = json.loads(line)
        record["id"] = record["request_id"]  # the server echoes the contract's id column
        labelled.append(json.dumps(record))
        del record["label"]
        unlabelled.append(json.dumps(record))
    (tmp_path / "labelled.jsonl").write_text("\n".join(labelled) + "\n")
    (tmp_path / "predictions.jsonl").write_text("\n".join(unlabelled) + "\n")
    outcomes = pd.DataFrame(
        {
            "id": window.frame[contract.id_column].astype(str),
            "timestamp": "2026-11-03T00:00:00Z",
            "label": window.frame[contract.target].astype(str),
        }
    )
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    joined = _drift(
        project,
        tmp_path / "predictions.jsonl",
        tmp_path / "joined",
        "--labels",
        str(tmp_path / "outcomes.csv"),
    )
    assert joined["outcomes"]["with_outcome"] == 400
    carried = _drift(project, tmp_path / "labelled.jsonl", tmp_path / "carried")
    assert joined["performance"] == carried["performance"]
    assert joined["performance"]["rows"] == 400


def test_a_profile_of_another_task_is_refused_naming_both(
    task_project: TaskProject, tmp_path: Path
) -> None:
    project = task_project
    profile = json.loads(project.profile_path.read_text())
    profile["task"] = "binary"
    stale = tmp_path / "stale.json"
    gio.write_json(stale, profile)
    with pytest.raises(
        ProfileError, match=f"a binary model, but the contract's task is {project.task}"
    ):
        load_profile(stale, project.contract)


@pytest.mark.parametrize("task_project", ["multiclass"], indirect=True)
def test_a_logged_probability_list_of_the_wrong_length_is_an_error_naming_the_classes(
    task_project: TaskProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = task_project
    features = project.frame[project.contract.feature_names].iloc[:3]
    lines = [
        json.dumps({"features": row, "prediction": {"probabilities": [0.5, 0.5]}})
        for row in json.loads(features.to_json(orient="records"))
    ]
    log = tmp_path / "short.jsonl"
    log.write_text("\n".join(lines) + "\n")
    code = run_drift(
        project.profile_path,
        project.contract_path,
        log,
        tmp_path / "out",
        "--params",
        str(project.params_path),
    )
    assert code == 2
    assert (
        "3 logged prediction.probabilities list(s) do not hold one probability for each of "
        "the 3 classes" in capsys.readouterr().err
    )


def test_resampled_training_windows_stay_quiet_and_shifted_ones_are_caught(
    task_project: TaskProject,
) -> None:
    """20 windows resampled from the training rows: no drift verdict; the same windows with one
    feature moved by one standard deviation: drift in every one. (Predictions need not move:
    the wine classes are told apart by several features at once.)"""
    project = task_project
    contract, profile = project.contract, json.loads(project.profile_path.read_text())
    scorer = ModelScorer(project.onnx_path, contract)
    shift = resolve_scenarios([f"shift:{SHIFTED[project.task]}=+1sd"], contract)
    verdicts: dict[str, list[str]] = {"none": [], "shift": []}
    for seed in range(20):
        for name, scenarios in (("none", resolve_scenarios([], contract)), ("shift", shift)):
            window = simulate_window(
                profile, contract, 500, scenarios, seed=seed, train=project.train
            )
            chunks = frame_chunks(window.frame, contract)
            result = check_drift(profile, contract, chunks, project.settings, scorer)
            verdicts[name].append(result.verdict)
    assert verdicts["none"].count("drift") == 0, verdicts["none"]
    assert verdicts["shift"] == ["drift"] * 20
