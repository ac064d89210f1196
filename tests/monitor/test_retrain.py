"""`gitops-ml retrain`: the labelled window it is given, or a clear error, and the window a
drift check saves for it (the combining itself is specified in test_simulate.py; drift.yml's
capture-mode retraining in tests/workflows/test_workflow_drift.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from project_fixtures import CONTRACT_PATH

from gitops_ml.cli import main
from gitops_ml.contract import load_contract
from gitops_ml.monitor.outcomes import OutcomeJoin, spill_outcomes
from gitops_ml.monitor.readers import window_table
from gitops_ml.monitor.windows import parse_duration
from gitops_ml.synthetic import generate_churn


@pytest.mark.parametrize("window", ["", "  "])
def test_an_empty_window_argument_is_a_clear_error(
    window: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What drift.yml passed when the check job wrote no window: it once read as
    `error: : unsupported file type`."""
    assert main(["retrain", "--window", window]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --window is empty: give the labelled production window")
    assert "Traceback" not in err


def test_a_captured_log_with_outcomes_becomes_the_labelled_table_retrain_takes(
    tmp_path: Path,
) -> None:
    """`drift --save-window` writes window_table(): each prediction's id and time fill the
    contract's id and timestamp columns, its label is the joined outcome (None until known),
    and a torn line is skipped as the check skips it."""
    contract = load_contract(CONTRACT_PATH)
    rows = generate_churn(3, seed=4)
    log = tmp_path / "pod-a.jsonl"
    lines = []
    for n, record in enumerate(rows.drop(columns=[contract.target]).to_dict(orient="records")):
        features = {k: v for k, v in record.items() if k in contract.feature_names}
        ident = str(record[contract.id_column])
        ts = f"2026-11-0{n + 1}T12:00:00"
        lines.append(json.dumps({"ts": ts, "id": ident, "features": features}, default=str))
    lines.insert(1, '{"ts": "2026-11-01T12:00:01", "id": "torn", "feat')
    log.write_text("\n".join(lines) + "\n")
    ids = rows[contract.id_column].astype(str).tolist()
    outcomes_csv = tmp_path / "outcomes.csv"
    pd.DataFrame(
        {"id": ids[:2], "timestamp": ["2026-11-03T00:00:00Z"] * 2, "label": ["true", "false"]}
    ).to_csv(outcomes_csv, index=False)
    join = OutcomeJoin(tmp_path / "join", 3, parse_duration("30d", "--max-delay"), "30d")
    spill_outcomes(join, 0, [(0, outcomes_csv, "outcomes.csv")], contract)

    table = window_table([log], contract, join)

    assert list(table.columns) == contract.names
    assert table[contract.id_column].astype(str).tolist() == ids
    assert table[contract.timestamp].dt.day.tolist() == [1, 2, 3]
    assert table[contract.target].tolist()[:2] == [True, False]
    assert table[contract.target].isna().tolist() == [False, False, True]
