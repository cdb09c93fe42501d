"""Makes the OpenAPI document say what the API really answers.

FastAPI documents each route's own responses. What every route can also answer comes from
the edge, not the route, so it is added here, once: problem documents
(application/problem+json) for 422 (a parameter or body that does not validate), 500 and 503,
and, where a body is read, 400 (not JSON), 413 (too large) and 415 (not JSON content).
FastAPI's own 422 schema (HTTPValidationError) is replaced, since the edge never sends it.
The sync job's `target` is narrowed to the configured targets, and `delay_seconds` to the
configured horizon (MAX_DELAY_SECONDS), so a document-valid request is never refused for
naming an unknown target or too long a delay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from functions.http_errors import PROBLEM_JSON

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem document",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable, for programs"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
EVERY_ROUTE = {
    "422": "A parameter or the body is not valid; `errors` names each field",
    "500": "Internal error",
    "503": "A dependency is unavailable; retry after Retry-After",
}
SECURED = {"401": "No credential, or one that is not valid; see WWW-Authenticate"}
ADMIN_ONLY = {"403": "The caller is not an administrator"}
WITH_BODY = {
    "400": "The body is not valid JSON",
    "413": "The body is too large",
    "415": "The body is not sent as application/json",
}


def problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def install_openapi(
    app: FastAPI, sync_targets: Mapping[str, str], max_delay_seconds: float | None = None
) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            _document_problems(schema)
            _narrow_sync_targets(schema, sync_targets)
            if max_delay_seconds is not None:
                _narrow_delays(schema, max_delay_seconds)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_problems(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            codes = dict(EVERY_ROUTE)
            if "requestBody" in operation:
                codes |= WITH_BODY
            if operation.get("security"):
                codes |= SECURED
                if "admin" in operation.get("tags", []):
                    codes |= ADMIN_ONLY
            for code, description in codes.items():
                given = responses.get(code)
                if given is None or code == "422":  # FastAPI's own 422 is never sent
                    responses[code] = problem_response(description)
                elif PROBLEM_JSON in given.get("content", {}) or not given.get("content"):
                    responses[code] = problem_response(given.get("description") or description)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _narrow_sync_targets(schema: dict[str, Any], sync_targets: Mapping[str, str]) -> None:
    sync_input = schema.get("components", {}).get("schemas", {}).get("SyncInput")
    if sync_input is None:
        return
    target = sync_input["properties"]["target"]
    if sync_targets:
        target["enum"] = sorted(sync_targets)
    else:
        target["enum"] = []  # nothing can be synced until SYNC_TARGETS names a target
    target["description"] = "One of the targets configured in SYNC_TARGETS."


def _narrow_delays(schema: dict[str, Any], max_delay_seconds: float) -> None:
    for name, model in schema.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request"):
            continue
        delay = model.get("properties", {}).get("delay_seconds", {})
        for branch in delay.get("anyOf", [delay]):
            if branch.get("type") == "number":
                branch["maximum"] = max_delay_seconds
