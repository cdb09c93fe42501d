"""The callback parts of the HTTP surface: delivery state in the status document, and the
OpenAPI document narrowed to the callback URLs this deployment allows."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from shared.callbacks.policy import AllowEntry
from shared.jobs import Job


class CallbackDocument(BaseModel):
    """Where the job's completion callback stands."""

    url: str
    status: str  # pending | delivered | failed
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: str | None = None
    next_attempt_at: str | None = None
    delivered_at: str | None = None


def callback_document(job: Job) -> CallbackDocument | None:
    if job.callback_url is None:
        return None
    state = job.callback
    if state is None:  # the job has not finished yet
        return CallbackDocument(url=job.callback_url, status="waiting")
    return CallbackDocument(
        url=job.callback_url,
        status=state.status.value,
        attempts=state.attempts,
        last_status_code=state.last_status_code,
        last_error=state.last_error,
        last_attempt_at=_iso(state.last_attempt_at),
        next_attempt_at=_iso(state.next_attempt_at),
        delivered_at=_iso(state.delivered_at),
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
PORT_AND_PATH = r"(?::[1-9][0-9]{0,3})?(?:/[A-Za-z0-9._~-]*)*"


def callback_url_pattern(entries: Sequence[AllowEntry]) -> str:
    """A pattern only allowed callback URLs match (so a document-valid request is never
    refused for its callback host; a name must still resolve when submitted)."""

    def host(entry: AllowEntry) -> str:
        if entry.wildcard:
            return rf"(?:{LABEL}\.)+{re.escape(entry.host)}"
        if isinstance(entry.address, ipaddress.IPv6Address):
            return rf"\[{re.escape(entry.host)}\]"
        return re.escape(entry.host)

    https = "|".join(host(e) for e in entries)
    http = "|".join(host(e) for e in entries if e.http)
    schemes = f"https://(?:{https})" + (f"|http://(?:{http})" if http else "")
    return f"^(?:{schemes}){PORT_AND_PATH}$"


def install_callback_schema(app: FastAPI, entries: Sequence[AllowEntry]) -> None:
    """Narrow `callback_url` in the OpenAPI document: null only when no host is allowed."""
    build = app.openapi
    narrowed: list[int] = []  # ids of the documents already narrowed (the build is cached)

    def openapi() -> dict[str, Any]:
        schema = build()
        if id(schema) in narrowed:
            return schema
        for component in schema.get("components", {}).get("schemas", {}).values():
            prop = component.get("properties", {}).get("callback_url")
            if prop is None:
                continue
            description = prop.get("description", "")
            prop.clear()
            if entries:
                url = {"type": "string", "pattern": callback_url_pattern(entries)}
                prop.update({"anyOf": [url, {"type": "null"}], "description": description})
            else:
                prop.update({"type": "null", "description": description + " Off here."})
        narrowed.append(id(schema))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
