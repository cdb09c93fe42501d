"""A local endpoint for completion callbacks: it keeps every request (headers and raw body)
and answers each path with the statuses scripted for it, in order (then 200)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Received:
    calls: list[dict[str, Any]] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, path: str, statuses: list[int]) -> None:
        with self.lock:
            self.scripts[path] = list(statuses)

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path]


def create_receiver(received: Received) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        body = await request.body()
        path = request.url.path
        with received.lock:
            script = received.scripts.get(path) or []
            status = script.pop(0) if script else 200
            received.calls.append(
                {"path": path, "headers": dict(request.headers), "body": body, "status": status}
            )
        headers = {"Retry-After": "0"} if status == 503 else None
        return JSONResponse({"status": status}, status_code=status, headers=headers)

    return Starlette(routes=[Route("/hooks/{name}", hook, methods=["POST"])])
