"""The job lifecycle as callers see it: submit, look up, cancel.

Submit writes the status row FIRST and only then sends the message, so there is never a
message without a row; when the send fails the row is marked failed, never left queued.
A delayed job (`run_at` / `delay_seconds`) follows the same order: its row says `scheduled`
and its message is a scheduled one, whose sequence number is kept on the row so a cancel can
withdraw it.
Before anything is written it checks the type's queue depth (backpressure) and counts the
submit against the caller's rate limit. Every lookup is scoped to the caller: another
owner's job is answered exactly as a job that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared import metrics
from shared.auth.caller import Caller
from shared.backpressure import Backpressure
from shared.callbacks.policy import CallbackPolicy
from shared.deadline import SubmitDeadline
from shared.errors import (
    Conflict,
    ConveyorError,
    FieldProblem,
    MessageTooLarge,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from shared.idempotency import MAX_GENERATIONS, keyed_job_id, keys_used_up, replayable
from shared.intake import IntakeSwitches
from shared.jobs import (
    EmbedRequest,
    Job,
    JobStatus,
    JobType,
    Priority,
    SummarizeRequest,
    SyncRequest,
    new_job_id,
    request_fingerprint,
    utcnow,
)
from shared.logs import job_fields
from shared.queue import JobMessage, JobQueue
from shared.rate_limits import RateDecision, RateLimiter
from shared.scheduling import due_time
from shared.store import JOB_EXISTS, JobStore

log = logging.getLogger(__name__)

AnyJobRequest = SummarizeRequest | EmbedRequest | SyncRequest
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = r"^[ -~]+$"  # printable ASCII: what every HTTP stack carries intact
UNDO_SECONDS = 2.0  # how long a failed submit may spend undoing what it wrote
CANCEL_MESSAGE_SECONDS = 2.0  # how long a cancel may spend withdrawing a scheduled message


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False when an Idempotency-Key matched an earlier submit
    rate: RateDecision | None = None  # what is left of the caller's window, when limited


class JobService:
    """Submit, look up and cancel. The HTTP edge has already checked the formats of job ids
    and Idempotency-Keys (`require_job_id`; the key's pattern is in the OpenAPI document),
    before any I/O.

    A submit's Storage and Service Bus calls share one deadline (`budget_seconds`,
    SUBMIT_BUDGET_SECONDS): a dependency that hangs gets the caller a 503 in bounded time,
    not a request that waits as long as the dependency does. What a failed submit wrote is
    undone (the row marked failed, which frees its Idempotency-Key) within UNDO_SECONDS more;
    what cannot be undone then is found by the maintenance pass (a `queued` row with no
    message).
    """

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        sync_targets: Mapping[str, str],
        *,
        budget_seconds: float = 4.0,
        rate_limiter: RateLimiter | None = None,
        submits_per_minute: int = 0,
        backpressure: Backpressure | None = None,
        intake: IntakeSwitches | None = None,
        callbacks: CallbackPolicy | None = None,
        max_delay_seconds: float = 7 * 86400.0,
    ) -> None:
        self._store = store
        self._queue = queue
        self._sync_targets = sync_targets
        self._budget = budget_seconds
        self._rate_limiter = rate_limiter
        self._submits_per_minute = submits_per_minute
        self._backpressure = backpressure
        self._intake = intake
        self._callbacks = callbacks or CallbackPolicy(())
        self._max_delay = max_delay_seconds

    async def submit(
        self, request: AnyJobRequest, *, caller: Caller, idempotency_key: str | None = None
    ) -> Submitted:
        self._check_sync_target(request)
        due = due_time(
            request.run_at,
            request.delay_seconds,
            now=utcnow(),
            max_delay_seconds=self._max_delay,
            both_given={"run_at", "delay_seconds"} <= request.model_fields_set,
        )
        owner = caller.owner
        input_data = request.input.model_dump(mode="json")
        fingerprint = fingerprint_of(request)
        deadline = SubmitDeadline(self._budget)
        if self._intake is not None:  # a paused type: 503 before anything is written
            await deadline.run(self._intake.check(request.type))
        await deadline.run(self._callbacks.check(request.callback_url), what="DNS")
        if self._backpressure is not None:
            await deadline.run(
                self._backpressure.check(request.type, request.priority), what="Service Bus"
            )
        rate = await self._count_against_limit(caller, request.type, deadline)
        now = utcnow()
        job = Job(
            id=new_job_id() if idempotency_key is None else keyed_job_id(owner, idempotency_key),
            type=request.type,
            status=JobStatus.QUEUED if due is None else JobStatus.SCHEDULED,
            owner=owner,
            created_at=now,
            updated_at=now,
            input=input_data,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            callback_url=request.callback_url,
            priority=request.priority,
            run_at=due,
        )
        # A write cut off by the deadline (ServiceUnavailable) may or may not have landed: if
        # it did, the row stays `queued` without a message and the maintenance pass sends it
        # (a retry with the same Idempotency-Key answers with that job meanwhile).
        if idempotency_key is None:
            job = await deadline.run(self._store.create(job))
        else:
            job, created = await deadline.run(self._create_keyed(job, idempotency_key))
            if not created:
                return Submitted(job=job, created=False, rate=rate)

        try:
            sequence_number = await deadline.run(
                self._queue.send(JobMessage.of_job(job), scheduled_at=due), what="Service Bus"
            )
        except MessageTooLarge:
            await self._undo(job, "message_too_large")
            raise
        except ServiceUnavailable as exc:
            undone = await self._undo(job, exc.message)
            detail = (
                f"job {job.id} could not be queued and was marked failed; retry the request "
                "(the same Idempotency-Key may be reused)"
                if undone
                else f"job {job.id} may not have been queued; its status is at "
                f"/api/jobs/{job.id} (retry with the same Idempotency-Key to be safe)"
            )
            error = ServiceUnavailable(detail, code="enqueue_failed")
            error.details["job_id"] = job.id
            raise error from exc
        if due is not None and sequence_number is not None:
            job = await self._record_sequence_number(job, sequence_number, deadline)
        metrics.job_submitted(job.type, owner)
        log.info(
            "job %s (%s, %s) %s for %s",
            job.id,
            job.type.value,
            job.priority.value,
            "queued" if due is None else f"scheduled at {due.isoformat()}",
            owner,
            extra=job_fields(job, outcome="queued" if due is None else "scheduled"),
        )
        return Submitted(job=job, created=True, rate=rate)

    async def get(self, job_id: str, caller: Caller) -> Job:
        """The caller's job. Unknown, deleted and other owners' jobs are all the same 404."""
        try:
            job = await self._store.get(job_id)
        except NotFound:
            raise _no_such_job(job_id) from None
        _check_visible(job, caller)
        return job

    async def cancel(self, job_id: str, caller: Caller) -> Job:
        """Stop a job that has not finished: it becomes `cancelled` and its message, when a
        worker gets it, is completed unrun. A scheduled job's message is withdrawn too; when
        that fails the job is cancelled all the same (the worker completes it unrun)."""
        seen: list[Job] = []

        def to_cancelled(job: Job) -> Job:
            seen.append(job)
            _check_visible(job, caller)
            if job.status.is_terminal:
                raise Conflict(
                    f"job {job.id} is already {job.status.value} and cannot be cancelled",
                    code="already_terminal",
                )
            return job.moved_to(JobStatus.CANCELLED, error_code="cancelled")

        try:
            job = await self._store.update(job_id, to_cancelled)
        except NotFound:
            raise _no_such_job(job_id) from None
        log.info(
            "job %s cancelled by %s",
            job_id,
            caller.owner,
            extra=job_fields(job, outcome="cancelled"),
        )
        before = seen[-1]
        if before.status is JobStatus.SCHEDULED and before.scheduled_sequence_number is not None:
            await self._withdraw_scheduled(before, before.scheduled_sequence_number)
        return job

    async def delete(self, job_id: str, caller: Caller) -> None:
        """Forget a finished job: later reads answer 404. A job still in flight must be
        cancelled first (its message is on a queue and a worker may hold it)."""
        job = await self.get(job_id, caller)
        if not job.status.is_terminal:
            raise Conflict(
                f"job {job.id} is {job.status.value}; cancel it first "
                f"(POST /api/jobs/{job.id}/cancel), then delete it",
                code="not_finished",
            )
        await self._store.delete(job)
        log.info("job %s deleted", job_id, extra=job_fields(job, outcome="deleted"))

    async def _record_sequence_number(
        self, job: Job, sequence_number: int, deadline: SubmitDeadline
    ) -> Job:
        """Keep the scheduled message's number on the row (for a cancel). The job is
        scheduled whether or not this write succeeds: without the number a cancel still
        stops it, and the worker completes its message unrun."""

        def record(row: Job) -> Job | None:
            if row.status is not JobStatus.SCHEDULED:
                return None  # already due and running, or cancelled meanwhile
            return replace(row, scheduled_sequence_number=sequence_number)

        try:
            return await deadline.run(self._store.update(job.id, record, known=job))
        except ConveyorError as exc:
            log.warning("job %s: scheduled; its sequence number not stored: %s", job.id, exc)
            return job

    async def _withdraw_scheduled(self, job: Job, sequence_number: int) -> None:
        try:
            async with asyncio.timeout(CANCEL_MESSAGE_SECONDS):
                await self._queue.cancel_scheduled(job.type, job.priority, sequence_number)
        except (TimeoutError, ConveyorError) as exc:
            log.warning("job %s: scheduled message kept (%r); completed unrun later", job.id, exc)

    async def _count_against_limit(
        self, caller: Caller, job_type: JobType, deadline: SubmitDeadline
    ) -> RateDecision | None:
        limit = caller.submits_per_minute
        if limit is None:
            limit = self._submits_per_minute
        if self._rate_limiter is None or limit <= 0:
            return None
        return await deadline.run(self._rate_limiter.acquire(caller.owner, job_type, limit))

    def _check_sync_target(self, request: AnyJobRequest) -> None:
        if isinstance(request, SyncRequest) and request.input.target not in self._sync_targets:
            valid = ", ".join(sorted(self._sync_targets)) or "(none configured: set SYNC_TARGETS)"
            raise ValidationFailed(
                f"unknown sync target {request.input.target!r}",
                [FieldProblem("input.target", f"must be one of: {valid}")],
            )

    async def _create_keyed(self, job: Job, key: str) -> tuple[Job, bool]:
        """Write a keyed job's row, which claims the key (shared/idempotency.py): (the new
        job, True), or (the earlier job of the same request, False)."""
        for generation in range(MAX_GENERATIONS):
            if generation:
                job = replace(job, id=keyed_job_id(job.owner, key, generation))
            try:
                return await self._store.create(job), True
            except Conflict as exc:
                if exc.code != JOB_EXISTS:
                    raise
            try:
                existing = await self._store.get(job.id)
            except NotFound:
                continue  # pragma: no cover - job rows are never removed, only tombstoned
            if replayable(existing, job.owner, key, job.request_hash or ""):
                return existing, False
        raise keys_used_up(key)

    async def _undo(self, job: Job, reason: str) -> bool:
        """Mark the row failed within UNDO_SECONDS, which frees its Idempotency-Key too (a
        retry starts the key's next job). False when that could not be done (the maintenance
        pass settles the row later)."""
        try:
            async with asyncio.timeout(UNDO_SECONDS):
                await self._mark_enqueue_failed(job, reason)
        except (TimeoutError, ConveyorError):
            log.warning(
                "job %s: could not undo a failed submit; maintenance will",
                job.id,
                extra=job_fields(job, outcome="enqueue_failed"),
            )
            return False
        return True

    async def _mark_enqueue_failed(self, job: Job, reason: str) -> None:
        def fail(current: Job) -> Job | None:
            if current.status not in (JobStatus.QUEUED, JobStatus.SCHEDULED):
                return None  # the message went out after all and a worker has it
            return current.moved_to(
                JobStatus.FAILED, error_code="enqueue_failed", error_message=reason
            )

        stored = await self._store.update(job.id, fail, known=job)
        if stored.status is JobStatus.FAILED:
            metrics.job_finished(stored)


def _no_such_job(job_id: str) -> NotFound:
    return NotFound(f"no job with id {job_id}")


def _check_visible(job: Job, caller: Caller) -> None:
    """Deleted jobs and other owners' jobs do not exist for the caller (admins see all)."""
    if job.deleted_at is not None or not caller.may_see(job.owner):
        raise _no_such_job(job.id)


def fingerprint_of(request: AnyJobRequest) -> str:
    """What an Idempotency-Key remembers of a request: type, input, and every option asked
    for (priority, schedule, callback); a repeat that differs in any of them is refused."""
    input_data = request.input.model_dump(mode="json")
    return request_fingerprint(request.type, input_data, _options(request))


def _options(request: AnyJobRequest) -> dict[str, Any]:
    """What a request asks besides its input, for its fingerprint (defaults left out, so a
    request without options keeps the fingerprint it had before they existed)."""
    options: dict[str, Any] = {}
    if request.priority is not Priority.NORMAL:
        options["priority"] = request.priority.value
    if isinstance(request.run_at, datetime):
        options["run_at"] = request.run_at.isoformat()
    if request.delay_seconds is not None:
        options["delay_seconds"] = request.delay_seconds
    if request.callback_url is not None:
        options["callback_url"] = request.callback_url
    return options
