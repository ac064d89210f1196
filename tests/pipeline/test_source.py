"""The source stage records the data by content, so a change to the data reruns the pipeline."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_ml.cli import main
from gitops_ml.config import DataParams
from gitops_ml.pipeline.source import SourceError, set_data_source, source_record

PARAMS = """# comment kept
data:
  source: synthetic        # "synthetic", or a path or URL
  rows: 100
  seed: 1
  scenario: none
"""


def params(source: str) -> DataParams:
    return DataParams(source=source, rows=100, seed=1, scenario="none")


def test_a_local_file_is_recorded_by_sha256_and_a_change_changes_the_record(
    tmp_path: Path,
) -> None:
    data = tmp_path / "mine.csv"
    data.write_text("a,b\n1,2\n")
    first = source_record(params(str(data)))
    data.write_text("a,b\n1,3\n")
    second = source_record(params(str(data)))
    assert first["kind"] == "file" and first["bytes"] == 8
    assert first["sha256"] != second["sha256"]
    assert source_record(params(str(data))) == second  # unchanged data: identical record


def test_a_dvc_tracked_file_that_was_not_pulled_names_the_remote_to_configure(
    tmp_path: Path,
) -> None:
    (tmp_path / "mine.csv.dvc").write_text("outs:\n- md5: 0\n  path: mine.csv\n")
    with pytest.raises(SourceError, match=r"DVC tracks it .*configure the DVC remote"):
        source_record(params(str(tmp_path / "mine.csv")))
    with pytest.raises(SourceError, match=r"file not found .*dvc add"):
        source_record(params(str(tmp_path / "other.csv")))


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_url_is_recorded_by_what_the_server_says_about_its_content(
    tmp_path: Path, http_root: str
) -> None:
    (tmp_path / "remote.csv").write_text("a\n1\n")
    record = source_record(params(f"{http_root}/remote.csv"))
    assert record["kind"] == "url" and record["last_modified"] and record["bytes"] == 4
    with pytest.raises(SourceError, match="cannot reach the data source"):
        source_record(params(f"{http_root}/missing.csv"))


def test_set_points_data_source_at_a_file_keeping_comments_and_refuses_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(PARAMS)
    Path("mine.csv").write_text("a\n1\n")

    assert main(["source", "--set", "nowhere.csv"]) == 2
    assert Path("params.yaml").read_text() == PARAMS
    assert main(["source", "--set", "mine.csv"]) == 0
    assert Path("params.yaml").read_text() == set_data_source(PARAMS, "mine.csv")
    assert "  source: mine.csv        # " in Path("params.yaml").read_text()
    assert '"sha256"' in Path("data/source.json").read_text()
    assert "nowhere.csv: file not found" in capsys.readouterr().err
