"""What processing decides for one delivery: complete it, retry it later, or dead-letter it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Complete:
    """Done with this message: the job succeeded, or there was nothing to do."""

    note: str = "succeeded"


@dataclass(frozen=True)
class RetryLater:
    """Send a copy `delay` seconds from now as attempt `next_attempt`, then complete this one."""

    delay: float
    reason: str
    next_attempt: int


@dataclass(frozen=True)
class DeadLetter:
    """Move the message to the dead-letter queue with a reason code and a description."""

    reason: str
    description: str


Outcome = Complete | RetryLater | DeadLetter
