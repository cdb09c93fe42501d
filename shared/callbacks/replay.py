"""Dead letters of the callbacks queue: what one says, and sending its callback again.

A callback message lands in the DLQ when no worker could settle it MaxDeliveryCount times
(Storage down, a crash mid-delivery) or when its body is not a callback message. Replaying
one sends the callback's next attempt back to the callbacks queue and writes nothing: the
job row (its status, result and callback state) stays as it is, and the delivery worker
decides from it as it does for any attempt.
"""

from __future__ import annotations

import uuid

from shared.callback_state import CallbackStatus
from shared.callbacks.queue import CallbackMessage, CallbackQueue
from shared.dead_letter_records import live_row
from shared.errors import PermanentError
from shared.store import JobStore


class CallbackReplay:
    def __init__(self, store: JobStore, queue: CallbackQueue) -> None:
        self._store = store
        self._queue = queue

    @property
    def queue_name(self) -> str:
        return self._queue.name

    async def replay(self, body: bytes) -> str | None:
        """Queue the callback's next attempt; why it was skipped, or None when it was sent.
        A send that fails raises ServiceUnavailable (the dead letter stays)."""
        try:
            message = CallbackMessage.from_body(body)
        except PermanentError as exc:
            return f"not a callback message ({exc.message}); inspect it, then purge it"
        job = await live_row(self._store, message.job_id)
        if isinstance(job, str):
            return job
        state = job.callback
        if state is None or state.token != message.token:
            return f"the callback of job {job.id} started over since; purge it"
        if state.status is not CallbackStatus.PENDING:
            return f"the callback of job {job.id} is {state.status.value}; purge it"
        # A copy label of its own, or duplicate detection would drop it as the dead letter's
        # twin (the same job, round and attempt).
        fresh = CallbackMessage(
            job.id, state.token, state.attempts + 1, copy=f"replay-{uuid.uuid4().hex[:8]}"
        )
        await self._queue.send(fresh)
        return None
