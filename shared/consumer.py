"""The consumer path: one delivery in, processed, and settled as its Outcome says.

The host-specific part (Functions' message actions, or the local host's SDK receiver) is
behind the small `Settlement` protocol, so the order of steps lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from shared import telemetry
from shared.jobs import utcnow
from shared.outcomes import DeadLetter, Outcome, RetryLater
from shared.processing import Processor
from shared.queue import JobMessage, JobQueue


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
        copy = message.next_copy(outcome.next_attempt, f"retry{outcome.next_attempt}")
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
