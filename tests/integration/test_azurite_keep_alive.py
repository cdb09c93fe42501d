"""Azurite keeps idle connections as Azure Storage does, longer than the SDKs' pools keep
theirs, so no request goes out on a connection the server is closing."""

from __future__ import annotations

import socket
import time

from devtools.azurite import Azurite

# Longer than Node's default keep-alive (5 s), shorter than aiohttp's pool keeps (15 s).
IDLE_SECONDS = 6.5


def _request(conn: socket.socket, port: int) -> bytes:
    conn.sendall(
        f"GET /devstoreaccount1/Tables HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Connection: keep-alive\r\n\r\n".encode()
    )
    return conn.recv(65536)


def test_an_idle_table_connection_still_serves_a_request(azurite: Azurite) -> None:
    with socket.create_connection(("127.0.0.1", azurite.table_port), timeout=10) as conn:
        assert _request(conn, azurite.table_port).startswith(b"HTTP/1.1 ")
        time.sleep(IDLE_SECONDS)
        again = _request(conn, azurite.table_port)
    assert again.startswith(b"HTTP/1.1 "), "Azurite closed the idle connection"
