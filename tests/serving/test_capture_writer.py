"""Capture never claims a row it did not write (issue 9): a full disk leaves whole request
records and counters that match the spool, and a spool that cannot be written stops the server
at startup with `error:` and exit 2."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from serving_support import REPO_ROOT, run_server_expecting_failure, server_env

from serving.capture.segments import count_rows

FILL_THE_DISK = """
import json, sys
from pathlib import Path
import numpy as np
from serving.capture.segments import Segments
from serving.capture.writer import PredictionLog
from serving.settings import Settings
counts = {"written": 0, "dropped": 0}
settings = Settings(capture_url="file:///unused", capture_dir=Path(sys.argv[1]))
log = PredictionLog(Segments(settings), 1.0, "m", "1",
                    on_written=lambda n: counts.__setitem__("written", counts["written"] + n),
                    on_dropped=lambda n: counts.__setitem__("dropped", counts["dropped"] + n))
log.start()
rows = 25
body = json.dumps([{"plan": "premium" * 10}] * rows).encode()
for request in range(20):
    log.record(f"r{request}", "predict", body,
               {"label": np.zeros(rows, dtype=np.int64), "score": np.full(rows, 0.5)})
log.close()
print(json.dumps(counts))
"""


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))


def test_a_full_disk_leaves_whole_records_and_counters_that_match_the_spool(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"

    result = subprocess.run(
        [sys.executable, "-c", FILL_THE_DISK, str(spool)],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=REPO_ROOT,
        preexec_fn=_limit_file_size,
        timeout=60,
        check=True,
    )

    counts = json.loads(result.stdout)
    (segment,) = spool.rglob("*.rec")
    assert segment.read_bytes().endswith(b"\n") and 0 < segment.stat().st_size <= 10_000
    assert count_rows(segment) == counts["written"]
    assert counts["written"] + counts["dropped"] == 500 and counts["dropped"] > 0


@pytest.mark.slow
def test_the_server_refuses_a_spool_it_cannot_write_at_startup_with_exit_2(
    tmp_path: Path, exported_model: Any
) -> None:
    (tmp_path / "file").write_text("")
    spool = tmp_path / "file" / "spool"

    result = run_server_expecting_failure(
        [
            "--model",
            str(exported_model.onnx_path),
            "--contract",
            str(exported_model.contract_path),
            "--capture-url",
            str(tmp_path / "store"),
            "--capture-dir",
            str(spool),
        ]
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: capture spool {spool}: not writable")
    assert "Traceback" not in result.stderr
