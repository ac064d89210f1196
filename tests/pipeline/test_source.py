"""`gitops-ml source --set FILE|URL`: DVC tracks the data, then `data.source` names it.

A local file is `dvc add`ed, a URL (HTTP or S3) `dvc import-url`ed into data/ and refreshed by
`dvc update`; the generator's output is DVC's already. When DVC refuses, its reason is the error
and params.yaml is left as it was.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from object_store import object_store

from gitops_ml import paths
from gitops_ml.cli import main
from gitops_ml.pipeline.source import set_data_source

PARAMS = """# comment kept
data:
  source: data/synthetic/data.parquet  # the data file
  rows: 100
  seed: 1
  scenario: none
"""


def dvc(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def data_source() -> str:
    source: str = yaml.safe_load(Path(paths.PARAMS).read_text())["data"]["source"]
    return source


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding params.yaml, as the current directory."""
    monkeypatch.chdir(tmp_path)
    Path(paths.PARAMS).write_text(PARAMS)
    return tmp_path


@pytest.fixture
def project(workdir: Path) -> Path:
    """A Git repository with DVC initialised and params.yaml committed."""
    subprocess.run(["git", "init", "--quiet"], check=True)
    dvc("init", "--quiet")
    return workdir


def test_set_data_source_changes_the_value_and_keeps_every_comment() -> None:
    updated = set_data_source(PARAMS, "data/customers.csv")
    assert yaml.safe_load(updated)["data"] == {
        **yaml.safe_load(PARAMS)["data"],
        "source": "data/customers.csv",
    }
    changed = [
        (old, new)
        for old, new in zip(PARAMS.splitlines(), updated.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [
        (
            "  source: data/synthetic/data.parquet  # the data file",
            "  source: data/customers.csv           # the data file",  # the comment's column
        )
    ]


def test_a_missing_file_is_refused_and_params_yaml_is_left_alone(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["source", "--set", "nowhere.csv"]) == 2
    assert capsys.readouterr().err.startswith("error: nowhere.csv: file not found;")
    assert Path(paths.PARAMS).read_text() == PARAMS


def test_a_url_naming_no_file_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", "--set", "https://example.invalid/exports/"]) == 2
    assert "the URL names no file" in capsys.readouterr().err
    assert Path(paths.PARAMS).read_text() == PARAMS


def test_the_generators_output_needs_no_tracking(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Back to the demo data: the generate stage's output is DVC's already (and may not exist
    before the first `dvc repro`)."""
    Path(paths.PARAMS).write_text(set_data_source(PARAMS, "data/customers.csv"))
    assert main(["source", "--set", paths.SYNTHETIC_DATA]) == 0
    assert Path(paths.PARAMS).read_text() == PARAMS
    assert not list(workdir.rglob("*.dvc"))


@pytest.mark.slow
def test_a_local_file_is_added_to_dvc_and_named_by_data_source(project: Path) -> None:
    Path("data").mkdir()
    Path("data/customers.csv").write_text("a,b\n1,2\n")

    assert main(["source", "--set", "data/customers.csv"]) == 0

    tracked = yaml.safe_load(Path("data/customers.csv.dvc").read_text())
    assert tracked["outs"][0]["path"] == "customers.csv" and tracked["outs"][0]["size"] == 8
    assert "/customers.csv" in Path("data/.gitignore").read_text().split()
    assert data_source() == "data/customers.csv"


@pytest.mark.slow
def test_when_dvc_refuses_its_reason_is_the_error_and_params_stay(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("mine.csv").write_text("a\n1\n")
    subprocess.run(["git", "add", "mine.csv"], check=True)  # Git's already: DVC says no

    assert main(["source", "--set", "mine.csv"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: `dvc add mine.csv` failed: ERROR:"), err
    assert "already tracked by SCM" in err
    assert Path(paths.PARAMS).read_text() == PARAMS


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback (sending Last-Modified), serving a directory."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_url_is_imported_by_dvc_and_refreshed_by_dvc_update(
    project: Path, http_root: tuple[str, Path]
) -> None:
    root, served = http_root
    (served / "export.csv").write_text("a\n1\n")

    assert main(["source", "--set", f"{root}/export.csv"]) == 0

    assert data_source() == "data/export.csv"
    assert Path("data/export.csv").read_text() == "a\n1\n"
    imported = yaml.safe_load(Path("data/export.csv.dvc").read_text())
    assert imported["deps"][0]["path"] == f"{root}/export.csv" and imported["frozen"] is True
    (served / "export.csv").write_text("a\n1\n2\n")
    os.utime(served / "export.csv", (2_000_000_000, 2_000_000_000))  # a new Last-Modified
    dvc("update", "data/export.csv.dvc")
    assert Path("data/export.csv").read_text() == "a\n1\n2\n"


@pytest.mark.slow
def test_an_s3_object_is_imported_by_dvc(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with object_store("exports") as store:
        store.client().put_object(Bucket="exports", Key="2026/customers.csv", Body=b"a\n1\n")
        for name, value in store.env().items():  # credentials as a CI job gets them (OIDC)
            monkeypatch.setenv(name, value)

        assert main(["source", "--set", "s3://exports/2026/customers.csv"]) == 0

    assert data_source() == "data/customers.csv"
    assert Path("data/customers.csv").read_text() == "a\n1\n"
    imported = yaml.safe_load(Path("data/customers.csv.dvc").read_text())
    assert imported["deps"][0]["path"] == "s3://exports/2026/customers.csv"
