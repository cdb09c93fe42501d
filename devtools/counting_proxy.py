"""An HTTP proxy in front of a Storage endpoint that records every request it passes on.

For counting Table transactions on the wire (one request is one billed transaction, a batch
included): every process pointed at it is counted, whatever client or code path sent the
request. Used by tests/integration/test_operation_counts.py and bench/operation_counts.py.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from yarl import URL

# Hop-by-hop and framing headers the proxy sets itself.
_SKIP = {"host", "content-length", "transfer-encoding", "connection"}
_TABLE = re.compile(r"^/[^/]+/([A-Za-z0-9]+)(?:\(|$|\?)")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # unquoted, without the query

    @property
    def table(self) -> str:
        """The table a request is on ('Tables' for creating and listing tables)."""
        match = _TABLE.match(self.path)
        return match.group(1) if match else ""


@dataclass
class CountingProxy:
    target: str  # e.g. http://127.0.0.1:10002
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def endpoint(self, account: str) -> str:
        return f"http://127.0.0.1:{self.port}/{account}"

    def on(self, table: str) -> list[Request]:
        return [r for r in self.requests if r.table.lower() == table.lower()]


@contextlib.asynccontextmanager
async def counting_proxy(target: str) -> AsyncIterator[CountingProxy]:
    """Serve on a free port of 127.0.0.1 in the running event loop until the block exits."""
    proxy = CountingProxy(target.rstrip("/"))
    session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)

    async def forward(request: web.Request) -> web.StreamResponse:
        proxy.requests.append(Request(request.method, unquote(request.path)))
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP}
        async with session.request(
            request.method,
            URL(proxy.target + request.raw_path, encoded=True),  # as signed: no requoting
            headers=headers,
            data=body or None,  # an empty body would gain a Content-Type, and break the signature
            allow_redirects=False,
        ) as upstream:
            data = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP}
            return web.Response(status=upstream.status, headers=out, body=data)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy.port = int(runner.addresses[0][1])
    try:
        yield proxy
    finally:
        await runner.cleanup()
        await session.close()
