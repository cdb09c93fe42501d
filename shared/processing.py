"""Processes one delivery of a job message and decides its Outcome. Knows nothing of hosts.

The row is the source of truth: a message whose job already finished is completed without
running again (idempotent consumer); the attempt number on the message tells a stale copy
from the current one; every status change goes through the store's ETag guard.

A job costs one read and one write of its row here: `running` is written only for a job
whose handler is still going after `running_mark_delay` (so an operator, the sweeper and a
caller see long jobs as running); a shorter one goes from `queued` (or `retrying`) to its
outcome in the final write, which records the start of the attempt as well.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared import metrics
from shared.errors import (
    ConveyorError,
    InvalidTransition,
    NotFound,
    PermanentError,
    TransientError,
)
from shared.handlers.base import Handler, JobContext
from shared.jobs import Job, JobStatus, JobType, utcnow
from shared.logs import job_fields
from shared.outcomes import Complete, DeadLetter, Outcome, RetryLater
from shared.queue import JobMessage
from shared.retry import RetryPolicy, backoff_delay, classify
from shared.store import JobStore

log = logging.getLogger(__name__)

# Reason codes written as the dead letter's DeadLetterReason (see docs/operations.md).
REASON_BAD_MESSAGE = "BadMessage"
REASON_JOB_NOT_FOUND = "JobNotFound"
REASON_PERMANENT = "PermanentFailure"
REASON_ATTEMPTS_EXHAUSTED = "MaxAttemptsExceeded"


class Processor:
    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[JobType, Handler],
        retry: RetryPolicy,
        timeouts: Mapping[JobType, float],
        rng: Callable[[], float] = random.random,
        *,
        running_mark_delay: float = 0.0,
    ) -> None:
        self._running_mark_delay = running_mark_delay
        self._store = store
        self._handlers = handlers
        self._retry = retry
        self._timeouts = timeouts
        self._rng = rng

    async def process(
        self, body: bytes | str, traceparent: str | None = None
    ) -> tuple[Outcome, JobMessage | None]:
        """Decide what to do with one delivery; returns the outcome and the parsed message
        (which keeps the delivery's `traceparent`, so a retry copy stays in the trace)."""
        try:
            message = replace(JobMessage.from_body(body), traceparent=traceparent)
        except PermanentError as exc:
            log.error(
                "dead-lettering an unreadable message: %s",
                exc.message,
                extra=job_fields(outcome="dead_lettered", reason=REASON_BAD_MESSAGE),
            )
            return DeadLetter(REASON_BAD_MESSAGE, exc.message), None
        return await self._process(message), message

    async def _process(self, message: JobMessage) -> Outcome:
        try:
            job = await self._store.get(message.job_id)
        except NotFound:
            return DeadLetter(REASON_JOB_NOT_FOUND, f"no status row for job {message.job_id}")

        skip = _reason_to_skip(job, message)
        if skip is not None:
            log.info(
                "job %s attempt %d: %s",
                job.id,
                message.attempt,
                skip,
                extra=job_fields(job, attempt=message.attempt, outcome="skipped"),
            )
            if job.status is JobStatus.DEAD_LETTERED and job.attempt == message.attempt:
                # The row says dead-lettered but this copy was never moved: finish the move.
                return DeadLetter(job.dead_letter_reason or REASON_PERMANENT, skip)
            return Complete(skip)

        started_at = utcnow()
        mark: _RunningMark | None = None
        if self._running_mark_delay <= 0:
            try:
                job = await self._store.update(
                    job.id, lambda row: _start(row, message.attempt, started_at), known=job
                )
            except InvalidTransition as exc:
                return Complete(f"not started: {exc.message}")
            if job.status is not JobStatus.RUNNING or job.attempt != message.attempt:
                return Complete(f"not started: job is {job.status.value}, attempt {job.attempt}")
        else:
            mark = _RunningMark(self._store, job, message.attempt, started_at)
            mark.start(self._running_mark_delay)

        try:
            result = await self._run_handler(job, message)
        except Exception as exc:
            job = await mark.settle() if mark else job
            return await self._failed(job, message, classify(exc), started_at)
        job = await mark.settle() if mark else job
        return await self._succeeded(job, message, result, started_at)

    async def _run_handler(self, job: Job, message: JobMessage) -> Any:
        handler = self._handlers.get(job.type)
        if handler is None:
            raise PermanentError(f"no handler for job type {job.type.value}", code="unknown_type")
        input_data = (
            message.input if message.input is not None else await self._store.load_input(job)
        )
        context = JobContext(job_id=job.id, job_type=job.type, attempt=message.attempt)
        log.info(
            "job %s (%s) attempt %d running",
            job.id,
            job.type.value,
            message.attempt,
            extra=job_fields(job, attempt=message.attempt, outcome="running"),
        )
        return await asyncio.wait_for(handler(input_data, context), self._timeouts[job.type])

    async def _succeeded(
        self, job: Job, message: JobMessage, result: Any, started_at: datetime
    ) -> Outcome:
        def finish(row: Job) -> Job | None:
            running = _as_running(row, message.attempt, started_at)
            if running is None:
                return None  # cancelled, or a newer attempt took over: keep what the row says
            return running.moved_to(
                JobStatus.SUCCEEDED, result=result, error_code=None, error_message=None
            )

        stored = await self._store.update(job.id, finish, known=job)
        if stored.status is JobStatus.SUCCEEDED and stored.attempt == message.attempt:
            metrics.job_finished(stored)
            log.info(
                "job %s succeeded on attempt %d",
                job.id,
                message.attempt,
                extra=job_fields(
                    stored, outcome="succeeded", run_seconds=metrics.run_seconds(stored)
                ),
            )
            return Complete("succeeded")
        return Complete(f"result discarded: job is {stored.status.value}")

    async def _failed(
        self, job: Job, message: JobMessage, error: ConveyorError, started_at: datetime
    ) -> Outcome:
        attempt = message.attempt
        if isinstance(error, TransientError) and not self._retry.exhausted(attempt):
            delay = backoff_delay(attempt, self._retry, error.retry_after, self._rng)
            outcome: Outcome = RetryLater(delay, f"{error.code}: {error.message}", attempt + 1)
            target = JobStatus.RETRYING
            log.warning(
                "job %s attempt %d failed (%s); retrying in %.1fs",
                job.id,
                attempt,
                error.code,
                delay,
                extra=job_fields(
                    job, outcome="retrying", error_code=error.code, delay_seconds=delay
                ),
            )
        else:
            if isinstance(error, TransientError):
                reason = REASON_ATTEMPTS_EXHAUSTED
                description = f"gave up after {attempt} attempts; last error {error.code}: "
            else:
                reason, description = REASON_PERMANENT, f"{error.code}: "
            outcome = DeadLetter(reason, description + error.message)
            target = JobStatus.DEAD_LETTERED
            log.error(
                "job %s attempt %d dead-lettered: %s (%s)",
                job.id,
                attempt,
                reason,
                error.code,
                extra=job_fields(
                    job, outcome="dead_lettered", reason=reason, error_code=error.code
                ),
            )

        def record(row: Job) -> Job | None:
            running = _as_running(row, attempt, started_at)
            if running is None:
                return None
            return running.moved_to(
                target,
                error_code=error.code,
                error_message=error.message,
                dead_letter_reason=outcome.reason if isinstance(outcome, DeadLetter) else None,
            )

        stored = await self._store.update(job.id, record, known=job)
        if stored.status is not target:
            return Complete(f"failure not recorded: job is {stored.status.value}")
        if target is JobStatus.RETRYING:
            metrics.job_retried(stored)
        else:
            metrics.job_finished(stored)
        return outcome


def _reason_to_skip(job: Job, message: JobMessage) -> str | None:
    if job.status.is_terminal:
        return f"already {job.status.value}"
    if message.attempt < job.attempt:
        return f"stale copy: the job is on attempt {job.attempt}"
    return None


def _start(row: Job, attempt: int, started_at: datetime) -> Job | None:
    if row.status.is_terminal or attempt < row.attempt:
        return None
    return row.moved_to(
        JobStatus.RUNNING,
        attempt=attempt,
        started_at=started_at,
        error_code=None,
        error_message=None,
    )


# A row in one of these has no `running` recorded for the attempt yet.
_WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RETRYING})


def _as_running(row: Job, attempt: int, started_at: datetime) -> Job | None:
    """The row as running `attempt`, for the write that records how the attempt ended: as it
    is when `running` was written, marked in memory when it was not (a short job). None when
    the row has moved on: cancelled, finished, or taken over by a newer attempt."""
    if row.status is JobStatus.RUNNING:
        return row if row.attempt == attempt else None
    if row.status in _WAITING and row.attempt <= attempt:
        return _start(row, attempt, started_at)
    return None


class _RunningMark:
    """Writes `running` after a delay, unless the handler finished first."""

    def __init__(self, store: JobStore, job: Job, attempt: int, started_at: datetime) -> None:
        self._store = store
        self._job = job
        self._attempt = attempt
        self._started_at = started_at
        self._task: asyncio.Task[Job] | None = None
        self._writing = False

    def start(self, delay: float) -> None:
        self._task = asyncio.create_task(self._later(delay))

    async def _later(self, delay: float) -> Job:
        await asyncio.sleep(delay)
        self._writing = True
        job = self._job
        return await self._store.update(
            job.id, lambda row: _start(row, self._attempt, self._started_at), known=job
        )

    async def settle(self) -> Job:
        """The freshest copy of the row (with its ETag) for the final write. A mark not yet
        begun is called off; one being written is waited for, so the two never race."""
        task = self._task
        if task is None:
            return self._job
        if not self._writing:
            task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            if not self._writing:
                return self._job
            raise
        except Exception:
            # The final write reloads under the ETag when the mark did land after all.
            log.warning("job %s: could not record running", self._job.id, exc_info=True)
            return self._job
