"""The job lifecycle as callers see it: submit, look up, cancel.

Submit writes the status row FIRST and only then sends the message, so there is never a
message without a row; when the send fails the row is marked failed, never left queued.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from shared.jobs import (
    EmbedRequest,
    Job,
    JobStatus,
    SummarizeRequest,
    SyncRequest,
    new_job_id,
    request_fingerprint,
    utcnow,
)
from shared.queue import JobMessage, JobQueue
from shared.store import JobStore

log = logging.getLogger(__name__)

AnyJobRequest = SummarizeRequest | EmbedRequest | SyncRequest
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False when an Idempotency-Key matched an earlier submit


class JobService:
    """Submit, look up and cancel. The HTTP edge has already checked the formats of job ids
    and Idempotency-Keys (`require_job_id`, `check_idempotency_key`), before any I/O."""

    def __init__(self, store: JobStore, queue: JobQueue, sync_targets: Mapping[str, str]) -> None:
        self._store = store
        self._queue = queue
        self._sync_targets = sync_targets

    async def submit(
        self, request: AnyJobRequest, *, owner: str, idempotency_key: str | None = None
    ) -> Submitted:
        self._check_sync_target(request)
        input_data = request.input.model_dump(mode="json")
        fingerprint = request_fingerprint(request.type, input_data)
        job_id = new_job_id()

        if idempotency_key is not None:
            existing = await self._store.claim_idempotency_key(
                owner, idempotency_key, fingerprint, job_id
            )
            if existing is not None:
                return await self._replay_submit(
                    existing.job_id, existing.request_hash, fingerprint
                )

        now = utcnow()
        job = Job(
            id=job_id,
            type=request.type,
            status=JobStatus.QUEUED,
            owner=owner,
            created_at=now,
            updated_at=now,
            input=input_data,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
        )
        try:
            job = await self._store.create(job)
        except ServiceUnavailable:
            if idempotency_key is not None:
                await self._store.release_idempotency_key(owner, idempotency_key)
            raise

        try:
            await self._queue.send(
                JobMessage(job_id=job.id, job_type=job.type, input=input_data, submitted_at=now)
            )
        except ServiceUnavailable as exc:
            await self._mark_enqueue_failed(job, str(exc))
            if idempotency_key is not None:
                await self._store.release_idempotency_key(owner, idempotency_key)
            error = ServiceUnavailable(
                f"job {job.id} could not be queued and was marked failed; "
                "retry the request (the same Idempotency-Key may be reused)",
                code="enqueue_failed",
            )
            error.details["job_id"] = job.id
            raise error from exc
        log.info("job %s (%s) queued for %s", job.id, job.type.value, owner)
        return Submitted(job=job, created=True)

    async def get(self, job_id: str) -> Job:
        return await self._store.get(job_id)

    async def cancel(self, job_id: str) -> Job:
        def to_cancelled(job: Job) -> Job:
            if job.status.is_terminal:
                raise Conflict(
                    f"job {job.id} is already {job.status.value} and cannot be cancelled",
                    code="already_terminal",
                )
            return job.moved_to(JobStatus.CANCELLED, error_code="cancelled")

        job = await self._store.update(job_id, to_cancelled)
        log.info("job %s cancelled", job_id)
        return job

    def _check_sync_target(self, request: AnyJobRequest) -> None:
        if isinstance(request, SyncRequest) and request.input.target not in self._sync_targets:
            valid = ", ".join(sorted(self._sync_targets)) or "(none configured: set SYNC_TARGETS)"
            raise ValidationFailed(
                f"unknown sync target {request.input.target!r}",
                [FieldProblem("input.target", f"must be one of: {valid}")],
            )

    async def _replay_submit(self, job_id: str, stored_hash: str, fingerprint: str) -> Submitted:
        if stored_hash != fingerprint:
            raise Conflict(
                "this Idempotency-Key was already used with a different request body; "
                "use a new key for a new job",
                code="idempotency_key_reused",
            )
        try:
            job = await self._store.get(job_id)
        except NotFound as exc:
            raise Conflict(
                "a request with this Idempotency-Key is still being processed; retry shortly",
                code="idempotency_in_progress",
                retry_after=1,
            ) from exc
        return Submitted(job=job, created=False)

    async def _mark_enqueue_failed(self, job: Job, reason: str) -> None:
        try:
            await self._store.update(
                job.id,
                lambda current: current.moved_to(
                    JobStatus.FAILED, error_code="enqueue_failed", error_message=reason
                ),
            )
        except Exception:
            # The row stays 'queued' with no message; the stuck-job sweeper finds it later.
            log.exception("job %s: could not mark failed after the send failed", job.id)


def check_idempotency_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            "invalid Idempotency-Key header",
            [
                FieldProblem(
                    "Idempotency-Key",
                    f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters",
                )
            ],
        )
