"""An ASGI app built on its first call: FastAPI, its OpenAPI models and the routes are
imported when the first request (or the lifespan startup) comes, not when the Functions
worker indexes the app. An instance that only runs queue triggers never imports them."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyAsgiApp:
    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The real app (built now if it was not yet)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
