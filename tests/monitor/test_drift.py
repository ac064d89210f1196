"""`gitops-ml drift` end to end: real files, the real ONNX model, reports and exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ExportedModel
from monitor_support import run_drift, write_fixture_profile
from project_fixtures import drift_settings

from gitops_ml import io as gio
from gitops_ml.monitor.readers import ModelScorer
from gitops_ml.monitor.simulate import Window, prediction_log_lines
from gitops_ml.synthetic import generate_churn


def simulate_traffic(
    scenario: str, rows: int, seed: int = 20260101, labels: bool = False
) -> pd.DataFrame:
    """A window of the fixture's generator after its training period (the generator's knobs)."""
    frame = generate_churn(rows, seed, scenario, start="2026-01-01", days=30)
    return frame if labels else frame.drop(columns=["churned"])


@pytest.fixture(scope="module")
def setup(exported_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile of the fixture model's training split, beside the model and the contract."""
    directory = tmp_path_factory.mktemp("drift_cli")
    write_fixture_profile(exported_model, directory / "profile.json")
    return directory


def _drift(setup: Path, exported_model: ExportedModel, current: Path | str, *extra: str) -> int:
    return run_drift(
        setup / "profile.json", exported_model.contract_path, current, setup / "out", *extra
    )


def _result(setup: Path) -> dict[str, Any]:
    return json.loads((setup / "out" / "drift.json").read_text())


def test_drifted_window_exits_1_with_fail_on_drift_and_reports_verdict_first(
    setup: Path, exported_model: ExportedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = setup / "price.parquet"
    gio.write_parquet(window, simulate_traffic("price_increase", 3000, seed=1, labels=True))
    outputs, summary = setup / "gh_output", setup / "gh_summary"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = _drift(setup, exported_model, window, "--model", str(exported_model.onnx_path))
    assert code == 1 - 1  # without --fail-on-drift a finding is a result, not a failure
    assert _drift(setup, exported_model, window, "--fail-on-drift") == 1
    result = _result(setup)
    assert result["verdict"] == "drift" and result["drifting_features"][0] == "monthly_charges"
    markdown = (setup / "out" / "drift.md").read_text()
    assert markdown.startswith("# 🔴 Drift detected\n\n**Verdict: `drift`**")
    assert "xychart-beta" in markdown and "monthly_charges" in markdown
    assert "drift=true\nverdict=drift\nfeatures=monthly_charges" in outputs.read_text()
    assert summary.read_text().startswith("# 🔴 Drift detected")


def test_model_scores_give_prediction_drift_and_labels_give_performance_with_ci(
    setup: Path, exported_model: ExportedModel
) -> None:
    window = setup / "behaviour.parquet"
    gio.write_parquet(window, simulate_traffic("churn_behaviour", 3000, seed=2, labels=True))
    assert _drift(setup, exported_model, window, "--model", str(exported_model.onnx_path)) == 0
    result = _result(setup)
    assert result["prediction"]["mean_cur"] > result["prediction"]["mean_ref"]
    brier = result["performance"]["metrics"]["brier"]
    assert brier["ci95"]["low"] <= brier["current"] <= brier["ci95"]["high"]
    assert brier["degraded"] and result["performance"]["level"] == "alert"
    assert "## Performance (labelled rows)" in (setup / "out" / "drift.md").read_text()


def test_clean_window_in_csv_parquet_and_gzipped_log_glob_all_say_no_drift(
    setup: Path, exported_model: ExportedModel
) -> None:
    frame = simulate_traffic("none", 2000, seed=3)
    scores = ModelScorer(exported_model.onnx_path, exported_model.contract).score(frame)
    lines = prediction_log_lines(Window(frame, scores, []), exported_model.contract, "fixture")
    logs = setup / "logs"
    logs.mkdir()
    for part in range(2):  # a day's log rotated into two gzipped files
        with gzip.open(logs / f"predictions-{part}.jsonl.gz", "wt") as handle:
            handle.write("\n".join(lines[part * 1000 : (part + 1) * 1000]) + "\n")
    frame.to_csv(setup / "clean.csv", index=False)
    gio.write_parquet(setup / "clean.parquet", frame)
    verdicts = {}
    for name in ("clean.csv", "clean.parquet", f"{logs}/*.jsonl.gz"):
        current = name if name.startswith("/") else setup / name
        assert _drift(setup, exported_model, current, "--fail-on-drift") == 0
        result = _result(setup)
        verdicts[name] = (result["verdict"], result["rows"], result["features"][0]["psi"])
    assert {v[:2] for v in verdicts.values()} == {("no_drift", 2000)}
    assert len({round(v[2], 12) for v in verdicts.values()}) == 1  # same numbers from every format
    assert _result(setup)["prediction"] is not None  # logged scores were used


def test_small_window_is_not_enough_data_with_its_own_exit_code(
    setup: Path, exported_model: ExportedModel
) -> None:
    window = setup / "tiny.parquet"
    gio.write_parquet(window, simulate_traffic("new_plan", 120, seed=4))
    assert _drift(setup, exported_model, window) == 0
    assert _drift(setup, exported_model, window, "--fail-on-drift") == 3
    result = _result(setup)
    assert result["verdict"] == "not_enough_data" and not result["drift"]
    assert "120 rows < min_rows 500" in result["reason"]


def test_missing_column_is_a_clear_error_with_exit_2(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    window = setup / "no_plan.csv"
    simulate_traffic("none", 600).drop(columns=["plan", "age"]).to_csv(window, index=False)
    assert _drift(setup, exported_model, window, "--fail-on-drift") == 2
    err = capsys.readouterr().err
    assert "no_plan.csv: missing feature column(s) ['plan', 'age']" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_wrong_type_names_the_column_and_the_count(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    frame = simulate_traffic("none", 600)
    frame["tenure_months"] = frame["tenure_months"].astype(str)
    frame.loc[:2, "tenure_months"] = "twelve"
    if suffix == "csv":
        frame.to_csv(setup / "typo.csv", index=False)
    else:
        gio.write_parquet(setup / "typo.parquet", frame)
    assert _drift(setup, exported_model, setup / f"typo.{suffix}") == 2
    err = capsys.readouterr().err
    assert "'tenure_months' must be int but 3 value(s)" in err and "'twelve'" in err


@pytest.mark.parametrize("content", ["", "customer_id,plan\n"])
def test_empty_file_is_a_clear_error_with_exit_2(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    window = setup / "empty.csv"
    window.write_text(content)
    assert _drift(setup, exported_model, window) == 2
    err = capsys.readouterr().err
    assert "empty.csv" in err and ("empty" in err or "missing feature column" in err)


def test_header_only_parquet_and_unmatched_glob_are_errors(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    gio.write_parquet(setup / "none.parquet", simulate_traffic("none", 10).iloc[:0])
    assert _drift(setup, exported_model, setup / "none.parquet") == 2
    assert "no data rows" in capsys.readouterr().err
    assert _drift(setup, exported_model, f"{setup}/nothing-*.parquet") == 2
    assert "no file matches" in capsys.readouterr().err


def test_a_model_other_than_the_profiled_one_is_refused(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = json.loads((setup / "profile.json").read_text())
    profile["model_sha256"] = "0" * 64
    gio.write_json(setup / "other_profile.json", profile)
    window = setup / "w.parquet"
    gio.write_parquet(window, simulate_traffic("none", 600))
    code = run_drift(
        setup / "other_profile.json",
        exported_model.contract_path,
        window,
        setup / "out2",
        "--model",
        str(exported_model.onnx_path),
    )
    assert code == 2
    assert "is not the model the profile was built for" in capsys.readouterr().err


def test_report_lists_features_most_severe_first(
    setup: Path, exported_model: ExportedModel
) -> None:
    window = setup / "missing.parquet"
    gio.write_parquet(window, simulate_traffic("missing_spike", 3000, seed=5))
    _drift(setup, exported_model, window)
    result = _result(setup)
    levels = [f["level"] for f in result["features"]]
    assert levels == sorted(levels, key=["alert", "warn", "ok", "not_enough_data"].index)
    table = pd.DataFrame(result["features"])
    assert set(table.loc[table["level"] == "alert", "name"]) == {
        "data_usage_gb",
        "avg_session_minutes",
        "satisfaction_score",
    }
    assert "(missing)" in (setup / "out" / "drift.md").read_text()


def test_results_are_frozen_and_drift_json_keeps_its_documented_keys(
    setup: Path, exported_model: ExportedModel
) -> None:
    import dataclasses

    from gitops_ml.monitor.drift import check_drift
    from gitops_ml.monitor.readers import frame_chunks

    profile = json.loads((setup / "profile.json").read_text())
    window = frame_chunks(simulate_traffic("new_plan", 1000, seed=9), exported_model.contract)
    result = check_drift(profile, exported_model.contract, window, drift_settings())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.features[0].distribution.level = "ok"  # type: ignore[misc]
    as_json = result.to_json()
    assert set(as_json) == {
        "verdict", "drift", "reason", "rows", "skipped_lines", "skipped_line_examples",
        "features", "drifting_features", "summary", "prediction", "performance", "reference",
        "thresholds",
    }  # fmt: skip
    common = {
        "name", "type", "kind", "rows", "test", "statistic", "p_distribution", "p_value", "psi",
        "js", "wasserstein_norm", "unseen", "chart", "missing_ref", "missing_cur",
        "missing_change", "p_missing", "level", "p_adjusted", "significant",
    }  # fmt: skip
    kinds = {f["kind"]: set(f) for f in as_json["features"]}
    assert kinds["numeric"] == common | {"mean_ref", "mean_cur"}
    assert kinds["categorical"] == common | {"unseen_top"}
    assert set(as_json["features"][0]["chart"]) == {"labels", "reference", "current"}
