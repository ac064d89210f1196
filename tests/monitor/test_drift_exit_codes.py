"""Exit 1 means drift and nothing else: every failure that is not a finding exits 2 with `error:`.

And a torn prediction-log line (a crash or a full disk mid-write) is skipped and counted, not
allowed to reject the whole window.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ExportedModel
from monitor_support import run_drift, write_fixture_profile

from gitops_ml.monitor import drift as drift_module
from gitops_ml.monitor.simulate import Window, prediction_log_lines
from gitops_ml.synthetic import generate_churn


@pytest.fixture(scope="module")
def setup(exported_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("drift_exit")
    write_fixture_profile(exported_model, directory / "profile.json")
    return directory


def _drift(
    setup: Path, exported_model: ExportedModel, current: Path, *extra: str, **paths: Path
) -> int:
    return run_drift(
        paths.get("profile", setup / "profile.json"),
        exported_model.contract_path,
        current,
        paths.get("out", setup / "out"),
        "--fail-on-drift",
        *extra,
    )


def _clean_window(setup: Path, rows: int = 1000) -> Path:
    frame = generate_churn(rows, 5, start="2026-01-01", days=30).drop(columns=["churned"])
    path = setup / "clean.parquet"
    frame.to_parquet(path, compression=None, row_group_size=rows)
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_a_corrupt_parquet_data_page_is_an_error_naming_the_file(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _clean_window(setup)
    meta = pq.ParquetFile(path).metadata.row_group(0).column(3)  # a numeric feature's pages
    data = bytearray(path.read_bytes())
    start = meta.data_page_offset
    data[start : start + 64] = b"\xff" * 64  # the page header: unreadable, the footer intact
    corrupt = setup / "corrupt.parquet"
    corrupt.write_bytes(bytes(data))
    assert _drift(setup, exported_model, corrupt) == 2
    assert "corrupt.parquet: cannot read" in _error(capsys)
    assert _drift(setup, exported_model, corrupt, "--model", str(exported_model.onnx_path)) == 2
    assert "corrupt.parquet: cannot read" in _error(capsys)


def test_a_profile_path_that_is_a_directory_exits_2(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    (setup / "profile_dir").mkdir()
    window = _clean_window(setup)
    assert _drift(setup, exported_model, window, profile=setup / "profile_dir") == 2
    assert "profile_dir: cannot read the profile" in _error(capsys)


def test_an_output_dir_under_a_file_exits_2(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    (setup / "a_file").write_text("not a directory")
    window = _clean_window(setup)
    assert _drift(setup, exported_model, window, out=setup / "a_file" / "out") == 2
    assert "cannot write the report to" in _error(capsys)


def test_an_unexpected_failure_is_not_reported_as_drift(
    setup: Path,
    exported_model: ExportedModel,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(drift_module, "accumulate_window", broken)
    assert _drift(setup, exported_model, _clean_window(setup)) == 2
    err = capsys.readouterr().err
    assert "error: the drift check failed unexpectedly (RuntimeError: boom)" in err
    assert "this is not a drift finding" in err


def _log(setup: Path, exported_model: ExportedModel, rows: int) -> list[str]:
    frame = generate_churn(rows, 6, start="2026-01-01", days=30).drop(columns=["churned"])
    return prediction_log_lines(Window(frame, None, []), exported_model.contract, "fixture")


def test_torn_log_lines_are_skipped_and_counted_not_fatal(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _log(setup, exported_model, 1000)
    glued = lines[10][: len(lines[10]) // 2] + lines[11]  # a short write glued to the next line
    torn = [*lines[:10], glued, *lines[12:], lines[0][:40]]  # and a crash mid-line at the end
    log = setup / "predictions.jsonl"
    log.write_text("\n".join(torn) + "\n")
    assert _drift(setup, exported_model, log) == 0
    result = json.loads((setup / "out" / "drift.json").read_text())
    assert result["rows"] == 998 and result["verdict"] == "no_drift"
    assert result["skipped_lines"] == 2
    assert result["skipped_line_examples"] == ["predictions.jsonl:11", "predictions.jsonl:1000"]
    warning = "skipped 2 log line(s) that are not valid JSON (torn writes?)"
    assert warning in (setup / "out" / "drift.md").read_text()
    assert f"warning: {warning}" in capsys.readouterr().err


def test_a_log_of_nothing_but_broken_lines_is_an_error(
    setup: Path, exported_model: ExportedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    log = setup / "garbage.jsonl"
    log.write_text('{not json\n{"also": \n')
    assert _drift(setup, exported_model, log) == 2
    assert "no data rows (2 line(s) that are not valid JSON skipped)" in _error(capsys)
