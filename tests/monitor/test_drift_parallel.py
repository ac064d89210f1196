"""`gitops-ml drift --workers 2` over captured hourly partitions (gzipped prediction logs):
the map runs in two processes and its merged result is the single pass's; a corrupt partition
is the same clear error in a worker as in one process."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ExportedModel
from monitor_support import drift_on_fixture, run_drift, same_report, write_fixture_profile

from gitops_ml.monitor.readers import ModelScorer
from gitops_ml.monitor.simulate import Window, prediction_log_lines
from gitops_ml.synthetic import generate_churn

pytestmark = pytest.mark.slow


def write_partitions(exported_model: ExportedModel, root: Path, hours: int = 12) -> list[Path]:
    """A shifted window's prediction log, one gzipped file per hour as the capture ships it."""
    contract = exported_model.contract
    frame = generate_churn(6000, 5, "price_increase", start="2026-01-01", days=30)
    scores = ModelScorer(exported_model.onnx_path, contract).score(frame)
    lines = []
    for line in prediction_log_lines(Window(frame, scores, []), contract, "fixture"):
        record = json.loads(line)
        record["id"] = record["request_id"]  # the server echoes the contract's id column
        lines.append(json.dumps(record))
    paths = []
    for hour, part in enumerate(np.array_split(np.array(lines, dtype=object), hours)):
        path = root / "date=2026-11-01" / f"hour={hour:02d}" / "pod-0.jsonl.gz"
        path.parent.mkdir(parents=True)
        with gzip.open(path, "wt") as handle:
            handle.write("\n".join(part) + "\n")
        paths.append(path)
    return paths


def test_two_workers_give_the_single_pass_result(
    exported_model: ExportedModel, tmp_path: Path
) -> None:
    write_partitions(exported_model, tmp_path / "captures")
    current = str(tmp_path / "captures")
    code_one, one, _ = drift_on_fixture(exported_model, tmp_path / "one", current, "--workers", "1")
    code_two, two, _ = drift_on_fixture(exported_model, tmp_path / "two", current, "--workers", "2")
    assert code_one == code_two == 0
    assert two["rows"] == 6000 and two["verdict"] == "drift"
    assert two["prediction"]["level"] != "not_computed"
    same_report(two, one)


def test_two_workers_join_outcomes_as_one_does(
    exported_model: ExportedModel, tmp_path: Path
) -> None:
    write_partitions(exported_model, tmp_path / "captures")
    frame = generate_churn(6000, 5, "price_increase", start="2026-01-01", days=30)
    ids = frame[exported_model.contract.id_column].astype(str)
    pd.DataFrame(
        {"id": ids[::3], "timestamp": "2026-02-15T00:00:00Z", "label": frame["churned"][::3]}
    ).to_csv(tmp_path / "outcomes.csv", index=False)
    current, labels = str(tmp_path / "captures"), ("--labels", str(tmp_path / "outcomes.csv"))
    runs = [
        drift_on_fixture(exported_model, tmp_path / str(n), current, *labels, "--workers", str(n))
        for n in (1, 2)
    ]
    (code_one, one, _), (code_two, two, _) = runs
    assert code_one == code_two == 0
    assert two["outcomes"]["with_outcome"] == 2000 == two["performance"]["rows"]
    same_report(two, one)


def test_a_corrupt_partition_in_a_worker_is_the_error_naming_it(
    exported_model: ExportedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = write_partitions(exported_model, tmp_path / "captures")
    broken = paths[7]
    broken.write_bytes(broken.read_bytes()[:-200])  # a truncated gzip stream
    write_fixture_profile(exported_model, tmp_path / "profile.json")
    current = tmp_path / "captures"
    code = run_drift(
        tmp_path / "profile.json",
        exported_model.contract_path,
        current,
        tmp_path / "out",
        "--workers",
        "2",
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {broken}: cannot read: EOFError")
    assert "Traceback" not in err and "joblib" not in err
