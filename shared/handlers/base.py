"""The handler contract: what a job handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.jobs import JobType


@dataclass(frozen=True)
class JobContext:
    job_id: str
    job_type: JobType
    attempt: int


# (validated input as a dict, context) -> JSON-serialisable result. Raise TransientError or
# PermanentError (shared.errors) to steer the retry policy; anything else counts as transient.
Handler = Callable[[dict[str, Any], JobContext], Awaitable[Any]]
