"""Starting a callback: the write that makes a job terminal also marks its callback pending,
then the first delivery message is sent.

Every status change goes through JobStore.update, so doing it there catches them all: a
worker finishing, a cancel, a dead letter, a failed submit. The pending mark is part of the
same ETag-guarded write as the status; a send that fails after it leaves the callback
pending, for the maintenance pass to send again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

from azure.data.tables.aio import TableClient

from shared.callback_state import CallbackState, CallbackStatus
from shared.callbacks.queue import CallbackMessage, CallbackQueue
from shared.errors import Conflict, ConveyorError, NotFound
from shared.jobs import Job, utcnow
from shared.payloads import PayloadStore
from shared.store import JobChange, JobStore

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5.0
# A pending callback with no delivery this long past its due time lost its message.
REDRIVE_GRACE_SECONDS = 120.0


class CallbackStore(JobStore):
    """A JobStore that starts a job's callback when the job reaches a terminal status."""

    def __init__(
        self,
        jobs: TableClient,
        payloads: PayloadStore,
        callbacks: CallbackQueue | None = None,
    ) -> None:
        super().__init__(jobs, payloads)
        self.callbacks = callbacks

    async def update(self, job_id: str, change: JobChange, *, known: Job | None = None) -> Job:
        started: list[CallbackState] = []  # what the last try of `change` began, if anything

        def with_callback(row: Job) -> Job | None:
            updated = change(row)
            started.clear()
            if (
                updated is not None
                and updated.callback_url
                and updated.status.is_terminal
                and not row.status.is_terminal
            ):
                updated = replace(updated, callback=CallbackState.pending())
                assert updated.callback is not None
                started.append(updated.callback)
            return updated

        job = await super().update(job_id, with_callback, known=known)
        if started and job.callback is not None and job.callback.token == started[0].token:
            await self.send_first(job)
        return job

    async def start_over(self, job_id: str) -> tuple[Job, bool]:
        """Deliver a finished job's callback again from its first attempt: a new round (its own
        token, so the old round's messages are ignored), e.g. after the endpoint was down for
        longer than the retries lasted. Never changes the job. Returns the job and whether the
        first delivery was queued (if not, the maintenance pass sends it)."""

        def restarted(row: Job) -> Job | None:
            if row.deleted_at is not None:
                raise NotFound(f"no job with id {job_id}")
            if not row.callback_url:
                raise Conflict(
                    f"job {job_id} was submitted without a callback_url", code="no_callback"
                )
            if not row.status.is_terminal:
                raise Conflict(
                    f"job {job_id} is {row.status.value}; its callback starts when it finishes",
                    code="job_not_finished",
                )
            if row.callback is not None and row.callback.status is CallbackStatus.PENDING:
                raise Conflict(
                    f"the callback of job {job_id} is being delivered (attempt "
                    f"{row.callback.attempts + 1}); wait for it to be delivered or given up",
                    code="callback_pending",
                )
            return replace(row, callback=CallbackState.pending())

        job = await super().update(job_id, restarted)
        return job, await self.send_first(job)

    async def redrive_pending(
        self, *, grace_seconds: float = REDRIVE_GRACE_SECONDS, limit: int = 100
    ) -> list[str]:
        """Send again the next delivery of pending callbacks whose message was lost (a send
        that failed after the terminal write); the ids of the jobs whose callback went out."""
        overdue = utcnow() - timedelta(seconds=grace_seconds)
        sent: list[str] = []
        for job in await self._pending(limit):
            state = job.callback
            assert state is not None
            due = state.next_attempt_at if state.attempts else job.finished_at
            if due is not None and due < overdue and await self.send_first(job):
                sent.append(job.id)
        return sent

    async def _pending(self, limit: int) -> list[Job]:
        return await self.query_jobs(
            "callback_status eq @status", {"status": CallbackStatus.PENDING.value}, limit=limit
        )

    async def send_first(self, job: Job) -> bool:
        """Queue the first delivery of the job's pending callback; False when that failed
        (logged; the job itself is not affected)."""
        state = job.callback
        if self.callbacks is None or state is None or state.status is not CallbackStatus.PENDING:
            return False
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await self.callbacks.send(CallbackMessage(job.id, state.token, state.attempts + 1))
        except (TimeoutError, ConveyorError) as exc:
            log.warning("job %s: could not queue its callback (%s); maintenance will", job.id, exc)
            return False
        return True
