"""`gitops-ml simulate`: production-like windows for each drift scenario, in every input format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONTRACT_PATH, REPO_ROOT

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.contract import Contract
from gitops_ml.monitor.retrain import append_window, set_data_source
from gitops_ml.monitor.simulate import simulate_traffic
from gitops_ml.synthetic import NEW_PLAN

PARAMS = str(REPO_ROOT / "params.yaml")


def test_simulate_writes_the_default_window_size_without_labels(tmp_path: Path) -> None:
    out = tmp_path / "w.parquet"
    assert (
        main(["simulate", "--scenario", "new_plan", "--output", str(out), "--params", PARAMS]) == 0
    )
    frame = gio.read_table(out)
    assert len(frame) == 5000  # drift.window_rows
    assert "churned" not in frame.columns
    assert (frame["plan"] == NEW_PLAN).mean() == pytest.approx(0.30, abs=0.03)
    assert frame["snapshot_date"].min() >= pd.Timestamp("2026-01-01")  # after training data


def test_labels_are_attached_only_on_request_and_csv_matches_parquet(tmp_path: Path) -> None:
    for suffix in ("csv", "parquet"):
        args = ["simulate", "--rows", "300", "--labels", "--output", str(tmp_path / f"w.{suffix}")]
        assert main(args) == 0
    csv, parquet = gio.read_table(tmp_path / "w.csv"), gio.read_table(tmp_path / "w.parquet")
    assert csv["churned"].tolist() == parquet["churned"].tolist()
    assert csv["monthly_charges"].tolist() == parquet["monthly_charges"].tolist()


def test_jsonl_output_follows_the_serving_prediction_log_format(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    args = ["simulate", "--rows", "50", "--scenario", "missing_spike", "--labels"]
    assert main([*args, "--output", str(out), "--contract", str(CONTRACT_PATH)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 50
    first = records[0]
    assert {"ts", "request_id", "model", "model_version", "features", "label"} <= set(first)
    assert first["ts"].endswith("Z") and first["model"] == "churn-model"
    assert any(r["features"]["satisfaction_score"] is None for r in records)


def test_unknown_scenario_and_bad_output_type_are_user_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--rows", "10", "--output", str(tmp_path / "w.xlsx")]) == 2
    assert "unsupported output type" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--scenario", "price_cut", "--output", str(tmp_path / "w.csv")])


def test_retraining_data_appends_labelled_window_and_repoints_data_source(
    contract: Contract,
) -> None:
    base = simulate_traffic("none", 200, seed=1, labels=True)
    window = simulate_traffic("price_increase", 100, seed=2, labels=True)
    combined = append_window(base, window, contract)
    assert len(combined) == 300 and list(combined.columns) == contract.names
    assert combined["snapshot_date"].is_monotonic_increasing
    with pytest.raises(Exception, match="no 'churned' labels"):
        append_window(base, window.drop(columns="churned"), contract)
    params = (REPO_ROOT / "params.yaml").read_text()
    updated = set_data_source(params, "data/retrain/churn.parquet")
    assert "  source: data/retrain/churn.parquet" in updated
    assert updated.replace("data/retrain/churn.parquet", "synthetic", 1) == params
