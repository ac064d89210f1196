"""The prediction log never claims a line it did not write (issue 9): whole lines only, a file
removed or rotated is reopened, the counters match the file, and a path that cannot be written
stops the server at startup with `error:` and exit 2."""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_support import REPO_ROOT, run_server_expecting_failure, server_env

from serving.capture.writer import PredictionLog, PredictionLogError

FILL_THE_DISK = """
import json, sys
import numpy as np
from serving.capture.writer import PredictionLog
counts = {"written": 0, "dropped": 0}
log = PredictionLog(sys.argv[1], 1.0, "m", "1",
                    on_written=lambda n: counts.__setitem__("written", counts["written"] + n),
                    on_dropped=lambda n: counts.__setitem__("dropped", counts["dropped"] + n))
log.start()
for request in range(20):
    rows = 25
    log.record(f"r{request}", {"plan": ["premium" * 10] * rows},
               {"label": np.zeros(rows, dtype=np.int64), "score": np.full(rows, 0.5)})
log.close()
print(json.dumps(counts))
"""


class Counts:
    def __init__(self) -> None:
        self.written = 0
        self.dropped = 0

    def log(self, path: Path) -> PredictionLog:
        return PredictionLog(
            path, 1.0, "m", "1", on_written=self._written, on_dropped=self._dropped
        )

    def _written(self, n: int) -> None:
        self.written += n

    def _dropped(self, n: int) -> None:
        self.dropped += n

    def wait_for(self, total: int) -> None:
        deadline = time.monotonic() + 10
        while self.written + self.dropped < total and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.written + self.dropped == total


def _record(log: PredictionLog, rows: int, request_id: str = "r") -> None:
    predicted = {"label": np.zeros(rows, dtype=np.int64), "score": np.full(rows, 0.5)}
    log.record(request_id, {"age": list(range(rows))}, predicted)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))


def test_a_full_disk_leaves_whole_lines_and_counters_that_match_the_file(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"

    result = subprocess.run(
        [sys.executable, "-c", FILL_THE_DISK, str(path)],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=REPO_ROOT,
        preexec_fn=_limit_file_size,
        timeout=60,
        check=True,
    )

    counts = json.loads(result.stdout)
    text = path.read_text()
    assert text.endswith("\n") and 0 < len(text) <= 10_000
    assert len(_lines(path)) == counts["written"]
    assert counts["written"] + counts["dropped"] == 500 and counts["dropped"] > 0


def test_a_removed_directory_is_recreated_and_the_log_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "predictions.jsonl"
    counts = Counts()
    log = counts.log(path)
    log.start()
    _record(log, 3, "before")
    counts.wait_for(3)

    path.unlink()
    path.parent.rmdir()
    _record(log, 4, "after")
    log.close()

    assert counts.written == 7 and counts.dropped == 0
    assert [line["request_id"] for line in _lines(path)] == ["after"] * 4


def test_a_rotated_file_is_reopened_under_its_name(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    counts = Counts()
    log = counts.log(path)
    log.start()
    _record(log, 2, "first")
    counts.wait_for(2)

    path.rename(tmp_path / "predictions.jsonl.1")
    _record(log, 3, "second")
    log.close()

    assert len(_lines(tmp_path / "predictions.jsonl.1")) == 2
    assert [line["request_id"] for line in _lines(path)] == ["second"] * 3
    assert counts.written == 5


def test_a_line_left_half_written_by_a_crash_is_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"ts": "x"}\n{"ts": "half a li')
    log = PredictionLog(path, 1.0, "m", "1")
    log.start()

    _record(log, 1)
    log.close()

    assert [line.get("request_id") for line in _lines(path)] == [None, "r"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp, "is a directory; give a file path"),
        (lambda tmp: tmp / "file" / "predictions.jsonl", "a parent of the path is a file"),
        (lambda tmp: Path("/sys/kernel/predictions.jsonl"), "not writable (permission denied)"),
    ],
)
def test_a_path_that_cannot_be_written_is_refused_when_opened(
    tmp_path: Path, make: Any, message: str
) -> None:
    (tmp_path / "file").write_text("")
    log = PredictionLog(make(tmp_path), 1.0, "m", "1")

    with pytest.raises(PredictionLogError, match=re.escape(message)):
        log.open()


@pytest.mark.slow
def test_the_server_refuses_a_bad_log_path_at_startup_with_exit_2(
    tmp_path: Path, exported_model: Any
) -> None:
    (tmp_path / "file").write_text("")
    for path, message in (
        (tmp_path, "is a directory"),
        (tmp_path / "file" / "p.jsonl", "a parent of the path is a file"),
    ):
        result = run_server_expecting_failure(
            [
                "--model",
                str(exported_model.onnx_path),
                "--contract",
                str(exported_model.contract_path),
                "--prediction-log",
                str(path),
            ]
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == f"error: prediction log {path}: {message}" + (
            "; give a file path" if message == "is a directory" else ""
        )
