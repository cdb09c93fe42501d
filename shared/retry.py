"""Retry policy: how many attempts, how long between them, and which failures deserve one.

The one home of backoff, classification and "attempts used up": processing decides outcomes
with it, the maintenance pass re-drives stuck jobs with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from shared.errors import ConveyorError, PermanentError, ServiceUnavailable, TransientError


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 300.0
    max_attempts: int = 5

    def exhausted(self, attempt: int) -> bool:
        """True when `attempt` was the last one allowed."""
        return attempt >= self.max_attempts


def backoff_delay(
    attempt: int, policy: RetryPolicy, retry_after: float | None, rng: Callable[[], float]
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))].

    A Retry-After from the remote service is a floor (it said when it can take more).
    """
    ceiling = min(policy.max_seconds, policy.base_seconds * 2 ** (attempt - 1))
    delay = ceiling * rng()
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_seconds))
    return round(delay, 3)


def classify(exc: BaseException) -> ConveyorError:
    """Sort a handler failure into transient (retry) or permanent (dead-letter)."""
    if isinstance(exc, TransientError | PermanentError):
        return exc
    if isinstance(exc, ValidationError):
        return PermanentError(f"input is not valid: {exc}", code="invalid_input")
    if isinstance(exc, TimeoutError):
        return TransientError("the handler timed out", code="timeout")
    if isinstance(exc, ServiceUnavailable):
        return TransientError(exc.message, code="dependency_unavailable")
    if isinstance(exc, ConnectionError):
        return TransientError(f"connection failed: {exc}", code="connection_error")
    # Unknown failures are retried: after max attempts they still land in the DLQ.
    return TransientError(f"{type(exc).__name__}: {exc}", code="unexpected_error")
