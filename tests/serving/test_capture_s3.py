"""Capture (issue 13) end to end: a real server under load writes and rotates its prediction
log and the sidecar (`python -m serving.capture`, as in a pod) ships it to a real S3-compatible
server on loopback; SIGTERM drains and ships, a restart in the same hour neither loses nor
duplicates a line; with the store down the spool stays within its bound, and once the store is
back the backlog is shipped; either process killed with SIGKILL and restarted loses and
duplicates nothing the server had written."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from loadgen import run_load
from object_store import ObjectStore, object_store
from serving_support import serving_exported, sidecar
from test_capture import backlog

from gitops_ml.v2_request import records

pytestmark = pytest.mark.slow

BUCKET = "captures"
NAME = re.compile(r"predictions/date=\d{4}-\d\d-\d\d/hour=\d\d/pod-a-(\d{13})-\d{6}\.jsonl\.gz")


def capture_env(store: ObjectStore, spool: Path, exported: Any, **settings: str) -> dict[str, str]:
    """The settings of both processes; the sidecar reads bodies with the model's contract."""
    env = {
        **store.env(),
        "SERVING_CONTRACT": str(exported.contract_path),
        "SERVING_CAPTURE_URL": f"s3://{BUCKET}/predictions",
        "SERVING_CAPTURE_DIR": str(spool),
        "SERVING_CAPTURE_HOST": "pod-a",
        "SERVING_CAPTURE_DRAIN_SECONDS": "8",
    }
    env.update({f"SERVING_CAPTURE_{k.upper()}": v for k, v in settings.items()})
    return env


def load(url: str, exported: Any, ids: range, concurrency: int = 20) -> None:
    """One /predict request per id; the id travels in the contract's id column."""
    rows = records(exported.test_frame, exported.contract)
    bodies = []
    for n in ids:
        row = dict(rows[n % len(rows)], customer_id=f"c{n}")
        bodies.append(("/predict", json.dumps([row]).encode()))
    result = asyncio.run(run_load(url, bodies, concurrency=concurrency))
    assert result.statuses == {200: len(ids)}


def counter(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf"^{name}_total (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert condition()


def shipped_ids(store: ObjectStore) -> tuple[list[str], list[str]]:
    """Every id in the shipped files (duplicates kept) and the files' names."""
    keys = store.keys(BUCKET)
    ids = [
        json.loads(line)["id"]
        for key in keys
        for line in gzip.decompress(store.read(BUCKET, key)).splitlines()
    ]
    return ids, keys


def test_under_load_files_rotate_and_ship_and_a_restart_loses_and_duplicates_nothing(
    exported_model: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    with object_store(BUCKET) as store:
        env = capture_env(store, spool, exported_model, max_bytes="40000")
        with sidecar(env, tmp_path):
            with serving_exported(exported_model, tmp_path, env=env) as first:
                load(first.url, exported_model, range(0, 1500))
                wait_for(lambda: counter(first.url, "serving_capture_lines_shipped") > 0)
                # SIGTERM on leaving the block, mid-hour: the open file is closed.
            with serving_exported(exported_model, tmp_path, env=env) as second:
                load(second.url, exported_model, range(1500, 3000))
            # SIGTERM to the sidecar: it ships the last file within the drain time.
        ids, keys = shipped_ids(store)

    assert sorted(ids) == sorted(f"c{n}" for n in range(3000)), "no line lost or doubled"
    assert all(NAME.fullmatch(key) for key in keys), keys
    assert len(keys) > 10, "40 kB files: 3,000 lines rotate into many files"
    assert len({NAME.fullmatch(key).group(1) for key in keys}) == 2, "each process names its own"
    assert not list(spool.rglob("*.rec*")), "nothing left behind in the spool"


def test_with_the_store_down_the_backlog_is_bounded_then_shipped_when_it_returns(
    exported_model: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    with object_store() as store:  # the bucket does not exist yet: every upload fails
        env = capture_env(store, spool, exported_model, max_bytes="5000", backlog_bytes="30000")
        with sidecar(env, tmp_path), serving_exported(exported_model, tmp_path, env=env) as server:
            load(server.url, exported_model, range(0, 600), concurrency=4)
            wait_for(lambda: counter(server.url, "serving_prediction_log_lines_written") == 600)
            # The shipper's first failed upload may come after the last line is written.
            wait_for(lambda: counter(server.url, "serving_capture_lines_failed") > 0)
            dropped = counter(server.url, "serving_capture_lines_dropped")
            assert dropped > 0, "600 lines of ~600 bytes do not fit a 30 kB backlog"
            closed = sum(p.stat().st_size for p in backlog(spool))
            assert closed <= 30_000, "the backlog stays within SERVING_CAPTURE_BACKLOG_BYTES"

            store.client().create_bucket(Bucket=BUCKET)  # the store is back
            wait_for(lambda: not list(spool.rglob("*.rec")), timeout=60)
            dropped = counter(server.url, "serving_capture_lines_dropped")
        ids, _ = shipped_ids(store)

    assert len(ids) == len(set(ids)) == 600 - dropped
    assert "c599" in ids, "the newest lines are kept; the oldest are the ones dropped"


def written_lines(url: str) -> float:
    return counter(url, "serving_prediction_log_lines_written")


def stays_open(spool: Path, max_bytes: int) -> bool:
    """Whether the spool has an open segment that no rotation will close (smaller than
    max_bytes), once every line is written."""
    sizes = []
    for path in spool.rglob("*.rec.open"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            sizes.append(path.stat().st_size)
    return any(size < max_bytes for size in sizes)


def test_a_sidecar_ships_what_the_server_captured_and_a_kill_of_either_loses_nothing(
    exported_model: Any, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    with object_store(BUCKET) as store:
        env = capture_env(store, spool, exported_model, max_bytes="40000")
        with (
            sidecar(env, tmp_path) as first_sidecar,
            serving_exported(exported_model, tmp_path, env=env) as first,
        ):
            load(first.url, exported_model, range(0, 1000))
            wait_for(lambda: counter(first.url, "serving_capture_lines_shipped") > 0)
            first_sidecar.kill()  # SIGKILL, maybe mid-upload
            load(first.url, exported_model, range(1000, 1999))
            written = 1999
            while written < 2000 or not stays_open(spool, 40_000):
                # The last write may have filled a segment, which then closes; a lone record
                # in the next one cannot: one request more at a time.
                load(first.url, exported_model, range(written, written + 1))
                written += 1
                wait_for(lambda n=written: written_lines(first.url) == n)
            first.process.kill()  # SIGKILL: its open segment stays behind, unclosed
            first.process.wait()
        assert list(spool.rglob("*.rec.open")), "the killed server left its segment open"
        with (
            sidecar(env, tmp_path),
            serving_exported(exported_model, tmp_path, env=env) as second,
        ):
            load(second.url, exported_model, range(written, 3000))
            # SIGTERM to the server first, then to the sidecar: a native sidecar's order.
        ids, keys = shipped_ids(store)

    assert sorted(ids) == sorted(f"c{n}" for n in range(3000)), "no line lost or doubled"
    assert all(NAME.fullmatch(key) for key in keys), keys
    assert not list(spool.rglob("*.rec*")), "nothing left behind in the spool"
    assert json.loads((spool / ".shipper.json").read_text())["shipped"] >= 3000 - 1000
