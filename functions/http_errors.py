"""Maps Conveyor errors to RFC 9457 problem documents, once, at the HTTP edge."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.errors import (
    Conflict,
    ConveyorError,
    FieldProblem,
    Forbidden,
    MessageTooLarge,
    NotFound,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    ValidationFailed,
)
from shared.jobs import JobType

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://conveyor.dev/problems/"

_STATUS_BY_ERROR: list[tuple[type[ConveyorError], int, str]] = [
    (Unauthenticated, 401, "Not authenticated"),
    (Forbidden, 403, "Not allowed"),
    (Throttled, 429, "Too many requests"),
    (ValidationFailed, 422, "Request is not valid"),
    (MessageTooLarge, 413, "The job is too large for the queue"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (ServiceUnavailable, 503, "A dependency is unavailable"),
]


def problem_document(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    errors: list[FieldProblem] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one way an RFC 9457 problem document is built (routes and raw ASGI middleware)."""
    body: dict[str, Any] = {
        **(extra or {}),
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    """A problem document as a response; `members` as for `problem_document`."""
    body = problem_document(status, title, detail, code=code, **members)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def conveyor_error_response(request: Request, exc: ConveyorError) -> JSONResponse:
    status, title = 500, "Internal error"
    for error_type, error_status, error_title in _STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            status, title = error_status, error_title
            break
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, Unauthenticated) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, Throttled):
        headers |= rate_limit_headers(
            exc.limit, 0, max(1, math.ceil(exc.retry_after or 1)), exc.window_seconds
        )
    if status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc.message)
    problems = exc.problems if isinstance(exc, ValidationFailed) else None
    response = problem(
        status,
        title,
        exc.message,
        code=exc.code,
        instance=request.url.path,
        errors=problems,
        headers=headers or None,
        extra=exc.details,
    )
    return response


def rate_limit_headers(limit: int, remaining: int, reset: int, window: int) -> dict[str, str]:
    """The IETF draft's RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers)."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "RateLimit-Policy": f"{limit};w={window}",
    }


def validation_error_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            return problem(
                400,
                "Request could not be read",
                f"request body is not valid JSON: {error.get('ctx', {}).get('error', 'bad JSON')}",
                code="malformed_request",
                instance=request.url.path,
            )
    content_type = request.headers.get("content-type", "")
    body_refused = any(tuple(error.get("loc", ()))[:1] == ("body",) for error in errors)
    if body_refused and "json" not in content_type.lower():
        return problem(
            415,
            "Unsupported media type",
            f"send the body as JSON with 'Content-Type: application/json' "
            f"(got {content_type or 'no Content-Type'})",
            code="unsupported_media_type",
            instance=request.url.path,
        )
    problems = [_field_problem(error) for error in errors]
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return problem(
        422,
        "Request is not valid",
        summary,
        code="validation_failed",
        instance=request.url.path,
        errors=problems,
    )


def _field_problem(error: Any) -> FieldProblem:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "header")]
    kind = error.get("type", "")
    # The discriminated union puts the member's tag into the location; drop it.
    if len(loc) >= 2 and loc[0] in JobType.names() and kind != "union_tag_invalid":
        loc = loc[1:]
    field = ".".join(loc) or "body"
    if kind == "union_tag_invalid":
        given = error.get("ctx", {}).get("tag")
        return FieldProblem("type", f"unknown job type {given!r}; valid types: " + _types())
    if kind == "union_tag_not_found":
        return FieldProblem("type", "is required; valid types: " + _types())
    if kind == "missing" and field == "body":
        return FieldProblem("body", "a JSON object {type, input} is required")
    if kind == "extra_forbidden":
        return FieldProblem(field, "is not a known field")
    return FieldProblem(field, error.get("msg", "is invalid"))


def _types() -> str:
    return ", ".join(JobType.names())


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette's own 405 names only the first
    route that matched the path)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match in (Match.FULL, Match.PARTIAL):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def on_conveyor_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConveyorError)
        return conveyor_error_response(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}; see /api/docs"
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = (
                f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
            )
        return problem(
            exc.status_code,
            detail,
            detail,
            code=f"http_{exc.status_code}",
            instance=request.url.path,
            headers=headers or None,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Internal error",
            "an unexpected error occurred; it has been logged",
            code="internal_error",
            instance=request.url.path,
        )

    app.add_exception_handler(ConveyorError, on_conveyor_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
