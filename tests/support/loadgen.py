"""A small HTTP/1.1 keep-alive load generator for smoke, load tests and benchmarks.

`python tests/support/loadgen.py --url URL --body FILE --concurrency 16 --duration 10` prints one
JSON line (requests, errors, requests/s, p50/p99 latency). Plain asyncio streams, one
connection per simulated client: general-purpose async HTTP clients spend more CPU per request
than this server does, which would make the client the thing being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bodies: dict[int, bytes] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def summary(self) -> dict[str, float]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.elapsed, 3),
            "requests_per_s": round(self.requests / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
        }


def _request(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, bytes, bool]:
    """Send one request; return (status, body, server wants the connection closed)."""
    writer.write(payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection", "").lower() == "close"


async def run_load(
    url: str,
    requests: Sequence[tuple[str, bytes]],
    concurrency: int,
    duration: float | None = None,
    keep_bodies: bool = False,
) -> LoadResult:
    """POST every (path, body) once over `concurrency` connections — or, with `duration`,
    cycle through them until the time is up. Bounded either way."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payloads = [_request(f"{host}:{port}", path, body) for path, body in requests]
    result = LoadResult()
    next_index = 0
    started = time.perf_counter()
    deadline = None if duration is None else started + duration

    def take() -> int | None:
        nonlocal next_index
        if deadline is None and next_index >= len(payloads):
            return None
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        index = next_index
        next_index += 1
        return index

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (index := take()) is not None:
                sent = time.perf_counter()
                status, body, close = await _exchange(
                    reader, writer, payloads[index % len(payloads)]
                )
                result.latencies.append(time.perf_counter() - sent)
                result.statuses[status] += 1
                if keep_bodies:
                    result.bodies[index] = body
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/support/loadgen.py", description=__doc__)
    parser.add_argument("--url", required=True, help="http://host:port/path to POST to")
    parser.add_argument("--body", required=True, type=Path, help="file with the JSON body")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (bounded run)")
    args = parser.parse_args(argv)
    path = urlsplit(args.url).path or "/"
    result = asyncio.run(
        run_load(args.url, [(path, args.body.read_bytes())], args.concurrency, args.duration)
    )
    print(json.dumps(result.summary()))
    return 0 if result.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
