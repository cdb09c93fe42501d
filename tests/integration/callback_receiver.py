"""A local endpoint for completion callbacks: it keeps every request (headers and raw body)
and answers each path with the statuses scripted for it, in order (then 200). Also the app
settings that allow callbacks to it, with short retries."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devtools.downstream_stub import serve_in_thread

SECRET = "test-signing-secret-" + "s" * 24


def callback_env(app_env: dict[str, str]) -> dict[str, str]:
    """`app_env` with callbacks allowed to 127.0.0.1 over http, signed, retried quickly."""
    return {
        **app_env,
        "CALLBACK_ALLOWED_HOSTS": "http://127.0.0.1",
        "CALLBACK_SIGNING_SECRET": SECRET,
        "CALLBACK_RETRY_BASE_SECONDS": "0.2",
        "CALLBACK_RETRY_MAX_SECONDS": "0.5",
        "CALLBACK_MAX_ATTEMPTS": "5",
    }


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


@contextlib.contextmanager
def running_receiver() -> Iterator[tuple[str, Received]]:
    """The receiver served on a free port: its base URL and what it received."""
    received = Received()
    with serve_in_thread(create_receiver(received)) as url:
        yield url, received
