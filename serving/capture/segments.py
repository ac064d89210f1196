"""The capture spool: request records in hour-partitioned segments
(`<spool>/date=YYYY-MM-DD/hour=HH/<host>-<start ms>-<seq>.rec`) that the sidecar ships once
closed (docs/monitoring.md, "In the pod").
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import fsspec
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gitops_ml.errors import UserError
from gitops_ml.io import read_json
from serving.capture.codec import read_records, record_rows
from serving.settings import Settings

logger = logging.getLogger("serving.capture")
OPEN, CLOSED, SHIPPING, SHIPPED = ".rec.open", ".rec", ".rec.shipping", ".jsonl.gz"
COUNTERS = ".shipper.json"
_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
COUNTER_HELP = {
    "shipped": "Captured lines stored in object storage",
    "failed": "Captured lines in upload attempts that failed (retried later)",
    "dropped": "Captured lines dropped from a full local backlog or unreadable",
}
Unit = tuple[bytes, int]  # one request record, and the rows it holds


class ShortWrite(Exception):
    """A write that failed part way: `rows` of its units reached the segment whole."""

    def __init__(self, rows: int, cause: OSError) -> None:
        super().__init__(str(cause))
        self.rows = rows


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The store of a capture URL and the path under it."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        raise UserError(f"capture URL {url!r}: {exc}") from None
    return fs, root.rstrip("/")


def partition(seconds: float) -> str:
    """The Hive-style partition of an instant, which `drift --since` lists."""
    return datetime.fromtimestamp(seconds, UTC).strftime("date=%Y-%m-%d/hour=%H")


def count_rows(path: Path) -> int:
    """The rows (documented lines) in a segment's whole records."""
    try:
        with path.open("rb") as handle:
            return sum(record_rows(line) for line, _ in read_records(handle))
    except OSError:
        return 0


def rename(path: Path, old: str, new: str) -> Path:
    target = path.with_name(path.name[: -len(old)] + new)
    path.rename(target)
    return target


def oldest_first(paths: Iterator[Path]) -> list[Path]:
    """Oldest first: partition, then the name (its seq starts with the writer's start time)."""
    return sorted(paths, key=lambda p: (p.parent.parent.name, p.parent.name, p.name))


def enforce_backlog(spool: Path, bound: int, on_dropped: Callable[[int], None]) -> None:
    """Past the bound the oldest closed segments go, counted by the process whose unlink
    succeeded (server and shipper both enforce). One being shipped counts but stays."""
    sizes: dict[Path, int] = {}
    for pattern in ("*" + CLOSED, "*" + SHIPPING):
        for path in spool.rglob(pattern):
            with contextlib.suppress(FileNotFoundError):
                sizes[path] = path.stat().st_size
    total = sum(sizes.values())
    for path in oldest_first(p for p in sizes if p.name.endswith(CLOSED)):
        if total <= bound:
            break
        rows = count_rows(path)
        try:
            path.unlink()
        except FileNotFoundError:  # shipped or dropped meanwhile by the other process
            continue
        total -= sizes[path]
        on_dropped(rows)
        logger.warning("capture backlog full: dropped %s (%d lines)", path.name, rows)


def read_counts(spool: Path) -> dict[str, int]:
    """The shipper's counters, saved atomically (zeros before its first save)."""
    counts = dict.fromkeys(COUNTER_HELP, 0)
    with contextlib.suppress(OSError, ValueError, TypeError):
        counts.update(read_json(spool / COUNTERS))
    return counts


class Segments(Collector):
    """The writer thread's rotating segments; a collector of the shipper's counters too."""

    def __init__(self, config: Settings, clock: Callable[[], float] = time.time) -> None:
        assert config.capture_url is not None and config.capture_dir is not None
        self.config = config
        self.spool, self.url = config.capture_dir, config.capture_url
        self.host = _HOST_UNSAFE.sub("-", config.capture_host or socket.gethostname()) or "host"
        self.dropped = 0  # rows this process dropped from the backlog (the shipper counts its own)
        self.clock = clock
        self._boot = int(clock() * 1000)
        self._seq = 0
        self._path: Path | None = None  # the open segment, `_fd` its descriptor
        self._fd = -1
        self._hour = ""
        self._opened = 0.0

    def open(self) -> None:
        """Check the URL and the spool, so that a wrong one stops the server at startup; cut
        what a crash left open back to whole records and close it."""
        filesystem(self.url)
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            probe = self.spool / ".writable"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise UserError(
                f"capture spool {self.spool}: not writable: {exc.strerror or exc}"
            ) from None
        for left_open in sorted(self.spool.rglob("*" + OPEN)):
            with left_open.open("r+b") as handle:
                end = 0
                for _ in read_records(handle):
                    end = handle.tell()
                handle.truncate(end)
            rename(left_open, OPEN, CLOSED)

    def _size(self) -> int:
        return 0 if self._path is None else os.fstat(self._fd).st_size

    def append(self, units: list[Unit]) -> None:
        """Write the units whole. A write that fails part way (a full disk) is cut back to the
        last whole record and raises ShortWrite; OSError when nothing was written."""
        if self._path is None:  # a fresh name each time: `open` adopts a crash's leftovers
            now = self.clock()
            self._seq += 1
            self._hour, self._opened = partition(now), now
            path = self.spool / self._hour / f"{self.host}-{self._boot:013d}-{self._seq:06d}{OPEN}"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._path = path
        data = b"".join(line for line, _ in units)
        start = self._size()
        done = 0
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            whole = rows = 0
            for line, n in units:
                if whole + len(line) > done:
                    break
                whole, rows = whole + len(line), rows + n
            with contextlib.suppress(OSError):  # else the next start cuts the torn tail
                os.ftruncate(self._fd, start + whole)
            raise ShortWrite(rows, exc) from None

    def room(self) -> int:
        return self.config.capture_max_bytes - self._size()

    def due_in(self) -> float | None:
        """How long the writer may wait before a rotation is due (None: nothing is open)."""
        if self._path is None:
            return None
        now = self.clock()
        age_left = self._opened + self.config.capture_max_seconds - now
        return max(0.05, min(age_left, 3600 - now % 3600))

    def rotate_if_due(self) -> None:
        """Close the open segment at its size, its age or a new hour."""
        size, now = self._size(), self.clock()
        if size and (
            size >= self.config.capture_max_bytes
            or now - self._opened >= self.config.capture_max_seconds
            or partition(now) != self._hour
        ):
            self.close()

    def close(self) -> None:
        """Close the open segment for the shipper (an empty one is removed)."""
        if self._path is None:
            return
        path, self._path = self._path, None
        os.close(self._fd)
        try:
            if path.stat().st_size == 0:
                path.unlink()
                return
        except FileNotFoundError:
            return
        rename(path, OPEN, CLOSED)
        enforce_backlog(self.spool, self.config.capture_backlog_bytes, self._drop)

    def _drop(self, rows: int) -> None:
        self.dropped += rows

    def collect(self) -> Iterator[CounterMetricFamily]:
        """`serving_capture_lines_*_total`: the shipper's saved counts and this server's drops."""
        counts = read_counts(self.spool)
        counts["dropped"] += self.dropped
        for name, text in COUNTER_HELP.items():
            yield CounterMetricFamily(f"serving_capture_lines_{name}", text, value=counts[name])
