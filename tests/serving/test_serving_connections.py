"""Connection limits on a real server (issues 9 and 22): silent and trickling clients are cut
off, an oversized request head gets a 431, a trickled body a 408, the cap on requests in flight
a JSON 503 (idle connections never count), and a flood of bad requests writes a bounded log.
Bounds here are generous deadlines, not timings."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from serving_support import RunningServer, serving_exported

pytestmark = pytest.mark.slow

LIMITS = {
    "SERVING_HEADER_TIMEOUT": "1",
    "SERVING_BODY_TIMEOUT": "1",
    "SERVING_LIMIT_CONCURRENCY": "4",
}


@pytest.fixture(scope="module")
def server(
    exported_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("serving-connections")
    with serving_exported(exported_model, tmp, env=LIMITS) as running:
        yield running


@contextlib.contextmanager
def connection(server: RunningServer) -> Iterator[socket.socket]:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        yield sock


def _closed_by_server(sock: socket.socket, trickle: bytes = b"") -> bool:
    """Send `trickle` one byte at a time (or nothing) until the server closes the connection."""
    deadline = time.monotonic() + 15
    sock.settimeout(0.2)
    index = 0
    while time.monotonic() < deadline:
        try:
            if index < len(trickle):
                sock.send(trickle[index : index + 1])
                index += 1
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return True
    return False


def test_a_silent_connection_is_closed(server: RunningServer) -> None:
    with connection(server) as sock:
        assert _closed_by_server(sock)


def test_a_client_trickling_its_headers_is_cut_off(server: RunningServer) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500
    with connection(server) as sock:
        assert _closed_by_server(sock, head)


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(15)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def test_a_trickled_body_gets_a_408(server: RunningServer) -> None:
    with connection(server) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{")
        status, headers, body = _response(sock)

    assert status == 408 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "the request body did not arrive within 1 s"}


def test_idle_connections_do_not_take_the_place_of_active_clients(server: RunningServer) -> None:
    """The cap counts requests in flight, not sockets: twice the cap in idle keep-alive
    connections (issue 22: 520 of them made 49 of 50 requests 503) leaves room for a client."""
    with contextlib.ExitStack() as stack:
        for _ in range(8):
            stack.enter_context(connection(server))
        with connection(server) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = _response(sock)

    assert status == 200 and json.loads(body) == {"live": True}


def test_over_the_cap_of_requests_in_flight_a_request_gets_a_json_503(
    exported_model: Any, tmp_path: Any
) -> None:
    """Four requests waiting for their bodies fill a cap of four (their bodies have 30 s)."""
    env = {"SERVING_LIMIT_CONCURRENCY": "4"}
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{"
    with (
        serving_exported(exported_model, tmp_path, env=env) as running,
        contextlib.ExitStack() as stack,
    ):
        for _ in range(4):
            stack.enter_context(connection(running)).sendall(head)
        deadline = time.monotonic() + 15
        status = 0
        while status != 503 and time.monotonic() < deadline:  # until the four are read
            with connection(running) as sock:
                sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body = _response(sock)

    assert status == 503 and headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert "limit of requests in flight" in json.loads(body)["error"]


def test_a_request_head_over_the_limit_is_a_431_and_the_connection_closes(
    server: RunningServer,
) -> None:
    """64 KiB by default (SERVING_MAX_HEADER_BYTES); issue 22 sent 8 MB and got a 200."""
    big = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    with connection(server) as sock:
        sock.sendall(big)
        status, headers, body = _response(sock)
        closed = _closed_by_server(sock)

    assert status == 431 and headers["content-type"] == "application/json"
    assert "request head" in json.loads(body)["error"]
    assert closed


def test_a_request_head_at_the_limit_is_answered(server: RunningServer) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n"
    with connection(server) as sock:
        sock.sendall(head)
        status, _, _ = _response(sock)

    assert status == 200


def test_a_flood_of_bad_requests_writes_a_bounded_log(server: RunningServer) -> None:
    before = server.stderr().count("Invalid HTTP request received.")
    for _ in range(200):
        with connection(server) as sock:
            sock.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            with contextlib.suppress(OSError):
                sock.recv(1024)

    logged = server.stderr().count("Invalid HTTP request received.") - before
    assert 1 <= logged <= 10, logged
