"""Connection limits on a real server (issue 9): silent and trickling clients are cut off,
a trickled body gets a 408, a connection cap answers a JSON 503, and a flood of bad requests
writes a bounded log. Bounds here are generous deadlines, not timings."""

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


def test_over_the_connection_cap_a_request_gets_a_json_503(server: RunningServer) -> None:
    with contextlib.ExitStack() as stack:
        for _ in range(4):  # idle connections up to the cap
            stack.enter_context(connection(server))
        with connection(server) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = _response(sock)

    assert status == 503 and headers["connection"] == "close"
    assert "connection limit" in json.loads(body)["error"]


def test_a_flood_of_bad_requests_writes_a_bounded_log(server: RunningServer) -> None:
    before = server.stderr().count("Invalid HTTP request received.")
    for _ in range(200):
        with connection(server) as sock:
            sock.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            with contextlib.suppress(OSError):
                sock.recv(1024)

    logged = server.stderr().count("Invalid HTTP request received.") - before
    assert 1 <= logged <= 10, logged
