"""`gitops-ml summary`: what `make run` prints at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_ml.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_summary_prints_metrics_with_intervals_and_the_onnx_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["summary", "--metrics-dir", str(REPO / "metrics")]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC" in out and "95% interval" in out
    assert "ONNX model: models/model.onnx" in out
    assert "label flips" in out


def test_summary_before_any_run_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--metrics-dir", str(tmp_path)]) == 2
    assert "run `make run`" in capsys.readouterr().err
