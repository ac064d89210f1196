"""`gitops-ml retrain`: the labelled window it is given, or a clear error (the combining
itself is specified in test_simulate.py; drift.yml's capture-mode retraining in
tests/workflows/test_workflow_drift.py)."""

from __future__ import annotations

import pytest

from gitops_ml.cli import main


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
