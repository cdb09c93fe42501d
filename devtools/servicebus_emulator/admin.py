"""The administration endpoint: the read-only part of the Service Bus REST API (ATOM over
HTTP) that `ServiceBusAdministrationClient` uses for queues.

Served on a port of its own (Microsoft's emulator uses 5300), one thread per connection.
Each connection may start with plain http or with TLS (sniffed from its first byte): the
Python SDK sends https even to an emulator. Counts come from `SnapshotBridge`, never from
the queues directly. Authorization headers (SAS or Bearer) are accepted and not checked.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from devtools.servicebus_emulator import atom
from devtools.servicebus_emulator.snapshot import SnapshotBridge, SnapshotTimeout

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2021-05"
MAX_BODY_BYTES = 1024 * 1024
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS ClientHello
READ_ONLY = (
    "This emulator's queues come from its Config.json (--config): the administration "
    "endpoint is read-only and does not create, update or delete entities."
)


class AdminServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], bridge: SnapshotBridge, tls: ssl.SSLContext | None
    ) -> None:
        self.bridge = bridge
        self.tls = tls
        self.host = address[0]
        super().__init__(address, AdminHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        """On the connection's own thread: wrap it in TLS if that is what the client speaks."""
        connection = request
        try:
            request.settimeout(AdminHandler.timeout)
            first = request.recv(1, socket.MSG_PEEK)
            if not first:
                return
            if first == TLS_HANDSHAKE and self.tls is not None:
                connection = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.info("admin connection from %s dropped: %s", client_address[0], exc)
            return
        try:
            AdminHandler(connection, client_address, self)
        finally:
            if connection is not request:
                connection.close()


class AdminHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server: AdminServer

    def do_GET(self) -> None:
        self._discard_body()
        path, query = self._target()
        lowered = path.lower()
        if lowered == "$resources/queues":
            self._list_queues(query)
        elif lowered == "$operations":
            self._operations()
        elif lowered == "$resources/topics":
            self._send(200, self._empty_list("Topics"), atom.FEED_TYPE)
        elif not path or "/" in path or path.startswith("$"):
            self._fail(404, f"The administration endpoint does not serve '/{path}'.")
        else:
            self._get_queue(path, query)

    def do_PUT(self) -> None:
        self._read_only()

    def do_DELETE(self) -> None:
        self._read_only()

    def do_POST(self) -> None:
        self._read_only()

    def do_PATCH(self) -> None:
        self._read_only()

    def do_HEAD(self) -> None:
        self._read_only()

    def do_OPTIONS(self) -> None:
        self._read_only()

    # ---- routes ----------------------------------------------------------------------------

    def _get_queue(self, name: str, query: dict[str, list[str]]) -> None:
        queues = self._snapshot()
        if queues is None:
            return
        found = next((q for q in queues if q.name.lower() == name.lower()), None)
        if found is None:
            self._send(200, atom.empty_feed(), atom.FEED_TYPE)  # as Azure answers
            return
        self._send(200, atom.entry(found, self._base(), self._api_version(query)), atom.ENTRY_TYPE)

    def _list_queues(self, query: dict[str, list[str]]) -> None:
        try:
            skip = int(query.get("$skip", ["0"])[0])
            top = int(query.get("$top", ["100"])[0])
        except ValueError:
            self._fail(400, "$skip and $top must be whole numbers.")
            return
        if skip < 0 or not 0 < top <= 1000:
            self._fail(400, "$skip must be >= 0 and $top between 1 and 1000.")
            return
        queues = self._snapshot()
        if queues is None:
            return
        page = queues[skip : skip + top]
        body = atom.feed(
            page,
            self._base(),
            self._api_version(query),
            skip=skip,
            top=top,
            total=len(queues),
        )
        self._send(200, body, atom.FEED_TYPE)

    def _operations(self) -> None:
        """Operations made on each queue so far, by kind (JSON; the emulator's own route)."""
        queues = self._snapshot()
        if queues is not None:
            counts = {queue.name: queue.operations for queue in queues}
            self._send(200, json.dumps(counts), "application/json")

    def _read_only(self) -> None:
        if self._discard_body():
            self._fail(405, READ_ONLY, allow="GET")

    # ---- helpers ---------------------------------------------------------------------------

    def _snapshot(self) -> list[Any] | None:
        try:
            return self.server.bridge.request()
        except SnapshotTimeout as exc:
            self._fail(503, f"The broker is busy or stopping: {exc}.")
            return None

    def _target(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return unquote(parts.path).strip("/"), parse_qs(parts.query)

    def _api_version(self, query: dict[str, list[str]]) -> str:
        return query.get("api-version", [DEFAULT_API_VERSION])[0]

    def _base(self) -> str:
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        host = self.headers.get("Host") or f"{self.server.host}:{self.server.port}"
        return f"{scheme}://{host}"

    def _empty_list(self, title: str) -> str:
        return (
            f'{atom.DECLARATION}<feed xmlns="{atom.ATOM}"><title type="text">{title}</title>'
            f"<id>{self._base()}/$Resources/{title}</id><updated>{atom.timestamp(0)}</updated>"
            "</feed>"
        )

    def _discard_body(self) -> bool:
        """Read (and drop) a request body so the connection stays usable; False if refused."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._fail(400, "Content-Length must be a whole number.")
            return False
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._fail(413, f"Request bodies are limited to {MAX_BODY_BYTES} bytes.")
            return False
        if length:
            self.rfile.read(length)
        return True

    def _fail(self, status: int, detail: str, *, allow: str | None = None) -> None:
        headers = {"Allow": allow} if allow else {}
        self._send(status, atom.error(status, detail), atom.ERROR_TYPE, headers)

    def _send(
        self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("admin %s %s", self.address_string(), format % args)


def start_admin_server(
    host: str, port: int, bridge: SnapshotBridge, tls: ssl.SSLContext | None
) -> tuple[AdminServer, threading.Thread]:
    """Bind (raises OSError when the port is taken) and serve on a daemon thread."""
    server = AdminServer((host, port), bridge, tls)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="admin-http", daemon=True
    )
    thread.start()
    return server, thread
