"""Azurite and the local host keep idle connections as Azure does, longer than clients keep
theirs pooled, so no request goes out on a connection the server is closing."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from devtools.azurite import Azurite
from devtools.host_process import HostProcess

pytestmark = pytest.mark.integration

# Longer than Node's and uvicorn's default keep-alive (5 s), shorter than aiohttp's pool (15 s).
IDLE_SECONDS = 6.5


def _request(conn: socket.socket, port: int, path: str) -> bytes:
    conn.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive\r\n\r\n".encode()
    )
    return conn.recv(65536)


def _serves_after_a_pause(port: int, path: str) -> bytes:
    """The second answer on one connection, asked after it was idle IDLE_SECONDS."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        assert _request(conn, port, path).startswith(b"HTTP/1.1 ")
        time.sleep(IDLE_SECONDS)
        return _request(conn, port, path)


def test_an_idle_table_connection_still_serves_a_request(azurite: Azurite) -> None:
    again = _serves_after_a_pause(azurite.table_port, "/devstoreaccount1/Tables")
    assert again.startswith(b"HTTP/1.1 "), "Azurite closed the idle connection"


def test_an_idle_api_connection_still_serves_a_request(host: HostProcess) -> None:
    port = urlsplit(host.base_url).port
    assert port is not None
    again = _serves_after_a_pause(port, "/api/jobs/not-a-job")
    assert again.startswith(b"HTTP/1.1 "), "the local host closed the idle connection"
