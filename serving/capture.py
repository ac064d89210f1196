"""Production data capture: the prediction log as closed, time-partitioned files shipped to
object storage, so the scheduled drift check reads what the pods really served.

Two halves share a local spool directory. In the server, the writer thread of `PredictionLog`
appends one compact request record per request to an open segment
(`<spool>/date=YYYY-MM-DD/hour=HH/<host>-<seq>.rec.open`) and closes it (a rename to `.rec`)
when it reaches `max_bytes`, when it is `max_seconds` old or when the hour changes, so a file
never spans two partitions (`Capture`). The `Shipper` — a sidecar process in a pod
(`python -m serving.capture_sidecar`), or a thread of the server with `--capture-ship inline` —
takes each closed segment (a rename to `.rec.shipping`), expands its records into the
documented JSON lines, gzips them and puts them at the same relative path under the capture
URL as `.jsonl.gz` (`s3://…`, `file://…`, any fsspec URL), retrying with backoff, and deletes
the segment only once stored. Names are unique across restarts (the seq starts with the
server's start time), so an upload repeated after a crash of either process overwrites the
same object instead of duplicating lines. When the store stays down the closed segments wait
up to `backlog_bytes`; past that the oldest are dropped and their rows counted (by whichever
process drops them). SIGTERM: the server closes its open segment; the shipper ships every
closed segment — waiting for the server's last one — within `drain_seconds`. What is left (and
a segment left open by a crash, cut back to whole records) is shipped at the next start.

The shipper's counters (shipped, failed, dropped rows) live in `<spool>/.shipper.json`, so they
survive its restarts and the server's `/metrics` exposes them whichever process ships.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import fsspec
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gitops_ml.errors import UserError
from serving.prediction_log import BodyParser, expand_record, record_rows

logger = logging.getLogger("serving.capture")
OPEN, CLOSED, SHIPPING, SHIPPED = ".rec.open", ".rec", ".rec.shipping", ".jsonl.gz"
COUNTERS = ".shipper.json"
SHIP_MODES = ("inline", "sidecar")
MAX_BACKOFF = 10.0  # seconds between retries while the store is down, at most
_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HELP = {
    "shipped": "Captured lines stored in object storage",
    "failed": "Captured lines in upload attempts that failed (retried later)",
    "dropped": "Captured lines dropped from a full local backlog",
}


class CaptureError(UserError):
    """The capture settings cannot work: refused at startup, not discovered later."""


def _nothing(n: int) -> None:
    """Default counter hook."""


@dataclass
class CaptureConfig:
    url: str
    spool: Path
    max_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 300.0
    backlog_bytes: int = 1024 * 1024 * 1024
    drain_seconds: float = 20.0
    host: str = field(default_factory=socket.gethostname)
    ship: str = "inline"

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.backlog_bytes) < 1 or self.max_seconds <= 0:
            raise CaptureError(
                "capture max bytes, max seconds and backlog bytes must be positive, got "
                f"{self.max_bytes}, {self.max_seconds}, {self.backlog_bytes}"
            )
        if self.drain_seconds < 0:
            raise CaptureError(f"capture drain seconds must be >= 0, got {self.drain_seconds}")
        if self.ship not in SHIP_MODES:
            raise CaptureError(f"capture ship must be one of {SHIP_MODES}, got {self.ship!r}")
        self.host = _HOST_UNSAFE.sub("-", self.host) or "host"


def partition(moment: datetime) -> str:
    """Hive-style partition of an instant, the layout `drift --since` lists."""
    return f"date={moment:%Y-%m-%d}/hour={moment:%H}"


def _records(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _count_rows(path: Path) -> int:
    try:
        return sum(record_rows(line) for line in _records(path))
    except OSError:
        return 0


def _cut_partial_line(path: Path) -> None:
    """A segment left open by a crash may end mid-record; keep whole records only."""
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    if whole < len(data):
        with path.open("r+b") as handle:
            handle.truncate(whole)


def _rename(path: Path, old: str, new: str) -> Path:
    target = path.with_name(path.name[: -len(old)] + new)
    path.rename(target)
    return target


def _oldest_first(paths: Iterator[Path]) -> list[Path]:
    """Oldest first: partition, then the name (its seq starts with the writer's start time)."""
    return sorted(paths, key=lambda p: (p.parent.parent.name, p.parent.name, p.name))


def enforce_backlog(spool: Path, bound: int, on_dropped: Callable[[int], None]) -> None:
    """Past the backlog bound the oldest closed segments go, their rows counted as dropped by
    the process whose unlink succeeded (server and shipper may both enforce). A segment being
    shipped counts towards the bound but is never dropped."""
    sizes: dict[Path, int] = {}
    for pattern in ("*" + CLOSED, "*" + SHIPPING):
        for path in spool.rglob(pattern):
            with contextlib.suppress(FileNotFoundError):
                sizes[path] = path.stat().st_size
    total = sum(sizes.values())
    for path in _oldest_first(p for p in sizes if p.name.endswith(CLOSED)):
        if total <= bound:
            break
        rows = _count_rows(path)
        try:
            path.unlink()
        except FileNotFoundError:  # shipped or dropped meanwhile by the other process
            continue
        total -= sizes[path]
        on_dropped(rows)
        logger.warning("capture backlog full: dropped %s (%d lines)", path.name, rows)


class Capture:
    """The server's half: segments on the writer thread, and the shipper thread when
    shipping inline."""

    def __init__(
        self,
        config: CaptureConfig,
        on_dropped: Callable[[int], None] = _nothing,
        clock: Callable[[], float] = time.time,
        shipper: Shipper | None = None,
    ) -> None:
        self.config = config
        self.on_dropped = on_dropped
        self.dropped = 0  # rows this process dropped from the backlog (the shipper counts its own)
        self.clock = clock
        self._boot = int(clock() * 1000)
        self._seq = 0
        self.segment: Path | None = None
        self._segment_hour = ""
        self._segment_opened = 0.0
        if shipper is None and config.ship == "inline":
            shipper = Shipper(config)
        elif shipper is None:
            _filesystem(config.url)  # a wrong URL stops the server too, not only the sidecar
        self.shipper = shipper

    def start(self) -> None:
        """Adopt what a previous process left open in the spool, then start shipping inline."""
        where = f"capture spool {self.config.spool}"
        try:
            self.config.spool.mkdir(parents=True, exist_ok=True)
            probe = self.config.spool / ".writable"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise CaptureError(f"{where}: not writable: {exc.strerror or exc}") from None
        for left_open in sorted(self.config.spool.rglob("*" + OPEN)):
            _cut_partial_line(left_open)
            _rename(left_open, OPEN, CLOSED)
        if self.shipper is not None:
            self.shipper.start()

    def next_segment(self) -> Path:
        """A fresh open segment in the partition of the current hour."""
        now = self.clock()
        moment = datetime.fromtimestamp(now, UTC)
        self._seq += 1
        name = f"{self.config.host}-{self._boot:013d}-{self._seq:06d}{OPEN}"
        self.segment = self.config.spool / partition(moment) / name
        self._segment_hour = partition(moment)
        self._segment_opened = now
        return self.segment

    def due(self, size: int) -> bool:
        """Whether the open segment must be closed now (size, age or a new hour)."""
        if self.segment is None or size == 0:
            return False
        now = self.clock()
        return (
            size >= self.config.max_bytes
            or now - self._segment_opened >= self.config.max_seconds
            or partition(datetime.fromtimestamp(now, UTC)) != self._segment_hour
        )

    def seconds_to_due(self) -> float | None:
        """How long the writer may wait for lines before an age or hour rotation is due
        (None: no open segment, nothing can fall due)."""
        if self.segment is None:
            return None
        now = self.clock()
        age_left = self._segment_opened + self.config.max_seconds - now
        hour_left = 3600 - now % 3600
        return max(0.05, min(age_left, hour_left))

    def close_segment(self) -> None:
        """Close the open segment (empty ones are removed) and hand it to the shipper."""
        if self.segment is None:
            return
        segment, self.segment = self.segment, None
        try:
            if segment.stat().st_size == 0:
                segment.unlink()
                return
        except FileNotFoundError:
            return
        _rename(segment, OPEN, CLOSED)
        enforce_backlog(self.config.spool, self.config.backlog_bytes, self._drop)
        if self.shipper is not None:
            self.shipper.wake()

    def _drop(self, rows: int) -> None:
        self.dropped += rows
        self.on_dropped(rows)

    def count_into(self, registry: CollectorRegistry) -> None:
        """The shipper's counters (from the spool, whichever process ships) on /metrics,
        the rows this server dropped from the backlog included."""
        registry.register(ShipperCounters(self))

    def close(self) -> None:
        """After the writer closed its last segment: ship inline within the drain time."""
        self.close_segment()
        if self.shipper is not None:
            self.shipper.drain()


class ShipperCounters(Collector):
    """`serving_capture_lines_{shipped,failed,dropped}_total`, read from the spool's counters
    file at each scrape; dropped adds what the server itself dropped."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def collect(self) -> Iterator[CounterMetricFamily]:
        counts = read_counts(self.capture.config.spool)
        counts["dropped"] += self.capture.dropped
        for name, text in _HELP.items():
            yield CounterMetricFamily(f"serving_capture_lines_{name}", text, value=counts[name])


def read_counts(spool: Path) -> dict[str, int]:
    try:
        saved = json.loads((spool / COUNTERS).read_text())
        return {name: int(saved.get(name, 0)) for name in _HELP}
    except (OSError, ValueError, TypeError, AttributeError):
        return dict.fromkeys(_HELP, 0)


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        raise CaptureError(f"capture URL {url!r}: {exc}") from None
    return fs, root.rstrip("/")


class Shipper:
    """Expands, gzips and uploads closed segments, on a thread of its own."""

    def __init__(self, config: CaptureConfig, parse: BodyParser | None = None) -> None:
        self.config = config
        self.parse = parse  # for records that carry the request body (sidecar mode)
        self.fs, self.root = _filesystem(config.url)
        self._local = "file" in _protocols(self.fs)
        self.counts = dict.fromkeys(_HELP, 0)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._ship_loop, name="capture-ship", daemon=True)
        self._ready: tuple[Path, bytes, int, int] | None = None  # compressed, not yet stored

    def start(self) -> None:
        """Continue the saved counts; put back what a crash left mid-upload; start."""
        self.config.spool.mkdir(parents=True, exist_ok=True)
        self.counts = read_counts(self.config.spool)
        for interrupted in self.config.spool.rglob("*" + SHIPPING):
            _rename(interrupted, SHIPPING, CLOSED)
        if not self._thread.is_alive():
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def drain(self) -> None:
        """Ship what is closed — and the server's last segment, once it is closed — within
        the drain time, then stop. What is not shipped stays for the next start."""
        self._deadline = time.monotonic() + self.config.drain_seconds
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.config.drain_seconds + 5)

    def _count(self, name: str, rows: int) -> None:
        """Add to a counter and save the counts (atomically) for /metrics and restarts."""
        with self._lock:
            self.counts[name] += rows
            saved = self.config.spool / COUNTERS
            part = saved.with_name(f"{COUNTERS}.{os.getpid()}.part")
            try:
                part.write_text(json.dumps(self.counts))
                part.replace(saved)
            except OSError as exc:
                logger.warning("capture: cannot save counters in %s: %s", saved, exc)

    def _pending(self) -> Path | None:
        closed = _oldest_first(self.config.spool.rglob("*" + CLOSED))
        return closed[0] if closed else None

    def _writer_done(self) -> bool:
        return not any(self.config.spool.rglob("*" + OPEN))

    def _ship_loop(self) -> None:
        backoff = 0.5
        while True:
            enforce_backlog(
                self.config.spool, self.config.backlog_bytes, lambda n: self._count("dropped", n)
            )
            path = self._pending()
            stopping = self._stop.is_set()
            late = stopping and time.monotonic() >= self._deadline
            if path is None:
                if late or (stopping and self._writer_done()):
                    return
                self._wake.wait(0.2 if stopping else 1.0)
                self._wake.clear()
                continue
            if self.ship(path):
                backoff = 0.5
                continue
            if late:
                return
            if stopping:
                time.sleep(min(backoff, max(0.0, self._deadline - time.monotonic())))
            else:
                self._stop.wait(backoff)  # new files do not cut a backoff short; stopping does
            backoff = min(backoff * 2, MAX_BACKOFF)

    def target(self, path: Path) -> str:
        """The object a segment becomes: same relative path, `.jsonl.gz`."""
        relative = path.relative_to(self.config.spool).as_posix()
        for suffix in (SHIPPING, CLOSED):
            if relative.endswith(suffix):
                relative = relative[: -len(suffix)]
                break
        return f"{self.root}/{relative}{SHIPPED}"

    def ship(self, path: Path) -> bool:
        """Expand, gzip and store one closed segment; True once it is stored and removed
        (or gone: dropped from the backlog meanwhile)."""
        try:
            path = _rename(path, CLOSED, SHIPPING)
            if self._ready is None or self._ready[0] != path:
                self._ready = (path, *self._compress(path))
        except FileNotFoundError:
            return True
        _, body, lines, bad = self._ready
        target = self.target(path)
        try:
            parent = target.rsplit("/", 1)[0]
            if self._local:
                self.fs.makedirs(parent, exist_ok=True)
                self.fs.pipe_file(target + ".part", body)
                self.fs.mv(target + ".part", target)
            else:
                self.fs.pipe_file(target, body)
        except Exception as exc:
            _rename(path, SHIPPING, CLOSED)
            self._count("failed", lines)
            logger.warning("capture: shipping %s to %s failed: %s", path.name, target, exc)
            return False
        self._ready = None
        path.unlink(missing_ok=True)
        if bad:
            self._count("dropped", bad)
        self._count("shipped", lines)
        return True

    def _compress(self, path: Path) -> tuple[bytes, int, int]:
        """The segment's records as documented lines, gzipped as they are made (memory: the
        compressed file, ~80 bytes a row, not the lines); with the line and bad record counts.
        Kept while the store is down, so a retry does not redo it."""
        # Level 1: ~2.6 µs a line against ~4.6 at level 5; ratio ~8. wbits 31: a gzip file.
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        parts: list[bytes] = []
        lines = bad = 0
        for record in _records(path):
            if not record.strip():
                continue
            try:
                expanded = expand_record(record, self.parse)
            except Exception as exc:  # one bad record must not stop the shipping of the rest
                bad += 1
                logger.warning("capture: %s: skipped a record that is not one: %s", path, exc)
                continue
            lines += len(expanded)
            parts.append(packer.compress(b"".join(expanded)))
        parts.append(packer.flush())
        return b"".join(parts), lines, bad


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def spool_size(spool: Path) -> int:
    """Bytes waiting in the spool (closed and open segments)."""
    return sum(p.stat().st_size for p in spool.rglob("*") if p.is_file())


def environment_url(value: str | None) -> str | None:
    """A bare local directory reads as file://; anything else goes to fsspec as given."""
    if not value:
        return None
    if "://" not in value:
        return "file://" + os.path.abspath(value)
    return value
