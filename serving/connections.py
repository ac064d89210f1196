"""Bounds on the request head, before any ASGI code runs: `HeadGuard` holds uvicorn's httptools
protocol and feeds every byte to its own `httptools` parser first, closing a connection whose
head is too slow and answering 431 to one too large (why and how: docs/serving.md, "Hostile
input has a budget"). `RateLimit` keeps a flood of identical log records from filling the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httptools

from serving.validation import dump_json

TOO_LARGE = dump_json({"error": "the request head (request line and headers) is too large"})
TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(TOO_LARGE), TOO_LARGE)
)


class HeadGuard(asyncio.Protocol):
    def __init__(self, inner: asyncio.Protocol, timeout: float, max_bytes: int) -> None:
        self.inner = inner
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.in_head = False
        self.head_bytes = 0  # bytes received while the head arrives
        self.head_size = 0  # request line and headers as parsed, once complete
        self.too_large = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        self._arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.parser is not None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.parser = None  # uvicorn's parser answers this request's 400 itself
                self._disarm()
            if self.in_head:  # counted from the chunk the head began in: an upper bound
                self.head_bytes += len(data)
            if self.too_large or (self.in_head and self.head_bytes > self.max_bytes):
                self._refuse()
                return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def on_message_begin(self) -> None:
        self.in_head, self.head_bytes, self.head_size = True, 0, 0
        if self.timer is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.too_large = self.head_size > self.max_bytes
        self._disarm()

    def _arm(self) -> None:
        self.timer = asyncio.get_running_loop().call_later(self.timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _too_slow(self) -> None:
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _refuse(self) -> None:
        self.parser = None
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(TOO_LARGE_RESPONSE)
            self.transport.close()


class RateLimit(logging.Filter):
    """At most `burst` records per message per `period` seconds; the next one let through
    after a quiet spell says how many were suppressed."""

    def __init__(self, burst: int = 5, period: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.period = period
        self._windows: dict[tuple[str, str], list[float]] = {}  # [start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.period:
            if len(self._windows) > 1000:
                self._windows.clear()
            suppressed = 0 if window is None else int(window[2])
            self._windows[key] = window = [now, 0, 0]
            if suppressed:
                record.msg = f"{record.msg} ({suppressed} more like this suppressed)"
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False


def limit_log_floods() -> None:
    """Rate-limit the loggers a hostile client can make talk (after uvicorn set up logging)."""
    limit = RateLimit()
    for name in ("uvicorn.error", "asyncio", "serving", "serving.capture"):
        logging.getLogger(name).addFilter(limit)


def http_protocol(header_timeout: float, max_header_bytes: int) -> Any:
    """A protocol class for uvicorn's `http` setting: its httptools protocol behind a HeadGuard."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    def build(**kwargs: Any) -> HeadGuard:
        return HeadGuard(HttpToolsProtocol(**kwargs), header_timeout, max_header_bytes)

    return build
