"""The callbacks queue: one small message per delivery attempt of a job's callback.

Message ids are `<job id>:cb:<token>:<attempt>`, so the queue's duplicate detection drops a
second copy of the same attempt (a resend after a lost settlement). A replayed dead letter
adds `:<copy>` to get through; the body has no copy, so the attempts after it go without.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient, ServiceBusSender

from shared.errors import PermanentError, ServiceUnavailable

log = logging.getLogger(__name__)

SUBJECT = "callback"


@dataclass(frozen=True)
class CallbackMessage:
    job_id: str
    token: str  # the CallbackState round this attempt belongs to
    attempt: int = 1
    copy: str | None = None  # a replay's label: not in the body, only in the message id

    @property
    def message_id(self) -> str:
        base = f"{self.job_id}:cb:{self.token}:{self.attempt}"
        return base if self.copy is None else f"{base}:{self.copy}"

    def to_service_bus(self) -> ServiceBusMessage:
        body = {"job_id": self.job_id, "token": self.token, "attempt": self.attempt}
        return ServiceBusMessage(
            json.dumps(body, separators=(",", ":")),
            message_id=self.message_id,
            content_type="application/json",
            subject=SUBJECT,
        )

    @classmethod
    def from_body(cls, body: bytes | str) -> CallbackMessage:
        try:
            data = json.loads(body)
            message = cls(str(data["job_id"]), str(data["token"]), int(data["attempt"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                f"not a Conveyor callback message: {exc}", code="bad_message"
            ) from exc
        return message


class CallbackQueue:
    """Sends callback messages; one sender, opened once, one send at a time (the SDK's
    senders are not coroutine-safe)."""

    def __init__(self, client: ServiceBusClient, name: str) -> None:
        self._client = client
        self.name = name
        self._sender: ServiceBusSender | None = None
        self._lock = asyncio.Lock()

    async def send(self, message: CallbackMessage, *, at: datetime | None = None) -> None:
        async with self._lock:
            try:
                sender = self._sender
                if sender is None:
                    sender = self._client.get_queue_sender(self.name)
                    await sender.__aenter__()
                    self._sender = sender
                if at is None:
                    await sender.send_messages(message.to_service_bus())
                else:
                    await sender.schedule_messages(message.to_service_bus(), at)
            except (Exception, asyncio.CancelledError) as exc:
                broken, self._sender = self._sender, None
                if broken is not None:
                    await _close_quietly(broken)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise ServiceUnavailable(f"could not send to queue {self.name!r}: {exc}") from exc
        log.info("callback of job %s: attempt %d queued", message.job_id, message.attempt)

    async def close(self) -> None:
        async with self._lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            await _close_quietly(sender)


async def _close_quietly(sender: ServiceBusSender) -> None:
    try:
        await asyncio.wait_for(sender.close(), 2.0)
    except Exception:
        log.debug("closing a callback sender raised", exc_info=True)
