"""Capture (issue 13), unit level: the server's request records rotate into closed,
hour-partitioned segments that the shipper expands into the documented lines and ships
gzipped, nothing lost on close, a bounded backlog while the store is down (or while no shipper
runs), and unique names across restarts. The store here is a local directory (file://) and the
shipper runs on a thread of the test; the same code against a real S3-compatible server, with
the sidecar as its own process, is in test_capture_s3.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from dotenv import dotenv_values
from project_fixtures import CONTRACT_PATH
from serving_support import (
    CAPTURE_CONTRACT,
    REPO_ROOT,
    capture_body,
    run_server_expecting_failure,
    server_env,
    ship,
    shipped,
)

from gitops_ml.contract import Contract
from gitops_ml.errors import UserError
from gitops_ml.synthetic import generate_churn
from gitops_ml.v2_request import records as request_records
from gitops_ml.v2_request import v2_request
from serving.app import create_app
from serving.capture.codec import encode_record, record_head
from serving.capture.segments import Segments, read_counts
from serving.capture.shipper import Shipper
from serving.capture.writer import PredictionLog
from serving.model import load_model
from serving.settings import Settings, load_settings

HOUR_10 = 1_795_860_000.0  # 2026-11-28T10:00:00Z
INFER_PATH = "/v2/models/churn-model/infer"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Tally:
    """The server's counters (written, dropped: the writer's and its backlog's) plus the
    shipper's, read from the spool."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.server = {"written": 0, "dropped": 0}
        self.segments: Any = None  # the server's spool, whose `dropped` counts backlog drops

    def hook(self, name: str) -> Any:
        def add(n: int) -> None:
            self.server[name] += n

        return add

    @property
    def counts(self) -> dict[str, int]:
        shipper = read_counts(self.spool)
        return {
            "written": self.server["written"],
            "shipped": shipper["shipped"],
            "failed": shipper["failed"],
            "dropped": self.server["dropped"] + self.segments.dropped + shipper["dropped"],
        }


def capture_settings(
    store: Path | str, spool: Path, contract: Path = CAPTURE_CONTRACT, **capture: Any
) -> Settings:
    """Serving settings of a server of `contract` that capture to `store` (a directory)
    through `spool`; `capture` sets the other capture settings by their short names (host,
    max_bytes, ...)."""
    fields = {f"capture_{name}": value for name, value in capture.items()}
    return Settings(contract=str(contract), capture_url=str(store), capture_dir=spool, **fields)


def make_log(
    tmp_path: Path,
    store: Path,
    tally: Tally,
    clock: Any = time.time,
    **config: Any,
) -> PredictionLog:
    capture = Segments(
        capture_settings(store, tmp_path / "spool", host="pod-a", **config), clock=clock
    )
    tally.segments = capture
    return PredictionLog(
        capture,
        1.0,
        "m",
        "1",
        on_written=tally.hook("written"),
        on_dropped=tally.hook("dropped"),
    )


@contextmanager
def shipping(log: PredictionLog) -> Iterator[Shipper]:
    """The sidecar's shipper on the log's spool while the block runs, drained on leaving it."""
    shipper = Shipper(log.segments.config)
    shipper.start()
    try:
        yield shipper
    finally:
        shipper.drain()


def record(log: PredictionLog, first: int, rows: int) -> None:
    """Rows whose "id" is their number, so tests can check exactly which lines arrived."""
    predicted = {"label": np.zeros(rows, dtype=np.int64), "score": np.full(rows, 0.5)}
    log.record(f"r{first}", "predict", capture_body(range(first, first + rows)), predicted)


def shipped_ids(store: Path) -> list[int]:
    return sorted(int(line["id"]) for lines in shipped(store).values() for line in lines)


def backlog(spool: Path) -> list[Path]:
    """The segments the backlog bound counts: closed, or being shipped (not the open one)."""
    return [*spool.rglob("*.rec"), *spool.rglob("*.rec.shipping")]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


def test_lines_are_rotated_by_size_into_hour_partitions_and_all_shipped_on_close(
    tmp_path: Path,
) -> None:
    store, tally = tmp_path / "store", Tally(tmp_path / "spool")
    log = make_log(tmp_path, store, tally, clock=Clock(HOUR_10 + 60), max_bytes=2_000)
    with shipping(log):
        log.start()
        for first in range(0, 500, 50):
            record(log, first, 50)
        log.close()

    files = shipped(store)
    assert len(files) > 3, "2,000-byte files: 500 lines need several"
    assert all(name.startswith("date=2026-11-28/hour=10/pod-a-") for name in files)
    assert shipped_ids(store) == list(range(500)), "every line once, none lost or doubled"
    assert tally.counts == {"written": 500, "shipped": 500, "failed": 0, "dropped": 0}
    assert not list((tmp_path / "spool").rglob("*.rec*")), "the spool is empty after close"


def test_a_new_hour_closes_the_file_so_no_file_spans_two_partitions(tmp_path: Path) -> None:
    store, tally, clock = tmp_path / "store", Tally(tmp_path / "spool"), Clock(HOUR_10 + 3599)
    log = make_log(tmp_path, store, tally, clock=clock)
    log.start()
    record(log, 0, 10)
    wait_until(lambda: tally.counts["written"] == 10)
    clock.now = HOUR_10 + 3601
    record(log, 10, 10)
    log.close()
    ship(log)

    by_file = {
        name: sorted(int(line["id"]) for line in lines) for name, lines in shipped(store).items()
    }
    assert [name.split("/pod-a")[0] for name in by_file] == [
        "date=2026-11-28/hour=10",
        "date=2026-11-28/hour=11",
    ]
    assert list(by_file.values()) == [list(range(10)), list(range(10, 20))]


def test_an_idle_file_is_closed_and_shipped_when_it_is_max_seconds_old(tmp_path: Path) -> None:
    store, tally = tmp_path / "store", Tally(tmp_path / "spool")
    log = make_log(tmp_path, store, tally, max_seconds=0.2)
    with shipping(log):
        log.start()
        record(log, 0, 5)
        wait_until(lambda: tally.counts["shipped"] == 5)
        assert shipped_ids(store) == [0, 1, 2, 3, 4]
        log.close()


def test_store_down_keeps_a_bounded_backlog_dropping_the_oldest_then_recovery_ships_it(
    tmp_path: Path,
) -> None:
    store, tally = tmp_path / "store", Tally(tmp_path / "spool")
    store.write_text("not a directory: every upload fails")
    log = make_log(tmp_path, store, tally, max_bytes=1_000, backlog_bytes=5_000)
    with shipping(log):
        log.start()
        for first in range(0, 400, 20):
            record(log, first, 20)
            time.sleep(0.01)
        wait_until(lambda: tally.counts["written"] == 400)
        wait_until(lambda: tally.counts["failed"] > 0)

        spool = tmp_path / "spool"
        waiting = sum(p.stat().st_size for p in backlog(spool))
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
    crashed = segment_in(spool, ".rec.open")
    crashed.write_bytes(records(1, 2, 3)[:-10])  # killed mid-write: the third record is torn

    tally = Tally(spool)
    log = make_log(tmp_path, store, tally)
    log.start()
    record(log, 10, 3)
    log.close()
    ship(log)

    files = shipped(store)
    assert shipped_ids(store) == [1, 2, 10, 11, 12]
    assert f"{SEGMENT}.jsonl.gz" in files
    assert len(files) == 2, "the new process's file has a name of its own"


SEGMENT = "date=2026-11-28/hour=10/pod-a-1795860000000-000001"  # a segment a server wrote


def segment_in(spool: Path, suffix: str) -> Path:
    """The path of SEGMENT in a spool, its partition made, in one of its states."""
    path = spool / f"{SEGMENT}{suffix}"
    path.parent.mkdir(parents=True)
    return path


def records(*ids: int) -> bytes:
    """One request record per id, as a server writes them."""
    predicted = {"label": [0], "score": np.array([0.5])}
    head = record_head("m", "1")
    return b"".join(
        encode_record(head, HOUR_10, "r", "predict", predicted, None, capture_body([n]))
        for n in ids
    )


def test_the_last_segment_closed_while_the_shipper_lists_the_spool_is_still_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's last segment is renamed from open to closed, then the drain is asked for.
    When both happen between the shipper's listing of closed segments and its look for open
    ones, that segment was in neither listing: the shipper stopped and never shipped it."""
    from serving.capture import shipper as shipping

    store, spool = tmp_path / "store", tmp_path / "spool"
    last = segment_in(spool, ".rec.open")
    last.write_bytes(records(1, 2))
    shipper = Shipper(capture_settings(store, spool))
    listed_once = []

    def listing_then_the_writer_closes(paths: Any) -> list[Path]:
        found = sorted(paths)
        if not listed_once:
            listed_once.append(found)
            last.rename(last.with_name(last.name.removesuffix(".open")))
            shipper.drain()  # sets the stop; the loop runs in this thread, not its own
        return found

    monkeypatch.setattr(shipping, "oldest_first", listing_then_the_writer_closes)
    shipper.run()

    assert shipped_ids(store) == [1, 2]


def test_a_segment_a_crashed_shipper_left_mid_upload_is_shipped_once_at_its_next_start(
    tmp_path: Path,
) -> None:
    store, spool = tmp_path / "store", tmp_path / "spool"
    config = capture_settings(store, spool)
    interrupted = segment_in(spool, ".rec.shipping")
    closed = interrupted.with_name(interrupted.name.replace(".shipping", ""))
    closed.write_bytes(records(1, 2))
    Shipper(config).ship(closed)  # stored (a failed upload raises)
    interrupted.write_bytes(records(1, 2))  # crashed after the upload, before the delete
    shipper = Shipper(config)
    shipper.start()
    shipper.drain()

    assert shipped_ids(store) == [1, 2], "stored again under the same name, not duplicated"
    assert not list(spool.rglob("*.rec*"))


def test_a_segment_that_cannot_be_read_is_closed_again_for_the_next_attempt(
    tmp_path: Path,
) -> None:
    """A read failure is retried like a failed upload; left as being shipped, the retry
    would not find it and it would wait for the sidecar's restart."""
    spool = tmp_path / "spool"
    unreadable = segment_in(spool, ".rec")
    unreadable.mkdir()  # stands for a file the disk cannot read

    with pytest.raises(OSError):
        Shipper(capture_settings(tmp_path / "store", spool)).ship(unreadable)

    assert unreadable.is_dir() and not list(spool.rglob("*.rec.shipping"))


def test_the_servers_second_start_leaves_the_segment_being_uploaded_alone(tmp_path: Path) -> None:
    """The server opens its capture before it binds its port and again in its lifespan: by
    then the sidecar may be uploading a segment, which must not be put back."""
    log = make_log(tmp_path, tmp_path / "store", Tally(tmp_path / "spool"))
    log.segments.open()
    uploading = segment_in(tmp_path / "spool", ".rec.shipping")  # as the shipper renamed it
    uploading.write_bytes(records(1))
    log.start()
    log.close()

    assert uploading.exists(), "put back as closed, so shipped a second time"


def test_without_a_shipper_the_server_still_keeps_the_backlog_bounded(tmp_path: Path) -> None:
    """With the sidecar down the server drops the oldest closed segments."""
    store, tally = tmp_path / "store", Tally(tmp_path / "spool")
    log = make_log(tmp_path, store, tally, max_bytes=1_000, backlog_bytes=4_000)
    log.start()
    for first in range(0, 300, 10):
        record(log, first, 10)
        time.sleep(0.01)
    log.close()

    spool = tmp_path / "spool"
    assert sum(p.stat().st_size for p in spool.rglob("*.rec")) <= 4_000
    assert tally.counts["written"] == 300
    assert 0 < tally.counts["dropped"] < 300, "the oldest segments' rows, counted by the server"
    assert not store.exists(), "nothing shipped: shipping is the sidecar's job"


def test_bad_settings_are_refused_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="SERVING_CAPTURE_MAX_BYTES"):
        load_settings(
            ["--capture-url", "file:///x", "--capture-dir", "s", "--capture-max-bytes", "0"]
        )
    spool_is_a_file = tmp_path / "file"
    spool_is_a_file.write_text("")
    capture = Segments(capture_settings("file:///x", spool_is_a_file / "spool"))
    with pytest.raises(UserError, match=r"capture spool .*not writable"):
        capture.open()
    with pytest.raises(UserError, match=r"capture URL 'nosuch://bucket/p': .*nosuch"):
        Segments(capture_settings("nosuch://bucket/p", tmp_path / "spool")).open()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--capture-url", "s3://captures/p"], "--capture-url needs --capture-dir"),
        (
            ["--capture-url", "s3://c/p", "--capture-dir", "s", "--capture-max-bytes", "0"],
            "SERVING_CAPTURE_MAX_BYTES (--capture-max-bytes): Input should be greater than",
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
    store, tally = tmp_path / "store", Tally(tmp_path / "spool")
    log = make_log(tmp_path, store, tally)
    log.start()
    body = [
        {"id": "C1", "age": 30, "plan": "basic", "charges": float("nan")},
        {"age": None, "plan": "", "charges": 12.5},
        {"id": 7, "age": 41, "plan": "basic", "charges": 3.0},
    ]
    predicted = {"label": np.array([1, 0, 1]), "score": np.array([0.75, float("nan"), 0.5])}
    log.record("req-1", "predict", json.dumps(body).encode(), predicted)
    log.close()
    ship(log)

    (lines,) = shipped(store).values()
    assert [list(line) for line in lines] == [
        ["ts", "request_id", "id", "model", "model_version", "features", "prediction"],
        ["ts", "request_id", "model", "model_version", "features", "prediction"],
        ["ts", "request_id", "id", "model", "model_version", "features", "prediction"],
    ]
    assert [line.get("id") for line in lines] == ["C1", None, "7"], "ids are text, as documented"
    assert lines[0]["features"] == {"age": 30, "plan": "basic", "charges": None}
    assert lines[1]["features"] == {"age": None, "plan": None, "charges": 12.5}
    assert [line["prediction"] for line in lines] == [
        {"label": 1, "score": 0.75},
        {"label": 0, "score": None},
        {"label": 1, "score": 0.5},
    ]


def run_python(*args: str) -> subprocess.CompletedProcess[str]:
    """This interpreter with `args`, as the image runs it (the serving environment)."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("configured", [False, True])
def test_the_server_imports_capture_only_when_capture_is_configured(
    tmp_path: Path, configured: bool
) -> None:
    """The image runs without capture's packages unless capture is on (the model here does
    not exist: the server stops at loading it, after deciding on capture)."""
    capture = ["--capture-url", str(tmp_path / "store"), "--capture-dir", str(tmp_path / "s")]
    server = ["-X", "importtime", "-m", "serving", "--model", "no-such-model.onnx"]
    result = run_python(*server, *(capture if configured else []))
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}

    assert result.returncode == 2 and "no-such-model.onnx" in result.stderr
    assert ("serving.capture" in imported) is configured
    assert ("fsspec" in imported) is configured


def test_the_sidecar_refuses_a_missing_spool_with_exit_2() -> None:
    result = run_python("-m", "serving.capture", "--capture-url", "s3://captures/p")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "SERVING_CAPTURE_DIR" in result.stderr


def test_the_manifest_runs_the_shipper_as_a_native_sidecar_on_the_servers_spool() -> None:
    pod = yaml.safe_load((REPO_ROOT / "serving/k8s/deployment.yaml").read_text())["spec"]
    spec = pod["template"]["spec"]
    (server,) = spec["containers"]
    (shipper,) = spec["initContainers"]
    config = dotenv_values(REPO_ROOT / "serving/k8s/serving.env")

    assert shipper["restartPolicy"] == "Always", "a native sidecar: stopped after the server"
    assert shipper["command"][-1] == "serving.capture"
    assert shipper["image"] == server["image"]
    assert shipper["envFrom"] == server["envFrom"], "one ConfigMap of settings for both"
    assert "env" not in shipper and "env" not in server
    mounts = {
        container["name"]: {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        for container in (server, shipper)
    }
    assert mounts["capture-shipper"]["capture"] == mounts["server"]["capture"]
    assert mounts["server"]["capture"] == config["SERVING_CAPTURE_DIR"]


@pytest.mark.parametrize("api", ["v2", "predict"])
def test_the_sidecar_reads_the_sampled_rows_of_the_body_as_received(
    contract: Contract, tmp_path: Path, api: str
) -> None:
    """The server writes the body as received (here pretty-printed, line breaks and all) and
    the sampled rows as indices into it; the sidecar parses it with the server's own parser."""
    frame = generate_churn(40, 3, "none").drop(columns=[contract.target])
    document = v2_request(frame, contract) if api == "v2" else request_records(frame, contract)
    raw = json.dumps(document, indent=2).encode()
    predicted = {"label": np.arange(40) % 2, "score": np.linspace(0, 1, 40)}
    config = capture_settings(tmp_path / "store", tmp_path / "spool", CONTRACT_PATH)
    log = PredictionLog(Segments(config), 0.5, "m", "1", seed=1)
    log.start()
    log.record("req-1", api, raw, predicted)
    log.close()
    ship(log)

    lines = [line for f in shipped(tmp_path / "store").values() for line in f]
    assert 5 < len(lines) < 35
    for line in lines:
        row = frame[frame[contract.id_column] == line["id"]].iloc[0]
        assert line["features"]["tenure_months"] == row["tenure_months"]
        assert line["prediction"]["label"] == row.name % 2


def test_a_record_the_shipper_cannot_read_counts_every_row_it_held_as_dropped(
    tmp_path: Path,
) -> None:
    """Drops are counted in rows, like every other capture counter, not in requests."""
    spool, store = tmp_path / "spool", tmp_path / "store"
    segment = segment_in(spool, ".rec")
    predicted = {"label": [0] * 5, "score": np.full(5, 0.5)}
    unreadable = encode_record(
        record_head("m", "1"), HOUR_10, "r", "v2", predicted, None, b"[not json"
    )
    segment.write_bytes(unreadable + records(1, 2))
    shipper = Shipper(capture_settings(store, spool))
    shipper.start()
    shipper.drain()

    assert shipped_ids(store) == [1, 2]
    assert read_counts(spool) == {"shipped": 2, "failed": 0, "dropped": 5}


def test_a_line_that_is_not_a_request_record_is_skipped_and_counts_no_rows(
    tmp_path: Path,
) -> None:
    spool, store = tmp_path / "spool", tmp_path / "store"
    garbage = b'[1,"m","1",1795860000.0,"r",{"age":[7,8]},{"label":[0,1]},null,0]\n'
    segment_in(spool, ".rec").write_bytes(records(1) + garbage + records(2))
    shipper = Shipper(capture_settings(store, spool))
    shipper.start()
    shipper.drain()

    assert shipped_ids(store) == [1, 2]
    assert read_counts(spool) == {"shipped": 2, "failed": 0, "dropped": 0}


ODD_BODIES = {
    "utf-8": lambda text: text.encode(),
    "utf-8 with a BOM": lambda text: b"\xef\xbb\xbf" + text.encode(),
    "utf-16 with a BOM": lambda text: text.encode("utf-16"),
    "utf-16-be without a BOM": lambda text: text.encode("utf-16-be"),
    "utf-32": lambda text: text.encode("utf-32"),
    "pretty-printed with CRLF": lambda text: (
        json.dumps(json.loads(text), indent=1).replace("\n", "\r\n").encode()
    ),
    "latin-1": lambda text: text.encode("latin-1"),
    "trailing garbage": lambda text: text.encode() + b" ]",
    "a NUL byte": lambda text: text.encode() + b"\x00",
}


@pytest.mark.parametrize("api", ["v2", "predict"])
def test_the_bodies_the_server_accepts_are_exactly_the_bodies_capture_records(
    exported_model: Any, tmp_path: Path, api: str
) -> None:
    """Every spelling of a body goes through the app with the sidecar's capture; whatever
    the server scored (200) is shipped with the same lines as the plain UTF-8 body, and
    whatever it refused is not captured."""
    model = load_model(
        exported_model.onnx_path, exported_model.contract_path, model_name="churn-model"
    )
    frame = exported_model.test_frame.iloc[:3].drop(columns=[model.contract.target])
    frame = frame.assign(**{model.contract.categorical_features[0]: "naïve"})  # not ASCII
    document = (
        v2_request(frame, model.contract) if api == "v2" else request_records(frame, model.contract)
    )
    text = json.dumps(document, ensure_ascii=False)
    path = INFER_PATH if api == "v2" else "/predict"
    spool, store = tmp_path / "spool", tmp_path / "store"
    config = capture_settings(store, spool, exported_model.contract_path, host="pod-a")
    log = PredictionLog(Segments(config), 1.0, "m", "1")
    app = create_app(model, prediction_log=log)
    log.start()

    async def send() -> dict[str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            statuses = {}
            for n, (name, spell) in enumerate(ODD_BODIES.items()):
                headers = {"x-request-id": f"body-{n}", "content-type": "application/json"}
                answer = await client.post(path, content=spell(text), headers=headers)
                statuses[name] = answer.status_code
            return statuses

    statuses = asyncio.run(send())
    log.close()
    shipper = Shipper(config)
    shipper.start()
    shipper.drain()

    lines = [line for lines in shipped(store).values() for line in lines]
    captured = {f"body-{n}": name for n, name in enumerate(ODD_BODIES)}
    by_body: dict[str, list[Any]] = {}
    for line in lines:
        by_body.setdefault(captured[line.pop("request_id")], []).append(
            {k: v for k, v in line.items() if k != "ts"}
        )
    accepted = {name for name, status in statuses.items() if status == 200}
    assert set(statuses.values()) <= {200, 400, 422}, statuses
    assert "utf-8" in accepted and "latin-1" not in accepted
    assert set(by_body) == accepted, "captured: every body the server scored, no other"
    assert all(by_body[name] == by_body["utf-8"] for name in accepted)
    assert len(by_body["utf-8"]) == 3
    assert read_counts(spool)["dropped"] == 0
