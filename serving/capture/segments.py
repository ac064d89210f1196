"""The capture spool: request records in closed, hour-partitioned segments
(`<spool>/date=YYYY-MM-DD/hour=HH/<host>-<start ms>-<seq>.rec`) that the sidecar ships; see
docs/monitoring.md, "In the pod". A segment a crash left open is cut back to whole records and
closed at the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gitops_ml.errors import UserError
from serving.capture.codec import Predicted, read_records, record_rows, whole_records_size
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

# What a request queues for the writer, `encode_record`'s arguments: (epoch seconds,
# request_id, api, predicted, sampled rows or None for all, the body as received).
Entry = tuple[float, str, str, Predicted, Sequence[int] | None, bytes]
Unit = tuple[bytes, int]  # one request record, and the rows it holds


def entry_rows(entry: Entry) -> int:
    rows = entry[4]
    return len(next(iter(entry[3].values()))) if rows is None else len(rows)


class CaptureError(UserError):
    """Capture settings that cannot work: refused at startup, not discovered later."""


class ShortWrite(Exception):
    """A write that failed part way: `rows` of its units reached the segment whole."""

    def __init__(self, rows: int, cause: OSError) -> None:
        super().__init__(str(cause))
        self.rows = rows


class SegmentFile:
    """One open segment, appended with whole records only: a write that fails part way (a
    full disk) is cut back to the last whole record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def append(self, units: list[Unit]) -> None:
        data = b"".join(line for line, _ in units)
        start = self.size()
        done = 0
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(self.fd, view[done:])
        except OSError as exc:
            whole = rows = 0
            for line, n in units:
                if whole + len(line) > done:
                    break
                whole, rows = whole + len(line), rows + n
            with contextlib.suppress(OSError):  # else the next start cuts the torn tail
                os.ftruncate(self.fd, start + whole)
            raise ShortWrite(rows, exc) from None

    def close(self) -> None:
        os.close(self.fd)


def partition(moment: datetime) -> str:
    """The Hive-style partition that `drift --since` lists."""
    return f"date={moment:%Y-%m-%d}/hour={moment:%H}"


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
    """The shipper's saved counters (zeros before its first save)."""
    try:
        saved = json.loads((spool / COUNTERS).read_text())
        return {name: int(saved.get(name, 0)) for name in COUNTER_HELP}
    except (OSError, ValueError, TypeError, AttributeError):
        return dict.fromkeys(COUNTER_HELP, 0)


class Segments(Collector):
    """The writer thread's rotating segments; the sidecar finds the closed ones in the spool.
    As a collector on the server's registry: the shipper's counters."""

    def __init__(
        self,
        config: Settings,
        on_dropped: Callable[[int], None] = lambda n: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert config.capture_dir is not None, "the settings require it with a capture URL"
        self.config = config
        self.spool = config.capture_dir
        self.host = _HOST_UNSAFE.sub("-", config.capture_host or socket.gethostname()) or "host"
        self.on_dropped = on_dropped
        self.dropped = 0  # rows this process dropped from the backlog (the shipper counts its own)
        self.clock = clock
        self._boot = int(clock() * 1000)
        self._seq = 0
        self.segment: SegmentFile | None = None
        self._segment_hour = ""
        self._segment_opened = 0.0

    def open(self) -> None:
        """Check the spool and close what a previous process left open."""
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            probe = self.spool / ".writable"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise CaptureError(
                f"capture spool {self.spool}: not writable: {exc.strerror or exc}"
            ) from None
        for left_open in sorted(self.spool.rglob("*" + OPEN)):
            with left_open.open("r+b") as handle:
                handle.truncate(whole_records_size(handle))
            rename(left_open, OPEN, CLOSED)

    def append(self, units: list[Unit]) -> None:
        """Write the units whole, or raise ShortWrite (or OSError: nothing written)."""
        if self.segment is None:
            # A fresh name each time (a crash's leftovers are adopted by `open`).
            self.segment = SegmentFile(self._next_path())
        self.segment.append(units)

    def _next_path(self) -> Path:
        """A fresh open segment in the partition of the current hour."""
        now = self.clock()
        hour = partition(datetime.fromtimestamp(now, UTC))
        self._seq += 1
        self._segment_hour, self._segment_opened = hour, now
        name = f"{self.host}-{self._boot:013d}-{self._seq:06d}{OPEN}"
        return self.spool / hour / name

    def room(self) -> int:
        return self.config.capture_max_bytes - (0 if self.segment is None else self.segment.size())

    def due_in(self) -> float | None:
        """How long the writer may wait for entries before an age or hour rotation is due
        (None: no open segment, nothing can fall due)."""
        if self.segment is None:
            return None
        now = self.clock()
        age_left = self._segment_opened + self.config.capture_max_seconds - now
        hour_left = 3600 - now % 3600
        return max(0.05, min(age_left, hour_left))

    def rotate_if_due(self) -> None:
        """Close the open segment when it is due (size, age or a new hour)."""
        if self.segment is None:
            return
        size, now = self.segment.size(), self.clock()
        if size and (
            size >= self.config.capture_max_bytes
            or now - self._segment_opened >= self.config.capture_max_seconds
            or partition(datetime.fromtimestamp(now, UTC)) != self._segment_hour
        ):
            self.close()

    def close(self) -> None:
        """Close the open segment for the shipper (an empty one is removed)."""
        if self.segment is None:
            return
        segment, self.segment = self.segment, None
        segment.close()
        try:
            if segment.path.stat().st_size == 0:
                segment.path.unlink()
                return
        except FileNotFoundError:
            return
        rename(segment.path, OPEN, CLOSED)
        enforce_backlog(self.spool, self.config.capture_backlog_bytes, self._drop)

    def _drop(self, rows: int) -> None:
        self.dropped += rows
        self.on_dropped(rows)

    def collect(self) -> Iterator[CounterMetricFamily]:
        """`serving_capture_lines_{shipped,failed,dropped}_total`: the shipper's counters file,
        read at each scrape, plus the rows this server dropped from the backlog."""
        counts = read_counts(self.spool)
        counts["dropped"] += self.dropped
        for name, text in COUNTER_HELP.items():
            yield CounterMetricFamily(f"serving_capture_lines_{name}", text, value=counts[name])
