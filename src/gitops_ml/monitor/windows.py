"""Windows by time over captured predictions: `--since 7d` or `--window 2026-11-01..2026-11-07`.

The serving capture writes `<root>/date=YYYY-MM-DD/hour=HH/<host>-<seq>.jsonl.gz`
(serving/capture/). A window lists only the day prefixes it covers and keeps the files whose
hour partition overlaps it, so a check over the last week never lists a year of captures. The
root may be a local directory, `file://…` or `s3://…` (the stores whose clients the `capture`
extra installs; another fsspec URL works once its client is installed); remote files in range
are copied (still gzipped) to a temporary directory and streamed from there.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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


def list_window(root: str, window: Window | None, suffixes: tuple[str, ...]) -> list[str]:
    """Files under `root` in the window's hour partitions, listing only its days (every
    file under `root` without a window)."""
    fs, base = _filesystem(root)
    if window is None:
        try:
            names = fs.find(base)  # type: ignore[attr-defined]
        except OSError as exc:
            raise WindowError(f"{root}: cannot list: {exc}") from None
        every = sorted(n for n in names if n.lower().endswith(suffixes))
        if not every:
            raise WindowError(f"{root}: no CSV/Parquet/JSONL file under this location")
        return every
    found: list[str] = []
    for day in window.days():
        prefix = f"{base}/date={day.isoformat()}"
        try:
            names = fs.find(prefix)  # type: ignore[attr-defined]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise WindowError(f"{root}: cannot list {prefix}: {exc}") from None
        for name in names:
            where = partition_of(name)
            if where and window.holds_hour(*where) and name.lower().endswith(suffixes):
                found.append(name)
    if not found:
        raise WindowError(
            f"{root}: no captured files in {window} (expected date=YYYY-MM-DD/hour=HH/ "
            "partitions, as the serving capture writes them)"
        )
    return sorted(found)


@contextmanager
def window_files(
    root: str, window: Window | None, suffixes: tuple[str, ...]
) -> Iterator[tuple[list[str], list[Path]]]:
    """The window's files: their names under `root` (for the report) and local paths to read,
    the files themselves for a local root, else copies in a temporary directory."""
    fs, base = _filesystem(root)
    names = list_window(root, window, suffixes)
    shown = [f"{root.rstrip('/')}/{name[len(base) + 1 :]}" for name in names]
    protocol = fs.protocol  # type: ignore[attr-defined]
    if {"file", "local"} & set((protocol,) if isinstance(protocol, str) else protocol):
        yield shown, [Path(name) for name in names]
        return
    with tempfile.TemporaryDirectory(prefix="gitops-ml-window-") as scratch:
        local = [Path(scratch) / name[len(base) + 1 :] for name in names]
        for path in local:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs.get(names, [str(p) for p in local])  # type: ignore[attr-defined]
        except OSError as exc:
            raise WindowError(f"{root}: cannot read the window's files: {exc}") from None
        yield shown, local


def is_url(text: str) -> bool:
    return "://" in text
