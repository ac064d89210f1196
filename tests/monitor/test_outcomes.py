"""Outcomes joined to captured predictions (issue 13): `gitops-ml drift --labels URL
[--max-delay 30d]` joins the team's outcome records (id, timestamp, label) to the logged
predictions by id, measures performance on the joined rows only, says how many predictions
have outcomes yet, and finds a planted performance drop, from a local directory or from an
S3-compatible store."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import ExportedModel
from monitor_support import drift_on_fixture, write_fixture_profile
from object_store import object_store
from project_fixtures import PARAMS_PATH

from gitops_ml.cli import main
from gitops_ml.monitor.readers import ModelScorer
from gitops_ml.monitor.simulate import Window as Traffic
from gitops_ml.monitor.simulate import prediction_log_lines
from gitops_ml.synthetic import generate_churn

pytestmark = pytest.mark.slow

DAYS = 7
ROWS_PER_DAY = 700
FIRST_DAY = datetime(2026, 11, 1, 13, tzinfo=UTC)
# The store's address is set in this process's environment by the test itself: worker
# processes an earlier test started would not see it (a pool inherits its environment once).
IN_THIS_PROCESS = ("--workers", "1")


def week_of_traffic(exported_model: ExportedModel) -> tuple[dict[str, bytes], pd.DataFrame]:
    """Capture-shaped files for Nov 1..7 (predictions with ids, no labels) and the truth:
    one row per prediction with its id, time and real outcome."""
    contract = exported_model.contract
    scorer = ModelScorer(exported_model.onnx_path, contract)
    files, truth = {}, []
    for n in range(DAYS):
        hour = FIRST_DAY + timedelta(days=n)
        frame = generate_churn(ROWS_PER_DAY, 300 + n, "none", start=hour.date().isoformat(), days=1)
        stamps = pd.Series([hour + timedelta(seconds=3 * i) for i in range(len(frame))])
        outcome = frame[contract.target].to_numpy(dtype=bool)
        features = frame.drop(columns=[contract.target])
        traffic = Traffic(features, scorer.score(features), [], stamps.dt.tz_localize(None))
        lines = []
        for line in prediction_log_lines(traffic, contract, "m"):
            record = json.loads(line)
            record["id"] = record["request_id"]  # the server echoes the contract's id column
            lines.append(json.dumps(record))
        name = f"date={hour:%Y-%m-%d}/hour=13/pod-a-1795000000000-{n + 1:06d}.jsonl.gz"
        files[name] = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
        ids = features[contract.id_column].astype(str)
        truth.append(pd.DataFrame({"id": ids, "ts": stamps, "outcome": outcome}))
    return files, pd.concat(truth, ignore_index=True)


def outcome_records(truth: pd.DataFrame, flip: float, seed: int = 5) -> pd.DataFrame:
    """What the team's systems write: 70 % of predictions get an outcome 1-20 days later,
    5 % more only after 40 days (past --max-delay 30d), plus 50 ids served elsewhere.
    `flip` inverts that share of outcomes: the planted performance drop."""
    rng = np.random.default_rng(seed)
    draw = rng.random(len(truth))
    known = truth[draw < 0.75].copy()
    late = draw[draw < 0.75] >= 0.70
    delay = np.where(late, 40.0, rng.uniform(1, 20, len(known)))
    labels = known["outcome"].to_numpy() ^ (rng.random(len(known)) < flip)
    stamps = known["ts"] + pd.to_timedelta(delay, unit="D")
    records = pd.DataFrame(
        {
            "id": known["id"],
            "timestamp": stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "label": np.where(labels, "true", "false"),
        }
    )
    elsewhere = pd.DataFrame(
        {"id": [f"other-{i}" for i in range(50)], "timestamp": "2026-11-09T00:00:00Z"}
    ).assign(label="false")
    return pd.concat([records, elsewhere], ignore_index=True)


def run_drift(
    exported_model: ExportedModel, directory: Path, current: str, labels: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    window = ("--window", "2026-11-01..2026-11-07")
    outcomes = ("--labels", labels, "--max-delay", "30d")
    return drift_on_fixture(exported_model, directory, current, *window, *outcomes, *extra)


@pytest.fixture(scope="module")
def traffic(exported_model: ExportedModel) -> tuple[dict[str, bytes], pd.DataFrame]:
    return week_of_traffic(exported_model)


def test_true_outcomes_join_by_id_and_show_no_performance_drift_with_the_counts_reported(
    exported_model: ExportedModel, tmp_path: Path, traffic: tuple[dict[str, bytes], pd.DataFrame]
) -> None:
    files, truth = traffic
    for name, data in files.items():
        (tmp_path / "predictions" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "predictions" / name).write_bytes(data)
    outcomes = outcome_records(truth, flip=0.0)
    (tmp_path / "outcomes").mkdir()
    outcomes.iloc[:2000].to_csv(tmp_path / "outcomes" / "batch-1.csv", index=False)
    outcomes.iloc[2000:].to_json(
        tmp_path / "outcomes" / "batch-2.jsonl", orient="records", lines=True
    )

    code, result, markdown = run_drift(
        exported_model, tmp_path, str(tmp_path / "predictions"), str(tmp_path / "outcomes")
    )

    joined = result["outcomes"]
    predictions = DAYS * ROWS_PER_DAY
    with_outcome = len(outcomes) - 50 - joined["outside_max_delay"]
    assert joined["predictions"] == predictions
    assert joined["with_outcome"] == with_outcome == result["performance"]["rows"]
    assert 0.65 < joined["share_with_outcome"] < 0.75
    assert joined["unmatched_outcomes"] == 50 and joined["outside_max_delay"] > 100
    assert (code, result["verdict"]) == (0, "no_drift"), result["reason"]
    assert result["performance"]["level"] == "ok"
    assert f"{with_outcome:,} of {predictions:,} predictions" in markdown


def test_a_planted_performance_drop_is_found_from_outcomes_in_an_s3_compatible_store(
    exported_model: ExportedModel,
    tmp_path: Path,
    traffic: tuple[dict[str, bytes], pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files, truth = traffic
    outcomes = outcome_records(truth, flip=0.3)  # the world changed: 30 % of outcomes differ
    body = outcomes.to_json(orient="records", lines=True).encode()
    with object_store("captures") as store:
        client = store.client()
        for name, data in files.items():
            client.put_object(Bucket="captures", Key=f"predictions/{name}", Body=data)
        client.put_object(
            Bucket="captures", Key="outcomes/date=2026-11-20/crm.jsonl.gz", Body=gzip.compress(body)
        )
        for key, value in store.env().items():
            monkeypatch.setenv(key, value)
        code, result, _ = run_drift(
            exported_model,
            tmp_path,
            "s3://captures/predictions/",
            "s3://captures/outcomes/",
            *IN_THIS_PROCESS,
        )

    assert result["verdict"] == "drift" and code == 0
    assert result["performance"]["level"] == "alert"
    assert result["performance"]["metrics"]["roc_auc"]["degraded"]
    assert result["drifting_features"] == [], "the features did not move; the outcomes did"


def _drift_on_one_file(
    exported_model: ExportedModel, tmp_path: Path, files: dict[str, bytes], labels: Path
) -> int:
    """`gitops-ml drift --labels LABELS` over the first captured file."""
    name, data = next(iter(files.items()))
    (tmp_path / "predictions" / name).parent.mkdir(parents=True)
    (tmp_path / "predictions" / name).write_bytes(data)
    write_fixture_profile(exported_model, tmp_path / "profile.json")
    return main(
        [
            "drift",
            "--profile",
            str(tmp_path / "profile.json"),
            "--current",
            str(tmp_path / "predictions"),
            "--since",
            "3650d",
            "--labels",
            str(labels),
            "--contract",
            str(exported_model.contract_path),
            "--params",
            str(PARAMS_PATH),
        ]
    )


def test_an_outcome_file_without_the_documented_columns_is_an_exit_2_error(
    exported_model: ExportedModel,
    tmp_path: Path,
    traffic: tuple[dict[str, bytes], pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "outcomes.csv").write_text("customer,when,churned\nc1,2026-11-02,true\n")
    code = _drift_on_one_file(exported_model, tmp_path, traffic[0], tmp_path / "outcomes.csv")
    assert code == 2
    assert "outcomes.csv: outcome file lacks column(s) id, timestamp, label" in (
        capsys.readouterr().err
    )


def test_a_damaged_gzipped_outcome_file_is_an_exit_2_error_naming_it(
    exported_model: ExportedModel,
    tmp_path: Path,
    traffic: tuple[dict[str, bytes], pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcomes = gzip.compress(b"id,timestamp,label\n" + b"c1,2026-11-02,true\n" * 5000, mtime=0)
    (tmp_path / "outcomes.csv.gz").write_bytes(outcomes[:-200])  # an interrupted upload
    code = _drift_on_one_file(exported_model, tmp_path, traffic[0], tmp_path / "outcomes.csv.gz")
    err = capsys.readouterr().err
    assert code == 2
    assert "outcomes.csv.gz: cannot read outcomes: " in err
    assert "Traceback" not in err and "unexpectedly" not in err
