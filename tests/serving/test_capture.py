"""Capture (issue 13), unit level: the prediction log rotates into closed, hour-partitioned
files that are shipped gzipped, nothing lost on close, a bounded backlog while the store is
down, and unique names across restarts. The store here is a local directory (file://); the
same code against a real S3-compatible server is in test_capture_s3.py."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_support import run_server_expecting_failure

from serving.capture import Capture, CaptureConfig, CaptureError
from serving.prediction_log import PredictionLog

HOUR_10 = 1_795_860_000.0  # 2026-11-28T10:00:00Z


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Tally:
    def __init__(self) -> None:
        self.counts = {"written": 0, "shipped": 0, "failed": 0, "dropped": 0}

    def hook(self, name: str) -> Any:
        def add(n: int) -> None:
            self.counts[name] += n

        return add


def make_log(
    tmp_path: Path, store: Path, tally: Tally, clock: Any = time.time, **config: Any
) -> PredictionLog:
    capture = Capture(
        CaptureConfig(f"file://{store}", tmp_path / "spool", host="pod-a", **config),
        on_shipped=tally.hook("shipped"),
        on_failed=tally.hook("failed"),
        on_dropped=tally.hook("dropped"),
        clock=clock,
    )
    return PredictionLog("", 1.0, "m", "1", on_written=tally.hook("written"), capture=capture)


def record(log: PredictionLog, first: int, rows: int) -> None:
    """Rows whose "id" is their number, so tests can check exactly which lines arrived."""
    log.record(
        f"r{first}",
        {"age": list(range(first, first + rows))},
        np.zeros(rows, dtype=np.int64),
        np.full(rows, 0.5),
        ids=list(range(first, first + rows)),
    )


def shipped(store: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.relative_to(store).as_posix(): [
            json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()
        ]
        for path in sorted(store.rglob("*.jsonl.gz"))
    }


def shipped_ids(store: Path) -> list[int]:
    return sorted(line["id"] for lines in shipped(store).values() for line in lines)


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


def test_lines_are_rotated_by_size_into_hour_partitions_and_all_shipped_on_close(
    tmp_path: Path,
) -> None:
    store, tally = tmp_path / "store", Tally()
    log = make_log(tmp_path, store, tally, clock=Clock(HOUR_10 + 60), max_bytes=2_000)
    log.start()
    for first in range(0, 500, 50):
        record(log, first, 50)
    log.close()

    files = shipped(store)
    assert len(files) > 3, "2,000-byte files: 500 lines need several"
    assert all(name.startswith("date=2026-11-28/hour=10/pod-a-") for name in files)
    assert shipped_ids(store) == list(range(500)), "every line once, none lost or doubled"
    assert tally.counts == {"written": 500, "shipped": 500, "failed": 0, "dropped": 0}
    assert not list((tmp_path / "spool").rglob("*.jsonl*")), "the spool is empty after close"


def test_a_new_hour_closes_the_file_so_no_file_spans_two_partitions(tmp_path: Path) -> None:
    store, tally, clock = tmp_path / "store", Tally(), Clock(HOUR_10 + 3599)
    log = make_log(tmp_path, store, tally, clock=clock)
    log.start()
    record(log, 0, 10)
    wait_until(lambda: tally.counts["written"] == 10)
    clock.now = HOUR_10 + 3601
    record(log, 10, 10)
    log.close()

    by_file = {name: sorted(line["id"] for line in lines) for name, lines in shipped(store).items()}
    assert [name.split("/pod-a")[0] for name in by_file] == [
        "date=2026-11-28/hour=10",
        "date=2026-11-28/hour=11",
    ]
    assert list(by_file.values()) == [list(range(10)), list(range(10, 20))]


def test_an_idle_file_is_closed_and_shipped_when_it_is_max_seconds_old(tmp_path: Path) -> None:
    store, tally = tmp_path / "store", Tally()
    log = make_log(tmp_path, store, tally, max_seconds=0.2)
    log.start()
    record(log, 0, 5)
    wait_until(lambda: tally.counts["shipped"] == 5)
    assert shipped_ids(store) == [0, 1, 2, 3, 4]
    log.close()


def test_store_down_keeps_a_bounded_backlog_dropping_the_oldest_then_recovery_ships_it(
    tmp_path: Path,
) -> None:
    store, tally = tmp_path / "store", Tally()
    store.write_text("not a directory: every upload fails")
    log = make_log(tmp_path, store, tally, max_bytes=1_000, backlog_bytes=5_000)
    log.start()
    for first in range(0, 400, 20):
        record(log, first, 20)
        time.sleep(0.01)
    wait_until(lambda: tally.counts["written"] == 400)
    wait_until(lambda: tally.counts["failed"] > 0)

    spool = tmp_path / "spool"
    waiting = sum(p.stat().st_size for p in spool.rglob("*.jsonl"))
    assert waiting <= 5_000, "the backlog stays within its bound"
    assert tally.counts["dropped"] > 0, "the oldest files were dropped, and counted"

    store.unlink()  # the store comes back
    log.close()
    ids = shipped_ids(store)
    assert len(ids) == len(set(ids)) == 400 - tally.counts["dropped"]
    assert ids[-1] == 399, "the newest lines survive; the oldest were the ones dropped"
    assert tally.counts["shipped"] + tally.counts["dropped"] == 400


def test_a_restart_adopts_a_segment_left_open_by_a_crash_and_never_reuses_a_name(
    tmp_path: Path,
) -> None:
    store, spool = tmp_path / "store", tmp_path / "spool"
    crashed = spool / "date=2026-11-28/hour=10/pod-a-1795860000000-000001.jsonl.open"
    crashed.parent.mkdir(parents=True)
    crashed.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "feat')  # killed mid-write

    tally = Tally()
    log = make_log(tmp_path, store, tally)
    log.start()
    record(log, 10, 3)
    log.close()

    files = shipped(store)
    assert sorted(line["id"] for lines in files.values() for line in lines) == [1, 2, 10, 11, 12]
    assert "date=2026-11-28/hour=10/pod-a-1795860000000-000001.jsonl.gz" in files
    assert len(files) == 2, "the new process's file has a name of its own"


def test_bad_settings_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="must be positive"):
        CaptureConfig("file:///x", tmp_path, max_bytes=0)
    spool_is_a_file = tmp_path / "file"
    spool_is_a_file.write_text("")
    capture = Capture(CaptureConfig("file:///x", spool_is_a_file / "spool"))
    with pytest.raises(CaptureError, match=r"capture spool .*not writable"):
        capture.start()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--capture-url", "s3://captures/p"], "--capture-url needs --capture-dir"),
        (
            ["--capture-url", "s3://captures/p", "--capture-dir", "s", "--prediction-log", "p"],
            "--prediction-log and --capture-url both set",
        ),
        (
            ["--capture-url", "s3://c/p", "--capture-dir", "s", "--capture-max-bytes", "0"],
            "capture max bytes, max seconds and backlog bytes must be positive",
        ),
    ],
)
def test_the_server_refuses_inconsistent_capture_settings_with_exit_2(
    args: list[str], message: str
) -> None:
    result = run_server_expecting_failure(["--model", "no-such-model.onnx", *args])
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_each_captured_line_is_valid_json_in_the_documented_order_with_missing_as_null(
    tmp_path: Path,
) -> None:
    store, tally = tmp_path / "store", Tally()
    log = make_log(tmp_path, store, tally)
    log.start()
    log.record(
        "req-1",
        {"plan": ["basic", ""], "charges": [float("nan"), 12.5]},
        np.array([1, 0]),
        np.array([0.75, float("nan")]),
        ids=["C1", None],
    )
    log.close()

    (lines,) = shipped(store).values()
    assert [list(line) for line in lines] == [
        ["ts", "request_id", "id", "model", "model_version", "features", "prediction"],
        ["ts", "request_id", "model", "model_version", "features", "prediction"],
    ]
    assert lines[0]["features"] == {"plan": "basic", "charges": None}
    assert lines[1]["features"] == {"plan": None, "charges": 12.5}
    assert [line["prediction"] for line in lines] == [
        {"label": 1, "score": 0.75},
        {"label": 0, "score": None},
    ]
