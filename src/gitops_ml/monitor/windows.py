"""Windows by time over captured predictions: `--since 7d` or `--window 2026-11-01..2026-11-07`.

The serving capture writes `<root>/date=YYYY-MM-DD/hour=HH/<host>-<seq>.jsonl.gz`
(serving/capture/). A window lists only the day prefixes it covers and keeps the files whose
hour partition overlaps it, so a check over the last week never lists a year of captures. The
root may be a local directory, `file://…` or `s3://…` (the stores whose clients the `capture`
extra installs; another fsspec URL works once its client is installed); remote files in range
are streamed from the store (fsspec opens each one as it is read), never copied whole.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import pyarrow as pa
from isal import isal_zlib

from gitops_ml.errors import UserError

_SINCE = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_PARTITION = re.compile(r"(?:^|/)date=(\d{4}-\d\d-\d\d)/hour=(\d\d)/[^/]+$")


class WindowError(UserError):
    """A --since/--window value that does not parse, or a window with no captured files."""


@dataclass(frozen=True)
class Window:
    """Half-open [start, end) in UTC."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M}Z..{self.end:%Y-%m-%dT%H:%M}Z"

    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def holds_hour(self, day: date, hour: int) -> bool:
        """Whether the partition hour [day hour:00, +1 h) overlaps the window."""
        begin = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        return begin < self.end and begin + timedelta(hours=1) > self.start


def parse_duration(text: str, flag: str) -> timedelta:
    """`7d`, `36h`, `2w` as a timedelta; anything else is an error naming `flag`."""
    found = _SINCE.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise WindowError(f"{flag} {text!r}: use a positive count of h, d or w, e.g. 7d or 36h")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def parse_since(text: str, now: datetime) -> Window:
    """`7d`, `36h`, `2w`: that long before `now`, up to now."""
    return Window(now - parse_duration(text, "--since"), now)


def _instant(text: str, end: bool) -> datetime:
    """A date (whole day; an end date counts through its last hour) or an ISO time (UTC)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"--window: {text!r} is not a date (2026-11-01) or time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_window(text: str) -> Window:
    """`2026-11-01..2026-11-07` (both days included) or ISO times `…T06:00..…T18:00`."""
    first, sep, last = text.partition("..")
    if not sep or not first or not last:
        raise WindowError(f"--window {text!r}: use START..END, e.g. 2026-11-01..2026-11-07")
    window = Window(_instant(first.strip(), False), _instant(last.strip(), True))
    if window.end <= window.start:
        raise WindowError(f"--window {text!r}: the end is not after the start")
    return window


def partition_of(path: str) -> tuple[date, int] | None:
    found = _PARTITION.search(path)
    if not found:
        return None
    return date.fromisoformat(found.group(1)), int(found.group(2))


def _filesystem(root: str) -> tuple[object, str]:
    import fsspec

    try:
        # A fresh instance: a cached one keeps its listings (and endpoint) from an earlier call.
        fs, path = fsspec.core.url_to_fs(root, skip_instance_cache=True)
    except (ValueError, ImportError) as exc:
        raise WindowError(f"{root}: cannot open this location: {exc}") from None
    return fs, path.rstrip("/")


def list_window(root: str, window: Window | None, suffixes: tuple[str, ...]) -> dict[str, int]:
    """Files under `root` in the window's hour partitions, listing only its days (every
    file under `root` without a window), sorted, with their sizes in bytes."""
    fs, base = _filesystem(root)
    if window is None:
        try:
            listed = fs.find(base, detail=True)  # type: ignore[attr-defined]
        except OSError as exc:
            raise WindowError(f"{root}: cannot list: {exc}") from None
        every = {n: int(i["size"]) for n, i in listed.items() if n.lower().endswith(suffixes)}
        if not every:
            raise WindowError(f"{root}: no CSV/Parquet/JSONL file under this location")
        return dict(sorted(every.items()))
    found: dict[str, int] = {}
    for day in window.days():
        prefix = f"{base}/date={day.isoformat()}"
        try:
            listed = fs.find(prefix, detail=True)  # type: ignore[attr-defined]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise WindowError(f"{root}: cannot list {prefix}: {exc}") from None
        for name, info in listed.items():
            where = partition_of(name)
            if where and window.holds_hour(*where) and name.lower().endswith(suffixes):
                found[name] = int(info["size"])
    if not found:
        raise WindowError(
            f"{root}: no captured files in {window} (expected date=YYYY-MM-DD/hour=HH/ "
            "partitions, as the serving capture writes them)"
        )
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class RemoteFile:
    """A file in a store, read as a stream: its filesystem (fsspec, pickled to whichever
    process reads it) fetches it block by block as the reader asks, never copying it whole."""

    fs: Any
    path: str  # within the filesystem, as it lists it
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return str(self.fs.unstrip_protocol(self.path))


Source = Path | RemoteFile  # a window's file: local, or in a store

# What a window file that cannot be read raises, whichever library reads it (fsspec inflates
# gzip with ISA-L when installed; isal's stubs call its error class an instance): an error about
# the file, never a traceback.
UNREADABLE = (
    OSError,
    ValueError,
    EOFError,
    zlib.error,
    cast(type[Exception], isal_zlib.error),
    pa.ArrowException,
)


def open_source(source: Source, decompress: bool = True) -> IO[bytes]:
    """A window file opened for reading, local or streamed from its store; a `.gz` file
    decompressed as it is read."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem
    from fsspec.utils import infer_compression

    fs, path = (
        (source.fs, source.path) if isinstance(source, RemoteFile) else (LocalFileSystem(), source)
    )
    compression = infer_compression(str(path)) if decompress else None
    opened: IO[bytes] = fsspec.core.OpenFile(fs, str(path), "rb", compression).open()
    return opened


@contextmanager
def readable(source: Source) -> Iterator[Path | IO[bytes]]:
    """What pandas reads: a local path as it is (its own fast reader), a file in a store
    opened as a stream (`.gz` decompressed as it is read)."""
    if isinstance(source, Path):
        yield source
        return
    with open_source(source) as handle:
        yield handle


def source_size(source: Source) -> int:
    """A window file's size in bytes."""
    return source.size if isinstance(source, RemoteFile) else source.stat().st_size


def window_files(
    root: str, window: Window | None, suffixes: tuple[str, ...]
) -> tuple[list[str], list[Source]]:
    """The window's files: their names under `root` (for the report) and what to read, the
    files themselves for a local root, else the store's files, streamed (RemoteFile)."""
    fs, base = _filesystem(root)
    listed = list_window(root, window, suffixes)
    shown = [f"{root.rstrip('/')}/{name[len(base) + 1 :]}" for name in listed]
    protocol = fs.protocol  # type: ignore[attr-defined]
    protocols = (protocol,) if isinstance(protocol, str) else protocol
    if {"file", "local"} & set(protocols):
        return shown, [Path(name) for name in listed]
    return shown, [RemoteFile(fs, name, size) for name, size in listed.items()]


def is_url(text: str) -> bool:
    return "://" in text
