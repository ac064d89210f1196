"""`gitops-ml simulate`: windows drawn from any contract's profile, scenarios as data.

Every scenario is checked by the drift check itself, on the template's fixture contract and on
a fork's foreign-shaped one: each change is detected where it was made, and `none` is not.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import ExportedModel
from monitor_support import ForeignProject, foreign, run_drift, write_fixture_profile
from project_fixtures import PARAMS_PATH

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.cli import main
from gitops_ml.contract import Contract, parse_contract
from gitops_ml.monitor.retrain import append_window, set_data_source
from gitops_ml.monitor.simulate import (
    NEW_CATEGORY,
    ScenarioError,
    encode_csv,
    parse_scenario,
    resolve_scenarios,
)
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.synthetic import generate_churn

__all__ = ["foreign"]  # the session fixture, imported for pytest


@dataclass(frozen=True)
class Project:
    """What simulate and drift need: contract, profile, model and training data, as files."""

    directory: Path
    contract_path: Path
    profile_path: Path
    onnx_path: Path
    train_path: Path
    contract: Contract

    def simulate(self, output: str, *extra: str) -> int:
        return main(
            [
                "simulate",
                "--output",
                str(self.directory / output),
                "--profile",
                str(self.profile_path),
                "--contract",
                str(self.contract_path),
                "--params",
                str(PARAMS_PATH),
                *extra,
            ]
        )

    def drift(self, current: str, *extra: str) -> dict[str, Any]:
        out = self.directory / "out"
        code = run_drift(
            self.profile_path, self.contract_path, self.directory / current, out, *extra
        )
        assert code == 0
        result: dict[str, Any] = json.loads((out / "drift.json").read_text())
        return result


@pytest.fixture(scope="module")
def churn(exported_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory) -> Project:
    directory = tmp_path_factory.mktemp("simulate_churn")
    write_fixture_profile(exported_model, directory / "profile.json")
    gio.write_parquet(directory / "train.parquet", exported_model.train_frame)
    return Project(
        directory,
        exported_model.contract_path,
        directory / "profile.json",
        exported_model.onnx_path,
        directory / "train.parquet",
        exported_model.contract,
    )


@pytest.fixture(scope="module")
def fork(foreign: ForeignProject) -> Project:
    return Project(
        foreign.directory,
        foreign.contract_path,
        foreign.profile_path,
        foreign.onnx_path,
        foreign.train_raw_path,  # the fork's raw CSV: read through the contract's encoding
        foreign.contract,
    )


@pytest.fixture(params=["churn", "fork"])
def project(request: pytest.FixtureRequest) -> Project:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ scenarios


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("none", "none"),
        ("shift:age=+20%", "shift:age=+20%"),
        ("shift:age=-3", "shift:age=-3"),
        ("shift:+0.5sd", "shift:+0.5sd"),
        ("new_category:plan", "new_category:plan"),
        ("new_category:plan=0.1", "new_category:plan=0.1"),
        ("missing:age=0.3", "missing:age=0.3"),
        ("missing=0.3", "missing:0.3"),
        ("missing:0.3", "missing:0.3"),
        ("label_shift:+0.1", "label_shift:+0.1"),
    ],
)
def test_scenarios_are_data_that_parse_and_print_back(text: str, written: str) -> None:
    assert str(parse_scenario(text)) == written
    assert parse_scenario(written) == parse_scenario(text)  # what it prints, it reads back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("price_increase", "unknown kind 'price_increase'"),
        ("shfit:age=+1", "did you mean 'shift'"),
        ("shift:age", "shift needs an amount, e.g. shift:COL=+20%"),
        ("shift:age=lots", "'lots' is not a number (N, N% or Nsd)"),
        ("missing:age=1.5", "the share must be in [0, 1]"),
        ("none:age", "'none' takes no column or amount"),
    ],
)
def test_a_bad_scenario_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario(text)


def test_scenarios_are_checked_against_the_contract_and_fill_in_the_column(
    contract: Contract,
) -> None:
    shift, new, missing = resolve_scenarios(["shift:+1sd", "new_category", "missing=0.2"], contract)
    assert shift.column == contract.numeric_features[0]  # first float/int feature
    assert new.column == contract.categorical_features[0] and new.amount == 0.3
    assert missing.column == contract.feature_names[0]
    with pytest.raises(ScenarioError, match="'tenure' is not a feature of the contract"):
        resolve_scenarios(["shift:tenure=+1"], contract)
    with pytest.raises(ScenarioError, match="shift needs a float or int feature"):
        resolve_scenarios(["shift:plan=+1"], contract)
    with pytest.raises(ScenarioError, match="cannot be combined"):
        resolve_scenarios(["none", "missing=0.2"], contract)
    numeric_only = Contract("n", tuple(c for c in contract.columns if not c.is_categorical))
    with pytest.raises(ScenarioError, match="the contract has no category feature"):
        resolve_scenarios(["new_category"], numeric_only)


# ------------------------------------------------------------------------------ detection


def _column(project: Project, kind: str) -> str:
    contract = project.contract
    if kind == "shift":
        return next(c.name for c in contract.features if c.type in ("float", "int"))
    if kind == "new_category":
        return contract.categorical_features[0]
    return next(c.name for c in contract.features if c.type == "float")


@pytest.mark.parametrize("source", ["profile", "train"])
def test_none_is_not_drift_and_each_feature_scenario_is_caught_where_it_was_made(
    project: Project, source: str
) -> None:
    train = ("--train", str(project.train_path)) if source == "train" else ()
    assert project.simulate("none.parquet", "--rows", "3000", "--seed", "1", *train) == 0
    result = project.drift("none.parquet")
    assert result["verdict"] == "no_drift", result["reason"]
    for number, kind in enumerate(("shift", "new_category", "missing")):
        column = _column(project, kind)
        spec = {"shift": "=+1sd", "new_category": "", "missing": "=0.4"}[kind]
        name = f"{kind}.parquet"
        args = ("--rows", "3000", "--seed", str(2 + number), *train)
        assert project.simulate(name, "--scenario", f"{kind}:{column}{spec}", *args) == 0
        result = project.drift(name)
        assert result["verdict"] == "drift", (kind, result["reason"])
        assert result["drifting_features"] == [column], kind


def test_label_shift_is_caught_by_performance_and_none_keeps_it_ok(project: Project) -> None:
    """Labels ~ Bernoulli(model score): on resampled training rows the model keeps its skill;
    moving the positive rate by +0.15 degrades it."""
    model = ("--model", str(project.onnx_path))
    args = ("--rows", "4000", "--labels", "--train", str(project.train_path), *model)
    assert project.simulate("labelled.parquet", *args, "--seed", "5") == 0
    clean = project.drift("labelled.parquet", *model)
    assert clean["verdict"] == "no_drift" and clean["performance"]["level"] == "ok"
    assert project.simulate("shifted.parquet", *args, "--scenario", "label_shift:+0.15") == 0
    shifted = project.drift("shifted.parquet", *model)
    assert shifted["verdict"] == "drift" and shifted["performance"]["level"] == "alert"
    assert shifted["drifting_features"] == [] and shifted["prediction"]["level"] == "ok"


# ------------------------------------------------------------------------------ outputs


def test_the_same_seed_gives_the_same_file_and_another_seed_another(fork: Project) -> None:
    for name, seed in (("a.csv", "3"), ("b.csv", "3"), ("c.csv", "4")):
        assert fork.simulate(name, "--rows", "200", "--labels", "--seed", seed) == 0
    a, b, c = ((fork.directory / n).read_bytes() for n in ("a.csv", "b.csv", "c.csv"))
    assert a == b and a != c


def test_csv_is_written_with_the_contracts_tokens_and_reads_back_like_parquet(
    fork: Project,
) -> None:
    args = ("--rows", "2000", "--labels", "--seed", "6", "--scenario", "missing:TotalCharges=0.2")
    assert fork.simulate("tokens.csv", *args) == 0
    assert fork.simulate("tokens.parquet", *args) == 0
    raw = pd.read_csv(fork.directory / "tokens.csv", dtype=str, keep_default_na=False)
    assert set(raw["Partner"]) == {"Yes", "No"} and set(raw["Churn"]) == {"Yes", "No"}
    assert set(raw["SeniorCitizen"]) == {"Yes", "No"}  # the contract's first true/false tokens
    assert (raw["TotalCharges"] == " ").mean() == pytest.approx(0.2, abs=0.03)
    assert raw["customerID"].is_unique
    from_csv, from_parquet = fork.drift("tokens.csv"), fork.drift("tokens.parquet")
    assert from_csv["features"] == from_parquet["features"]


def test_csv_numbers_are_written_with_the_contracts_decimal_mark() -> None:
    contract = parse_contract(
        {
            "encoding": {"decimal_comma": True, "missing_values": ["n/a"]},
            "columns": [
                {"name": "weight", "type": "float", "nullable": True},
                {"name": "count", "type": "int"},
                {"name": "y", "type": "bool", "role": "target"},
            ],
        }
    )
    frame = pd.DataFrame({"weight": [12.5, None], "count": [3, 4], "y": [True, False]})

    cells = encode_csv(frame, contract)

    assert cells["weight"].tolist() == ["12,5", "n/a"]
    validated = validate_frame(cells, contract).frame
    assert validated is not None
    assert validated["weight"].tolist()[:1] == [12.5]


def test_the_log_follows_the_serving_format_with_the_model_named_after_the_contract(
    churn: Project,
) -> None:
    model = ("--model", str(churn.onnx_path))
    args = ("--rows", "600", "--labels", "--train", str(churn.train_path), *model)
    assert churn.simulate("log.jsonl", *args) == 0
    text = (churn.directory / "log.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines()]
    first = records[0]
    assert {"ts", "request_id", "model", "model_version", "features", "prediction", "label"} <= set(
        first
    )
    assert first["model"] == churn.contract.name and first["ts"].endswith("Z")
    assert first["request_id"] == first["features"].get("customer_id", first["request_id"])
    result = churn.drift("log.jsonl")
    assert result["rows"] == 600 and result["prediction"]["level"] == "ok"
    assert result["performance"]["rows"] == 600
    assert churn.simulate("shipped.jsonl.gz", *args) == 0  # gzipped, as capture ships it
    assert gzip.decompress((churn.directory / "shipped.jsonl.gz").read_bytes()).decode() == text


def test_traffic_starts_after_the_training_period(churn: Project, fork: Project) -> None:
    assert churn.simulate("dated.parquet", "--rows", "100") == 0
    dated = gio.read_table(churn.directory / "dated.parquet")
    profile = json.loads(churn.profile_path.read_text())
    assert dated["snapshot_date"].min() > pd.Timestamp(profile["timestamp"]["max"])
    del profile["timestamp"]  # a profile from before the period was recorded
    old = churn.directory / "old_profile.json"
    gio.write_json(old, profile)
    assert churn.simulate("undated.csv", "--rows", "100", "--profile", str(old)) == 0
    assert "snapshot_date" not in pd.read_csv(churn.directory / "undated.csv").columns
    assert (
        churn.simulate("dated.csv", "--rows", "100", "--profile", str(old), "--start", "2030-01-01")
        == 0
    )
    assert pd.read_csv(churn.directory / "dated.csv")["snapshot_date"].min() >= "2030-01-01"
    assert fork.simulate("undated.parquet", "--rows", "100") == 0
    assert list(gio.read_table(fork.directory / "undated.parquet").columns) == [
        c for c in fork.contract.names if c != "Churn"
    ]


def test_rows_default_to_the_window_size_and_bad_arguments_exit_2(
    fork: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fork.simulate("default.parquet") == 0
    assert len(gio.read_table(fork.directory / "default.parquet")) == 5000  # drift.window_rows
    assert fork.simulate("w.xlsx") == 2
    assert "unsupported output type" in capsys.readouterr().err
    assert fork.simulate("w.csv", "--scenario", "shift:gender=+1") == 2
    assert "shift needs a float or int feature" in capsys.readouterr().err
    assert fork.simulate("w.csv", "--scenario", "label_shift:+0.1") == 2
    assert "add --labels" in capsys.readouterr().err


# ------------------------------------------------------------------------------ retraining


def test_retraining_data_appends_labelled_window_and_repoints_data_source(
    contract: Contract,
) -> None:
    base = generate_churn(200, seed=1)
    window = generate_churn(100, seed=2, scenario="price_increase", start="2026-01-01", days=30)
    combined = append_window(base, window, contract)
    assert len(combined) == 300 and list(combined.columns) == contract.names
    assert combined["snapshot_date"].is_monotonic_increasing
    with pytest.raises(Exception, match="no 'churned' labels"):
        append_window(base, window.drop(columns="churned"), contract)
    params = PARAMS_PATH.read_text()
    updated = set_data_source(params, "data/retrain/churn.parquet")
    assert "  source: data/retrain/churn.parquet" in updated
    assert updated.replace("data/retrain/churn.parquet", paths.SYNTHETIC_DATA, 1) == params


def test_a_shift_stays_within_the_contracts_range(churn: Project) -> None:
    """Serving refuses values outside the contract's checks: no log could hold them."""
    assert churn.simulate("up.parquet", "--rows", "2000", "--scenario", "shift:age=+3sd") == 0
    age = gio.read_table(churn.directory / "up.parquet")["age"]
    assert age.max() == churn.contract.column("age").checks.max and age.min() > 18


def test_new_category_uses_a_name_the_reference_never_had(churn: Project) -> None:
    assert churn.simulate("new.parquet", "--rows", "500", "--scenario", "new_category:plan") == 0
    plans = gio.read_table(churn.directory / "new.parquet")["plan"]
    assert (plans == NEW_CATEGORY).mean() == pytest.approx(0.3, abs=0.06)


def test_retrain_command_combines_a_forks_raw_data_with_a_simulated_window(
    fork: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The base is what ingest writes for a CSV source (text cells: "Yes", " "), the window is
    simulate's typed Parquet: the combined file is typed and passes the fork's validation."""
    from gitops_ml.pipeline.validate import validate_frame

    base = tmp_path / "raw.parquet"
    gio.write_parquet(base, gio.read_table(fork.train_path, raw_text=True))
    window = tmp_path / "window.parquet"
    assert fork.simulate(str(window), "--rows", "300", "--labels", "--seed", "9") == 0
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_PATH.read_text())
    output = tmp_path / "retrain" / "data.parquet"
    args = ["retrain", "--base", str(base), "--window", str(window), "--output", str(output)]
    assert main([*args, "--contract", str(fork.contract_path), "--params", str(params)]) == 0
    combined = gio.read_table(output)
    assert len(combined) == 4000 + 300
    assert validate_frame(combined, fork.contract).failures == []
    assert f"  source: {output}" in params.read_text()
    unlabelled = tmp_path / "unlabelled.parquet"
    assert fork.simulate(str(unlabelled), "--rows", "300") == 0
    capsys.readouterr()
    args[4] = str(unlabelled)
    assert main([*args, "--contract", str(fork.contract_path), "--params", str(params)]) == 2
    assert "error: the production window has no 'Churn' labels" in capsys.readouterr().err


@pytest.mark.parametrize(("id_type", "first"), [("int", 100001), ("category", "sim-5-00000000")])
def test_simulated_ids_have_the_id_columns_type_and_pass_validation(
    id_type: str, first: Any
) -> None:
    """A fork's id may be a number (patient_no): text ids made its retraining window fail."""
    from gitops_ml.monitor.simulate import simulate_window

    checks = {"min": 100001, "unique": True} if id_type == "int" else {"unique": True}
    contract = parse_contract(
        {
            "columns": [
                {"name": "patient_no", "type": id_type, "role": "id", "checks": checks},
                {"name": "x", "type": "float"},
                {"name": "y", "type": "float", "role": "target", "task": "regression"},
            ]
        }
    )
    train = pd.DataFrame({"patient_no": [1, 2, 3], "x": [0.5, 1.5, 2.5], "y": [1.0, 2.0, 3.0]})

    window = simulate_window({}, contract, 50, [], seed=5, train=train)

    ids = window.frame["patient_no"]
    assert ids.iloc[0] == first and ids.is_unique
    failures = validate_frame(window.frame, contract).failures
    assert [f for f in failures if f.column == "patient_no"] == []  # unlabelled: no "y"


def test_simulated_regression_outcomes_stay_within_the_targets_range() -> None:
    """A retraining window built from them must pass validation, as real outcomes do."""
    from gitops_ml.contract import parse_contract
    from gitops_ml.monitor.simulate import LabelDraw, draw_labels

    contract = parse_contract(
        {
            "columns": [
                {"name": "x", "type": "float"},
                {
                    "name": "y",
                    "type": "float",
                    "role": "target",
                    "task": "regression",
                    "checks": {"min": 20, "max": 400},
                },
            ]
        }
    )
    profile = {"metrics": {"test": {"rmse": 60.0}}, "target": {"std": 70.0}}
    draw = LabelDraw(5000, np.random.default_rng(0), np.full(5000, 30.0), profile, -0.5, contract)
    outcomes = draw_labels(draw)
    assert outcomes.min() == 20 and outcomes.max() <= 400
    assert outcomes.between(20, 400).all()
