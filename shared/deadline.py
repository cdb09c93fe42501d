"""The one deadline a submit's Storage and Service Bus calls share (SUBMIT_BUDGET_SECONDS)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from shared.errors import ServiceUnavailable

T = TypeVar("T")


class SubmitDeadline:
    """One deadline shared by a submit's calls: each runs with what is left of it, and
    running out is a ServiceUnavailable (503) naming the dependency."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = asyncio.get_running_loop().time() + seconds

    async def run(self, operation: Awaitable[T], *, what: str = "Storage") -> T:
        try:
            async with asyncio.timeout_at(self.at):
                return await operation
        except TimeoutError as exc:
            raise ServiceUnavailable(
                f"{what} did not answer within the submit's {self.seconds:g} s; retry the "
                "request (with the same Idempotency-Key, if you sent one)",
                code="dependency_timeout",
            ) from exc
