"""Connection limits for one uvicorn worker facing the network (issue 9).

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and can cap concurrency
(`limit_concurrency`), but any byte resets its keep-alive timer and nothing bounds how long a
request's headers may take, so a client trickling one byte at a time holds a connection (and a
file descriptor) forever; its 503 is also plain text. `guarded_protocol` adds, to whichever HTTP
protocol uvicorn uses (h11 or httptools):

- a header timeout: a connection must deliver a complete request head within `header_timeout`
  seconds of opening or of its previous response, else it is closed;
- the concurrency cap, answered with a JSON 503 (`{"error": ...}`, `Connection: close`) when
  more than `limit` connections are open or `limit` requests are in flight.

The body has its own deadline in the app (`Settings.body_timeout`, answered 408). `RateLimit`
keeps a flood of identical log records (bad requests, accept() failures at the open-file
limit) from filling the disk: a few per period, then one line saying how many were dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.types import Receive, Scope, Send

BUSY = json.dumps({"error": "the server is at its connection limit; retry shortly"}).encode()


def guarded_protocol(base: type[asyncio.Protocol], header_timeout: float, limit: int | None) -> Any:
    """A subclass of uvicorn's HTTP protocol class `base` with the two limits above."""

    class Guarded(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.limit_concurrency = None  # uvicorn's own check answers in plain text
            self._inner_app: Any = self.app  # type: ignore[has-type]
            self.app = self._guarded_app
            self._header_timer: asyncio.TimerHandle | None = None
            self._armed_for: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def _waiting_for_a_request(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            if self._waiting_for_a_request():
                self._armed_for = self.cycle
                self._header_timer = self.loop.call_later(header_timeout, self._header_timeout)

        def _header_timeout(self) -> None:
            self._header_timer = None
            no_new_request = self.cycle is self._armed_for and self._waiting_for_a_request()
            if no_new_request and not self.transport.is_closing():
                self.transport.close()

        async def _guarded_app(self, scope: Scope, receive: Receive, send: Send) -> None:
            # The request's own task is already in `tasks`: more than `limit` means over.
            if limit is not None and (len(self.connections) > limit or len(self.tasks) > limit):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(BUSY)).encode()),
                            (b"connection", b"close"),
                            (b"retry-after", b"1"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": BUSY})
                return
            await self._inner_app(scope, receive, send)

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


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


FLOODED_LOGGERS = ("uvicorn.error", "asyncio", "serving", "serving.prediction_log")


def limit_log_floods(burst: int = 5, period: float = 10.0) -> None:
    """Rate-limit the loggers a hostile client can make talk (after uvicorn set up logging)."""
    limit = RateLimit(burst, period)
    for name in FLOODED_LOGGERS:
        logging.getLogger(name).addFilter(limit)


def http_protocol(header_timeout: float, limit: int | None) -> Any:
    """uvicorn's fastest available HTTP protocol (httptools, else h11), guarded."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]
    return guarded_protocol(base, header_timeout, limit)
