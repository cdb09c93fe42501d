"""Finds jobs that no message will move on, and drives them again.

- `running` past its timeout: normally Service Bus redelivers a message whose worker died;
  this covers the rest (a message lost to an operator's purge, a host that completed without
  recording). A re-drive is one more attempt: past the attempt limit the job is failed.
- `queued` for longer than `queued_grace_seconds`: the submit wrote the row but died (or timed
  out) before its message went out. The first message is sent again with the job id as its
  message id, so when the original does exist, Service Bus duplicate detection drops the copy
  (its window, 10 minutes, is longer than the grace); the row's `updated_at` is touched so a
  job waiting in a long backlog is not re-sent on every pass.
- `scheduled` (a delayed job) is held to the same grace, counted from its `run_at`: before
  its time a scheduled row is waiting, not stuck. After it, one that has not started is
  treated as a `queued` row that was never sent (its message is sent now).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from shared import metrics
from shared.jobs import Job, JobStatus, JobType, utcnow
from shared.logs import job_fields
from shared.queue import JobMessage, JobQueue
from shared.retry import RetryPolicy
from shared.store import JobStore

log = logging.getLogger(__name__)


class StuckJobSweeper:
    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        timeouts: Mapping[JobType, float],
        retry: RetryPolicy,
        grace_seconds: float,
        queued_grace_seconds: float = 120.0,
    ) -> None:
        self._store = store
        self._queue = queue
        self._timeouts = timeouts
        self._retry = retry
        self._grace = grace_seconds
        self._queued_grace = timedelta(seconds=queued_grace_seconds)

    def is_stuck(self, job: Job, now: datetime) -> bool:
        if job.status is not JobStatus.RUNNING or job.started_at is None:
            return False
        limit = timedelta(seconds=self._timeouts[job.type] + self._grace)
        return now - job.started_at > limit

    def is_unsent(self, job: Job, now: datetime) -> bool:
        if job.status is JobStatus.QUEUED:
            return now - job.updated_at > self._queued_grace
        if job.status is JobStatus.SCHEDULED:
            since = max(job.updated_at, job.run_at or job.updated_at)
            return now - since > self._queued_grace
        return False

    async def sweep(self, *, limit: int = 100) -> list[str]:
        """Re-drive (or fail) every stuck job found; returns their ids."""
        now = utcnow()
        swept = []
        for job in await self._store.list_by_status(JobStatus.RUNNING, limit=limit):
            if self.is_stuck(job, now):
                await self._redrive(job, now)
                swept.append(job.id)
        for job in await self._store.list_by_status(JobStatus.QUEUED, limit=limit):
            if self.is_unsent(job, now):
                await self._resend(job, now)
                swept.append(job.id)
        # Only scheduled rows already due: those still waiting could crowd them out of `limit`.
        due = now - self._queued_grace
        for job in await self._store.list_scheduled(due_before=due, limit=limit):
            if self.is_unsent(job, now):
                await self._resend(job, now)
                swept.append(job.id)
        return swept

    async def _resend(self, job: Job, now: datetime) -> None:
        """Send the job's first message again (message id = job id), then touch the row."""
        await self._queue.send(JobMessage.of_job(job))

        def touch(row: Job) -> Job | None:
            if not self.is_unsent(row, now):
                return None
            return replace(row, updated_at=utcnow())

        await self._store.update(job.id, touch, known=job)
        log.warning(
            "re-sent job %s: queued for over %s with no progress",
            job.id,
            self._queued_grace,
            extra=job_fields(job, outcome="resent"),
        )

    async def _redrive(self, job: Job, now: datetime) -> None:
        """Send the next attempt FIRST, then mark the row: a failed send leaves the job
        `running`, so the next sweep tries again; nothing is left without a message."""
        note = "no progress past its timeout; re-driven by the sweeper"

        def mark(target: JobStatus) -> Callable[[Job], Job | None]:
            def change(row: Job) -> Job | None:
                if not self.is_stuck(row, now) or row.attempt != job.attempt:
                    return None  # it moved on by itself meanwhile
                return row.moved_to(target, error_code="stuck", error_message=note)

            return change

        if self._retry.exhausted(job.attempt):
            row = await self._store.update(job.id, mark(JobStatus.FAILED))
            if row.status is JobStatus.FAILED:
                metrics.job_finished(row)
            log.warning(
                "stuck job %s failed: no attempts left",
                job.id,
                extra=job_fields(row, outcome="failed", error_code="stuck"),
            )
            return
        await self._queue.send(JobMessage.of_job(job).next_copy(job.attempt + 1, "redrive"))
        row = await self._store.update(job.id, mark(JobStatus.RETRYING))
        if row.status is JobStatus.RETRYING:
            metrics.job_retried(row)
        log.warning(
            "re-drove stuck job %s as attempt %d",
            job.id,
            job.attempt + 1,
            extra=job_fields(row, attempt=job.attempt + 1, outcome="redriven"),
        )
