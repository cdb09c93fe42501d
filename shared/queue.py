"""JobQueue: publishes job messages to the Service Bus queues, two per job type: the type's
queue and its high-priority queue (`priority: high` jobs, each with a trigger of its own).

message_id = job id, so the queue's duplicate detection also guards against a resend of the
same submit. Senders are opened once per queue and reused for the life of the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusSender
from azure.servicebus.exceptions import MessageSizeExceededError

from shared import telemetry
from shared.errors import MessageTooLarge, PermanentError, ServiceUnavailable
from shared.jobs import Job, JobType, Priority, utcnow

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
CLOSE_TIMEOUT_SECONDS = 2.0
T = TypeVar("T")


@dataclass(frozen=True)
class JobMessage:
    """What travels on the queue: enough to run the job even if the row is slow to read."""

    job_id: str
    job_type: JobType
    attempt: int = 1
    input: dict[str, Any] | None = None
    input_ref: str | None = None
    submitted_at: datetime = field(default_factory=utcnow)
    traceparent: str | None = None
    message_id: str | None = None  # None: the job id (what duplicate detection keys on)
    priority: Priority = Priority.NORMAL  # which of the type's queues it travels on

    def to_service_bus(self) -> ServiceBusMessage:
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "type": self.job_type.value,
            "attempt": self.attempt,
            "submitted_at": self.submitted_at.isoformat(),
        }
        if self.priority is not Priority.NORMAL:
            body["priority"] = self.priority.value
        if self.input_ref is not None:
            body["input_ref"] = self.input_ref
        else:
            body["input"] = self.input
        properties: dict[str | bytes, Any] = {
            "job_type": self.job_type.value,
            "attempt": self.attempt,
        }
        if self.traceparent:
            properties["traceparent"] = self.traceparent
        if self.priority is not Priority.NORMAL:
            properties["priority"] = self.priority.value
        return ServiceBusMessage(
            json.dumps(body, separators=(",", ":")),
            message_id=self.message_id or self.job_id,
            content_type=CONTENT_TYPE,
            subject=self.job_type.value,
            application_properties=properties,
        )

    @classmethod
    def of_job(cls, job: Job) -> JobMessage:
        """The first message of a job, from its row (message id = job id)."""
        return cls(
            job_id=job.id,
            job_type=job.type,
            attempt=1,
            input=job.input,
            input_ref=job.input_ref,
            submitted_at=job.created_at,
            priority=job.priority,
        )

    def next_copy(self, attempt: int, label: str) -> JobMessage:
        """The message for a later attempt of the same job (retry, re-drive, replay): the same
        input and trace, and a message id of its own so duplicate detection lets it through."""
        return replace(self, attempt=attempt, message_id=copy_message_id(self.job_id, label))

    @classmethod
    def from_body(cls, body: bytes | str) -> JobMessage:
        """Parse a received body; a body that cannot be parsed is a permanent failure."""
        try:
            data = json.loads(body)
            job_type = JobType(data["type"])
            job_id = data["job_id"]
            attempt = int(data.get("attempt", 1))
            submitted_at = datetime.fromisoformat(data["submitted_at"])
            priority = Priority(data.get("priority", Priority.NORMAL))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                f"message body is not a Conveyor job message: {exc}", code="bad_message"
            ) from exc
        if not isinstance(job_id, str):
            raise PermanentError("message job_id is not a string", code="bad_message")
        return cls(
            job_id=job_id,
            job_type=job_type,
            attempt=attempt,
            input=data.get("input"),
            input_ref=data.get("input_ref"),
            submitted_at=submitted_at,
            priority=priority,
        )


def traceparent_of(message: ServiceBusReceivedMessage) -> str | None:
    """The W3C traceparent a job message carries in its application properties."""
    for key, value in (message.application_properties or {}).items():
        name = key.decode() if isinstance(key, bytes) else key
        if name == telemetry.TRACEPARENT:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def body_bytes(message: ServiceBusReceivedMessage) -> bytes:
    """A received message's body as bytes, whatever form the SDK hands it in."""
    body = message.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return b"".join(bytes(part) for part in body)


def copy_message_id(job_id: str, label: str) -> str:
    """A fresh id for a later copy of a job's message (retry, replay, re-drive).

    The first send uses the bare job id, so duplicate detection drops a resent submit; a
    later copy needs its own id or the queue would drop it as a duplicate of the first.
    """
    return f"{job_id}:{label}:{uuid.uuid4().hex[:8]}"


class JobQueue:
    """Senders are opened on first use and kept: a small pool per queue (`senders_per_queue`),
    since one SDK sender carries one send at a time and a single one per queue makes
    concurrent submits wait in line for it."""

    def __init__(
        self,
        client: ServiceBusClient,
        queue_names: Mapping[JobType, str],
        high_queue_names: Mapping[JobType, str] | None = None,
        *,
        senders_per_queue: int = 4,
    ) -> None:
        self._client = client
        self.queue_names = dict(queue_names)
        # Without high queues (a test's single queue per type) high jobs share the type's.
        self.high_queue_names = dict(high_queue_names or queue_names)
        self._senders: dict[tuple[str, int], ServiceBusSender] = {}
        self._lock = asyncio.Lock()
        # Free sender slots per queue: a send takes one and gives it back. Last in, first
        # out: the slot used last (its sender open) is used again, so a quiet queue keeps
        # one link and more open only under concurrent sends.
        self._free: dict[str, asyncio.LifoQueue[int]] = {}
        for name in self.all_queue_names:
            free: asyncio.LifoQueue[int] = asyncio.LifoQueue()
            for slot in reversed(range(max(1, senders_per_queue))):
                free.put_nowait(slot)
            self._free[name] = free

    @property
    def all_queue_names(self) -> list[str]:
        """Every queue a job message may be on (each has a dead-letter queue too)."""
        names = [*self.queue_names.values(), *self.high_queue_names.values()]
        return list(dict.fromkeys(names))

    def name_for(self, job_type: JobType, priority: Priority = Priority.NORMAL) -> str:
        names = self.high_queue_names if priority is Priority.HIGH else self.queue_names
        return names[job_type]

    async def send(
        self, message: JobMessage, *, scheduled_at: datetime | None = None
    ) -> int | None:
        """Send (or schedule) one job message; a scheduled one's sequence number is returned
        (what `cancel_scheduled` takes). Any failure, whatever the SDK raises, is a
        ServiceUnavailable: the sender is dropped so the next send opens a fresh link."""
        queue = self.name_for(message.job_type, message.priority)
        with telemetry.producer_span(
            message.job_id, message.job_type.value, queue, message.attempt
        ):
            # A new job's trace continues from this send span (a child of the HTTP request's
            # span when there is one); a retry copy keeps the traceparent of the first send.
            if message.traceparent is None:
                message = replace(message, traceparent=telemetry.current_traceparent())
            sequence_number = await self._on_sender(
                queue, lambda sender: self._send_on(sender, message, queue, scheduled_at)
            )
        log.info("sent job %s to %s (attempt %d)", message.job_id, queue, message.attempt)
        return sequence_number

    async def cancel_scheduled(
        self, job_type: JobType, priority: Priority, sequence_number: int
    ) -> None:
        """Withdraw a scheduled message before it is due (ServiceUnavailable on failure)."""
        queue = self.name_for(job_type, priority)

        async def cancel(sender: ServiceBusSender) -> None:
            await sender.cancel_scheduled_messages(sequence_number)

        await self._on_sender(queue, cancel, f"cancel scheduled message {sequence_number} on")
        log.info("cancelled scheduled message %d on %s", sequence_number, queue)

    async def _on_sender(
        self,
        queue: str,
        operation: Callable[[ServiceBusSender], Awaitable[T]],
        what: str = "send to",
    ) -> T:
        """Run `operation` on a sender of the queue that no other coroutine is using (the
        SDK's senders are not coroutine-safe). The sender is looked up once its slot is
        held, so an operation never reuses one that a failed operation just closed."""
        free = self._free[queue]
        slot = await free.get()
        try:
            key = (queue, slot)
            sender = await self._sender(key)
            try:
                return await operation(sender)
            except (MessageTooLarge, asyncio.CancelledError, Exception) as exc:
                if isinstance(exc, MessageTooLarge):
                    raise
                # Cancelled (a deadline ran out) mid-call leaves the link in an unknown
                # state too: drop it, then let the cancellation go on.
                await self._drop_sender(key, sender)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise ServiceUnavailable(f"could not {what} queue {queue!r}: {exc}") from exc
        finally:
            free.put_nowait(slot)

    async def _send_on(
        self,
        sender: ServiceBusSender,
        message: JobMessage,
        queue: str,
        scheduled_at: datetime | None,
    ) -> int | None:
        sb_message = message.to_service_bus()
        try:
            if scheduled_at is None:
                await sender.send_messages(sb_message)
                return None
            numbers = await sender.schedule_messages(sb_message, scheduled_at)
        except MessageSizeExceededError as exc:
            raise MessageTooLarge(
                f"the job message is larger than queue {queue!r} accepts: {exc}"
            ) from exc
        return int(numbers[0]) if numbers else None

    async def close(self) -> None:
        async with self._lock:
            senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            await sender.close()

    async def _sender(self, key: tuple[str, int]) -> ServiceBusSender:
        """The slot's sender, opened once. Only the operation holding the slot opens it (the
        SDK's sender is not safe to open from several coroutines at once), so slots open in
        parallel and a burst is not held up behind one open after another."""
        sender = self._senders.get(key)
        if sender is not None:
            return sender
        sender = self._client.get_queue_sender(key[0])
        try:
            await sender.__aenter__()
        except Exception as exc:
            raise ServiceUnavailable(f"could not open queue {key[0]!r}: {exc}") from exc
        async with self._lock:
            self._senders[key] = sender
        return sender

    async def _drop_sender(self, key: tuple[str, int], sender: ServiceBusSender) -> None:
        """Forget a sender whose link failed, so the next operation opens a fresh one."""
        async with self._lock:
            if self._senders.get(key) is sender:
                del self._senders[key]
        try:
            await asyncio.wait_for(sender.close(), CLOSE_TIMEOUT_SECONDS)
        except Exception:  # closing a broken link may fail or hang too; nothing more to do
            log.debug("closing a failed sender raised", exc_info=True)
