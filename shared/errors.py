"""Conveyor's error hierarchy. The core raises these; each edge (HTTP, queue) maps them once.

`code` is a stable, machine-readable name that callers and dashboards can match on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ConveyorError(Exception):
    code = "error"
    # Seconds after which trying again may succeed (an HTTP edge sends it as Retry-After);
    # None when waiting would not help.
    retry_after: float | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = {}  # extra members for the caller, e.g. a job id
        if code is not None:
            self.code = code


class ConfigError(ConveyorError):
    """A setting is missing or invalid; raised at start-up, naming the setting."""

    code = "config_error"


@dataclass(frozen=True)
class FieldProblem:
    field: str  # dotted path in the request body, e.g. "input.texts.3"
    message: str


class ValidationFailed(ConveyorError):
    code = "validation_failed"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class MessageTooLarge(ConveyorError):
    """A job message over the queue's size limit (256 KB on Service Bus Standard)."""

    code = "message_too_large"


class NotFound(ConveyorError):
    code = "not_found"


class Conflict(ConveyorError):
    code = "conflict"

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a job that is {current} cannot become {target}")
        self.current = current
        self.target = target


class Unauthenticated(ConveyorError):
    """No credential, or one that does not prove who the caller is (HTTP 401)."""

    code = "unauthenticated"
    # The WWW-Authenticate challenge to answer with (RFC 9110 11.6.1).
    challenge: str | None = None


class Forbidden(ConveyorError):
    """The caller is known but may not do this (HTTP 403)."""

    code = "forbidden"


class Throttled(ConveyorError):
    """The caller is over its rate limit; `retry_after` says when the window reopens."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, limit: int, window_seconds: int):
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit
        self.window_seconds = window_seconds


class ServiceUnavailable(ConveyorError):
    """A dependency (Storage, Service Bus) cannot be reached; the caller may retry."""

    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: float = 5, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class TransientError(ConveyorError):
    """A failure worth retrying later (timeout, 429, 5xx, connection)."""

    code = "transient"

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentError(ConveyorError):
    """A failure that will not go away by retrying (bad input, 4xx, unknown type)."""

    code = "permanent"
