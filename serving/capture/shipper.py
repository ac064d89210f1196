"""The sidecar's shipper: closed segments expanded into the documented lines, gzipped and stored
at the same relative path under the capture URL, off the server since shipping there cost it up
to a third of its throughput (docs/monitoring.md, "In the pod").
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
import zlib
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem
from tenacity import RetryCallState, RetryError, Retrying, wait_exponential

from gitops_ml.contract import load_contract
from gitops_ml.io import write_json
from gitops_ml.release.bundle import load_bundle
from serving.capture.codec import BodyParser, expand_record, read_records, record_rows
from serving.capture.segments import (
    CLOSED,
    COUNTERS,
    OPEN,
    SHIPPED,
    SHIPPING,
    enforce_backlog,
    filesystem,
    oldest_first,
    read_counts,
    rename,
)
from serving.records import parse_request
from serving.settings import Settings
from serving.validation import request_table

logger = logging.getLogger("serving.capture")
MAX_BACKOFF = 10.0  # seconds between retries while the store is down, at most


class Shipper:
    """Expands, gzips and uploads closed segments, on a thread of its own."""

    def __init__(self, config: Settings) -> None:
        assert config.capture_url is not None and config.capture_dir is not None
        self.config = config
        self.spool, self.url = config.capture_dir, config.capture_url
        if config.model and Path(config.model).is_dir():
            contract = load_bundle(config.model).contract
        else:
            contract = load_contract(config.contract)
        # The server's own parsing, with the contract it serves: bodies read as it read them.
        table = request_table(contract)
        self.parse: BodyParser = functools.partial(parse_request, table=table, max_rows=sys.maxsize)
        self.fs, self.root = filesystem(self.url)
        self._local = isinstance(self.fs, LocalFileSystem)
        self.counts = read_counts(self.spool)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self.run, name="capture-ship", daemon=True)
        self._ready: tuple[Path, bytes, int, int] | None = None  # compressed, not yet stored
        self._retrying = Retrying(  # any failure, until the drain deadline
            wait=wait_exponential(multiplier=0.5, max=MAX_BACKOFF),
            stop=self._late,
            sleep=self._pause,
            before=lambda _: enforce_backlog(
                self.spool, config.capture_backlog_bytes, lambda n: self._count("dropped", n)
            ),
        )

    def start(self) -> None:
        """Put back what a crash left mid-upload, then start shipping."""
        self.spool.mkdir(parents=True, exist_ok=True)
        for interrupted in self.spool.rglob("*" + SHIPPING):
            rename(interrupted, SHIPPING, CLOSED)
        self._thread.start()

    def drain(self) -> None:
        """Ship what is closed, the server's last segment too, within the drain time; then stop."""
        self._deadline = time.monotonic() + self.config.capture_drain_seconds
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.config.capture_drain_seconds + 5)

    def _late(self, _: RetryCallState | None = None) -> bool:
        return self._stop.is_set() and time.monotonic() >= self._deadline

    def _pause(self, seconds: float) -> None:
        """The backoff: new files do not cut it short; stopping does, and the deadline caps it."""
        if self._stop.is_set():
            time.sleep(min(seconds, max(0.0, self._deadline - time.monotonic())))
        else:
            self._stop.wait(seconds)

    def _count(self, name: str, rows: int) -> None:
        """Add to a counter and save the counts for the server's /metrics and restarts."""
        self.counts[name] += rows
        try:
            write_json(self.spool / COUNTERS, self.counts)
        except OSError as exc:
            logger.warning("capture: cannot save counters in %s: %s", self.spool, exc)

    def run(self) -> None:
        """Ship closed segments, oldest first, until drained (start's thread, or a caller's)."""
        while True:
            # Whether the writer is done is read before the closed segments: its last segment
            # is renamed from open to closed before the drain is asked for, so it is then seen
            # closed (read after, it could be missed by both listings and never shipped).
            writer_done = self._stop.is_set() and not any(self.spool.rglob("*" + OPEN))
            closed = oldest_first(self.spool.rglob("*" + CLOSED))
            if not closed:
                if self._late() or writer_done:
                    return
                self._wake.wait(0.2 if self._stop.is_set() else 1.0)
                self._wake.clear()
                continue
            try:
                self._retrying(self.ship, closed[0])
            except RetryError:  # the drain time is over; the rest ships at the next start
                return

    def ship(self, path: Path) -> None:
        """Store one closed segment, then remove it; a failed upload raises and leaves it."""
        try:
            path = rename(path, CLOSED, SHIPPING)
        except FileNotFoundError:  # dropped from the backlog meanwhile
            return
        relative = path.relative_to(self.spool).as_posix().removesuffix(SHIPPING)
        target = f"{self.root}/{relative}{SHIPPED}"
        lines = 0
        try:
            if self._ready is None or self._ready[0] != path:
                self._ready = (path, *self._compress(path))
            _, body, lines, bad = self._ready
            if self._local:  # a reader of the directory never sees a partial file
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.pipe_file(target + ".part", body)
                self.fs.mv(target + ".part", target)
            else:
                self.fs.pipe_file(target, body)
        except Exception as exc:  # a read or whatever the store's client raises: retried
            rename(path, SHIPPING, CLOSED)  # closed again, so the retry finds it
            self._count("failed", lines)
            logger.warning("capture: shipping %s to %s failed: %s", path.name, target, exc)
            raise
        self._ready = None
        path.unlink(missing_ok=True)
        if bad:
            self._count("dropped", bad)
        self._count("shipped", lines)

    def _compress(self, path: Path) -> tuple[bytes, int, int]:
        """The segment's lines, gzipped as they are made (in memory ~80 bytes a row, not the
        lines), with the counts of lines and of unreadable rows. Kept for the retries."""
        # Level 1: ~2.6 µs a line against ~4.6 at level 5; ratio ~8. wbits 31: a gzip file.
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        parts: list[bytes] = []
        lines = bad = 0
        with path.open("rb") as handle:
            for header, request in read_records(handle):
                try:
                    expanded = expand_record(header, request, self.parse)
                except Exception as exc:  # one bad record must not stop the shipping of the rest
                    bad += record_rows(header)
                    logger.warning("capture: %s: skipped a record: %s", path, exc)
                    continue
                lines += len(expanded)
                parts.append(packer.compress(b"".join(expanded)))
        parts.append(packer.flush())
        return b"".join(parts), lines, bad
