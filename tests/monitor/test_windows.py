"""Windows by time (issue 13): `gitops-ml drift --current ROOT --window A..B` (or `--since 7d`)
lists and reads only the captured hour partitions in range, from a local directory or from an
S3-compatible store, and says clearly when a window holds nothing or does not parse."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import ExportedModel
from monitor_support import drift_on_fixture, write_fixture_profile
from object_store import object_store
from project_fixtures import PARAMS_PATH

from gitops_ml.cli import main
from gitops_ml.contract import Column, Contract, parse_contract
from gitops_ml.monitor import readers
from gitops_ml.monitor.readers import Chunk, ModelScorer, frame_chunks, iter_chunks
from gitops_ml.monitor.simulate import Window as Traffic
from gitops_ml.monitor.simulate import prediction_log_lines
from gitops_ml.monitor.windows import (
    RemoteFile,
    Window,
    WindowError,
    parse_since,
    parse_window,
    window_files,
)
from gitops_ml.synthetic import generate_churn

ROWS_PER_DAY = 400
DAYS = [date(2026, 10, 30 + n) if n < 2 else date(2026, 11, n - 1) for n in range(11)]
IN_WINDOW = [d for d in DAYS if date(2026, 11, 1) <= d <= date(2026, 11, 7)]
# The store's address is set in this process's environment by the test itself: worker
# processes an earlier test started would not see it (a pool inherits its environment once).
IN_THIS_PROCESS = ("--workers", "1")


def test_since_counts_back_from_now_and_window_days_are_inclusive() -> None:
    now = datetime(2026, 11, 8, 9, 30, tzinfo=UTC)
    assert parse_since("7d", now) == Window(datetime(2026, 11, 1, 9, 30, tzinfo=UTC), now)
    assert parse_since("36h", now).start == datetime(2026, 11, 6, 21, 30, tzinfo=UTC)
    window = parse_window("2026-11-01..2026-11-07")
    assert (window.start, window.end) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 8, tzinfo=UTC),
    )
    assert window.days() == IN_WINDOW
    assert window.holds_hour(date(2026, 11, 7), 23)
    assert not window.holds_hour(date(2026, 11, 8), 0)
    assert not window.holds_hour(date(2026, 10, 31), 23)
    # a window starting mid-hour still takes that hour's file
    assert parse_since("1h", now).holds_hour(date(2026, 11, 8), 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7 days", "use a positive count of h, d or w"),
        ("0d", "use a positive count"),
    ],
)
def test_a_bad_since_names_the_rule(text: str, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        parse_since(text, datetime(2026, 11, 8, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-01", "use START..END"),
        ("2026-11-07..2026-11-01", "the end is not after the start"),
        ("2026-11-01..next week", "'next week' is not a date"),
    ],
)
def test_a_bad_window_names_the_rule(text: str, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        parse_window(text)


def captured_days(exported_model: ExportedModel) -> dict[str, bytes]:
    """Eleven days of capture-shaped files, one hour each: clean traffic inside Nov 1..7, a
    price increase outside it, so reading one file too many shows as drift."""
    contract = exported_model.contract
    scorer = ModelScorer(exported_model.onnx_path, contract)
    files: dict[str, bytes] = {}
    for n, day in enumerate(DAYS):
        scenario = "none" if day in IN_WINDOW else "price_increase"
        frame = generate_churn(ROWS_PER_DAY, 100 + n, scenario, start=day.isoformat(), days=1)
        frame = frame.drop(columns=[contract.target])
        lines = prediction_log_lines(Traffic(frame, scorer.score(frame), []), contract, "m")
        name = f"date={day.isoformat()}/hour=13/pod-a-1795000000000-{n + 1:06d}.jsonl.gz"
        files[name] = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    return files


def run_drift(
    exported_model: ExportedModel, directory: Path, current: str, *extra: str
) -> tuple[int, dict[str, Any]]:
    code, result, _ = drift_on_fixture(exported_model, directory, current, *extra)
    return code, result


def in_local_directory(files: dict[str, bytes], tmp_path: Path) -> Callable[[], str]:
    for name, data in files.items():
        (tmp_path / "predictions" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "predictions" / name).write_bytes(data)
    return lambda: str(tmp_path / "predictions")


@pytest.mark.slow
def test_a_seven_day_window_of_a_local_capture_reads_only_those_days(
    exported_model: ExportedModel, tmp_path: Path
) -> None:
    root = in_local_directory(captured_days(exported_model), tmp_path)()
    code, result = run_drift(
        exported_model, tmp_path, root, "--window", "2026-11-01..2026-11-07", "--fail-on-drift"
    )
    assert (code, result["verdict"]) == (0, "no_drift"), result["reason"]
    assert result["rows"] == 7 * ROWS_PER_DAY
    assert [s.split("/predictions/")[1][:15] for s in result["sources"]] == [
        f"date={d.isoformat()}" for d in IN_WINDOW
    ]

    code, result = run_drift(exported_model, tmp_path, root, "--window", "2026-11-08..2026-11-09")
    assert (result["verdict"], result["rows"]) == ("drift", 2 * ROWS_PER_DAY), "the control"


@pytest.mark.slow
def test_a_seven_day_window_is_read_from_an_s3_compatible_store(
    exported_model: ExportedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = captured_days(exported_model)
    with object_store("captures") as store:
        for name, data in files.items():
            store.client().put_object(Bucket="captures", Key=f"predictions/{name}", Body=data)
        for key, value in store.env().items():
            monkeypatch.setenv(key, value)
        code, result = run_drift(
            exported_model,
            tmp_path,
            "s3://captures/predictions/",
            "--window",
            "2026-11-01..2026-11-07",
            *IN_THIS_PROCESS,
        )
    assert (code, result["verdict"], result["rows"]) == (0, "no_drift", 7 * ROWS_PER_DAY)
    assert result["sources"][0] == (
        "s3://captures/predictions/date=2026-11-01/hour=13/pod-a-1795000000000-000003.jsonl.gz"
    )
    assert len(result["sources"]) == 7


def test_a_window_with_no_captured_files_and_a_url_without_a_window_are_errors(
    exported_model: ExportedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "predictions").mkdir()
    write_fixture_profile(exported_model, tmp_path / "profile.json")
    common = [
        "--profile",
        str(tmp_path / "profile.json"),
        "--contract",
        str(exported_model.contract_path),
        "--params",
        str(PARAMS_PATH),
    ]
    empty = str(tmp_path / "predictions")
    assert main(["drift", "--current", empty, "--since", "7d", *common]) == 2
    assert "no captured files in" in capsys.readouterr().err
    assert main(["drift", "--current", "s3://captures/predictions/", *common]) == 2
    assert "give --since 7d or --window" in capsys.readouterr().err


def log_file(contract: Contract, path: Path, rows: int, torn_at: int | None = None) -> Path:
    """A gzipped prediction log of generated traffic (missing values included); with
    `torn_at`, that line is cut short as a crash mid-write leaves it."""
    frame = generate_churn(rows, 7, "none").drop(columns=[contract.target])
    scores = np.linspace(0.0, 1.0, rows)
    lines = prediction_log_lines(Traffic(frame, scores, []), contract, "m")
    if torn_at is not None:
        lines[torn_at - 1] = lines[torn_at - 1][:50]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return path


def values(chunks: list[Chunk], name: str) -> list[Any]:
    """One column over all chunks, missing as None, whatever the chunk holds it in."""
    out: list[Any] = []
    for chunk in chunks:
        column = chunk.columns[name]
        column = column.to_pylist() if isinstance(column, pa.Array) else list(column)
        out += [None if pd.isna(value) else value for value in column]
    return out


def test_a_capture_is_read_exactly_as_the_same_rows_in_a_table(
    contract: Contract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log reader (Arrow's JSON reader, block by block) gives what the frame's own
    reading gives: the same values, missing ones included, and every score."""
    path = log_file(contract, tmp_path / "predictions.jsonl.gz", 3000)
    monkeypatch.setattr(readers, "LOG_BLOCK_BYTES", 200_000)  # several blocks, bounded memory
    chunks = list(iter_chunks([path], contract, 700))
    frame = generate_churn(3000, 7, "none").drop(columns=[contract.target])
    (expected,) = frame_chunks(frame, contract)

    assert len(chunks) > 4 and sum(chunk.rows for chunk in chunks) == 3000
    for name in contract.feature_names:
        assert values(chunks, name) == values([expected], name), name
    assert any(None in values(chunks, name) for name in contract.feature_names), "has missing"
    scores = np.concatenate([c.predictions for c in chunks if c.predictions is not None])
    np.testing.assert_array_equal(scores, np.linspace(0.0, 1.0, 3000))


def test_a_window_in_a_store_is_streamed_from_it_not_copied(
    contract: Contract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store's files are read through its filesystem as the reader asks for blocks (here
    fsspec's in-memory store), giving the rows a local copy gives."""
    local = log_file(contract, tmp_path / "pod-a.jsonl.gz", 3000)
    fs = fsspec.filesystem("memory")
    fs.pipe("/captures/date=2026-11-02/hour=13/pod-a.jsonl.gz", local.read_bytes())
    monkeypatch.setattr(readers, "LOG_BLOCK_BYTES", 200_000)
    shown, sources = window_files(
        "memory://captures", parse_window("2026-11-02..2026-11-02"), readers.SUPPORTED
    )
    assert shown == ["memory://captures/date=2026-11-02/hour=13/pod-a.jsonl.gz"]
    assert [type(source) for source in sources] == [RemoteFile]
    streamed = list(iter_chunks(sources, contract, 700))
    copied = list(iter_chunks([local], contract, 700))
    assert sum(chunk.rows for chunk in streamed) == 3000
    for name in contract.feature_names:
        assert values(streamed, name) == values(copied, name), name


@pytest.mark.parametrize(
    ("lines", "rows", "torn"),
    [
        (['{"features": {"a": 1}}', "{torn", '{"features": {"a": 2}}'], 2, ["p.jsonl:2"]),
        (['{"features": {"a": " "}}', '{"features": {"a": 2.5}}'], 2, []),  # mixed JSON types
        (['{"a": 1.5}', '{"a": "3"}', '{"a": null}'], 3, []),  # flat records
        (['\ufeff{"features": {"a": 1}}'], 1, []),  # a byte order mark first
        (["null", '{"features": {"a": 1}}'], 1, ["p.jsonl:1"]),  # a line that is no object
        ([" \t null", '{"features": {"a": 1}}'], 1, ["p.jsonl:1"]),
        (
            ['{"features": {"a": 1}}', "{torn", "null", '{"features": {"a": 2}}'],
            2,
            ["p.jsonl:2", "p.jsonl:3"],
        ),
    ],
)
def test_lines_arrow_refuses_together_are_read_one_by_one_and_only_torn_ones_skipped(
    tmp_path: Path, lines: list[str], rows: int, torn: list[str]
) -> None:
    contract = Contract(
        "t", (Column("a", "float", "feature", nullable=True), Column("y", "bool", "target"))
    )
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    chunks = list(iter_chunks([path], contract, 700))

    assert sum(chunk.rows for chunk in chunks) == rows
    assert [e for chunk in chunks for e in chunk.skipped_examples] == torn


@pytest.mark.parametrize("block_bytes", [200_000, 100])  # 100: every line longer than a block
def test_a_torn_line_in_a_later_block_is_skipped_and_counted_with_its_line_number(
    contract: Contract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    path = log_file(contract, tmp_path / "predictions.jsonl.gz", 3000, torn_at=2500)
    monkeypatch.setattr(readers, "LOG_BLOCK_BYTES", block_bytes)
    chunks = list(iter_chunks([path], contract, 700))

    assert sum(chunk.rows for chunk in chunks) == 2999
    assert sum(chunk.skipped_lines for chunk in chunks) == 1
    assert [e for chunk in chunks for e in chunk.skipped_examples] == ["predictions.jsonl.gz:2500"]


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda data: data[:-200], "EOFError"),  # cut short, as an interrupted upload leaves it
        (lambda data: data[:10] + b"\xff" + data[11:], "IsalError: .*Invalid deflate block"),
        (lambda data: data[:-8] + bytes(4) + data[-4:], "BadGzipFile: CRC check failed"),
    ],
)
def test_a_damaged_gzip_log_is_an_error_naming_the_file(
    contract: Contract, tmp_path: Path, damage: Callable[[bytes], bytes], error: str
) -> None:
    """Whichever inflate reads it (fsspec takes ISA-L's when installed), a damaged partition
    is a clear error about that file, not a traceback or rows quietly lost."""
    path = log_file(contract, tmp_path / "predictions.jsonl.gz", 3000)
    path.write_bytes(damage(path.read_bytes()))

    with pytest.raises(readers.CurrentDataError, match=f"^{path}: cannot read: {error}"):
        list(iter_chunks([path], contract, 700))


def test_a_csv_window_is_read_in_the_contracts_encoding_and_named_when_it_is_another(
    tmp_path: Path,
) -> None:
    """A window exported like its training file (cp1252) reads as that file did; read as UTF-8
    it is an error naming the file and the setting, not a traceback."""
    contract = parse_contract(
        {
            "csv": {"encoding": "cp1252"},
            "columns": [
                {"name": "city", "type": "category"},
                {"name": "y", "type": "bool", "role": "target"},
            ],
        }
    )
    path = tmp_path / "window.csv"
    path.write_bytes(("city,y\n" + "Basel,1\n" * 5000 + "Zürich,0\n").encode("cp1252"))

    chunks = list(iter_chunks([path], contract, 700))
    assert sum(chunk.rows for chunk in chunks) == 5001

    as_utf8 = replace(contract, csv=replace(contract.csv, encoding="utf-8"))
    with pytest.raises(readers.CurrentDataError, match=r"window\.csv: cannot read as CSV in utf-8"):
        list(iter_chunks([path], as_utf8, 700))


def test_a_csv_window_saved_with_its_row_index_and_blank_rows_reads_without_them(
    tmp_path: Path,
) -> None:
    contract = parse_contract(
        {
            "csv": {"index": True},
            "columns": [
                {"name": "dose", "type": "float"},
                {"name": "y", "type": "bool", "role": "target"},
            ],
        }
    )
    path = tmp_path / "window.csv"
    pd.DataFrame({"dose": [1.5, 2.5] * 1000, "y": [True, False] * 1000}).to_csv(path)
    with path.open("a") as window:  # and what a spreadsheet exports below its data
        window.write(",,\n" * 3)

    chunks = list(iter_chunks([path], contract, 700))

    assert sum(chunk.rows for chunk in chunks) == 2000
