"""What processing decides for one delivery, and how a decision is carried out.

The host-specific part (Functions' message actions, or the local host's SDK receiver) is
behind the small `Settlement` protocol, so the order of steps lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from shared import telemetry
from shared.jobs import utcnow
from shared.queue import JobMessage, JobQueue, copy_message_id

if TYPE_CHECKING:
    from shared.processing import Processor


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


class Settlement(Protocol):
    """Settles the delivery being processed. Implemented by each host's adapter."""

    async def complete(self) -> None: ...

    async def dead_letter(self, reason: str, description: str) -> None: ...


async def carry_out(
    outcome: Outcome, message: JobMessage | None, queue: JobQueue, settlement: Settlement
) -> None:
    """Apply `outcome`. A retry copy is scheduled BEFORE the original is completed, so a
    failure between the two steps leaves a redelivery, never a lost job."""
    if isinstance(outcome, RetryLater):
        if message is None:
            raise ValueError("a retry needs the parsed job message")
        copy = JobMessage(
            job_id=message.job_id,
            job_type=message.job_type,
            attempt=outcome.next_attempt,
            input=message.input,
            input_ref=message.input_ref,
            submitted_at=message.submitted_at,
            traceparent=message.traceparent,
            message_id=copy_message_id(message.job_id, f"retry{outcome.next_attempt}"),
        )
        await queue.send(copy, scheduled_at=utcnow() + timedelta(seconds=outcome.delay))
        await settlement.complete()
    elif isinstance(outcome, DeadLetter):
        await settlement.dead_letter(outcome.reason, outcome.description[:1024])
    else:
        await settlement.complete()


@dataclass(frozen=True)
class Delivery:
    """One received message, as any host hands it over."""

    body: bytes
    queue: str
    message_id: str | None
    traceparent: str | None


async def handle_delivery(
    delivery: Delivery, processor: Processor, queue: JobQueue, settlement: Settlement
) -> Outcome:
    """Process one delivery and settle it, inside a span that continues the submit's trace."""
    with telemetry.consumer_span(delivery.queue, delivery.message_id, delivery.traceparent) as span:
        outcome, message = await processor.process(delivery.body, delivery.traceparent)
        telemetry.record_outcome(
            span,
            job_id=message.job_id if message else None,
            attempt=message.attempt if message else None,
            outcome=type(outcome).__name__,
            reason=getattr(outcome, "reason", None),
        )
        if isinstance(outcome, DeadLetter):
            telemetry.mark_failed(span, f"dead-lettered: {outcome.reason}")
        await carry_out(outcome, message, queue, settlement)
        return outcome
