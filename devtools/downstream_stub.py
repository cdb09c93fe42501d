"""A local stand-in for the downstream ERP/CRM API that `sync` jobs call.

    python -m devtools.downstream_stub --port 7081

POST /records upserts `record` under its Idempotency-Key (a repeat does not duplicate it).
Tests script failures per record id: POST /_script {"record_id": "r1", "responses":
[{"status": 503, "retry_after": 0.1}, {"status": 200, "delay": 5}]} makes the next calls for
that record answer in that order (then 200 again). GET /_calls lists every call received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class StubState:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def create_stub_app(state: StubState | None = None) -> Starlette:
    state = state or StubState()

    async def upsert(request: Request) -> JSONResponse:
        body = await request.json()
        record = body.get("record") or {}
        record_id = str(record.get("id", ""))
        key = request.headers.get("idempotency-key", "")
        script = state.scripts.get(record_id) or []
        action = script.pop(0) if script else {"status": 200}
        state.calls.append({"key": key, "record_id": record_id, "status": action["status"]})
        if action.get("delay"):
            await asyncio.sleep(float(action["delay"]))
        status = int(action["status"])
        if status >= 300:
            headers = {}
            if "retry_after" in action:
                headers["Retry-After"] = str(action["retry_after"])
            return JSONResponse({"error": f"scripted {status}"}, status, headers=headers)
        created = key not in state.records
        state.records[key] = record
        return JSONResponse({"id": record_id, "created": created}, 201 if created else 200)

    async def script(request: Request) -> JSONResponse:
        body = await request.json()
        state.scripts[str(body["record_id"])] = list(body["responses"])
        return JSONResponse({"ok": True})

    async def calls(request: Request) -> JSONResponse:
        return JSONResponse({"calls": state.calls, "records": state.records})

    return Starlette(
        routes=[
            Route("/records", upsert, methods=["POST"]),
            Route("/_script", script, methods=["POST"]),
            Route("/_calls", calls, methods=["GET"]),
        ]
    )


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve an ASGI app on a free port in a background thread; yields its base URL."""
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="asgi-stub", daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    else:
        raise RuntimeError("stub server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.downstream_stub")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7081)
    args = parser.parse_args()
    uvicorn.run(create_stub_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
