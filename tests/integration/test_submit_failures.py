"""Regression tests for what crashes and outages showed from outside (issue: prove it
survives): rows left `queued` with no message, Idempotency-Keys locked out, sends that fail
in ways the SDK does not wrap. Real Azurite and the emulator."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.auth.caller import Caller
from shared.errors import Conflict
from shared.jobs import Job, JobStatus, JobType, SummarizeInput, SummarizeRequest, utcnow
from shared.submission import JobService
from shared.sweeper import StuckJobSweeper
from tests.integration.test_maintenance import take_message

pytestmark = pytest.mark.integration


def request(text: str) -> SummarizeRequest:
    return SummarizeRequest(type=JobType.SUMMARIZE, input=SummarizeInput(text=text))


def service(services, *, claim_timeout: float) -> JobService:
    return JobService(
        services.store, services.queue, {}, budget_seconds=10, claim_timeout_seconds=claim_timeout
    )


async def queued_row_without_message(services, *, age: timedelta) -> Job:
    """What a submit leaves when its process dies between the row and the send."""
    now = utcnow() - age
    job = Job(
        id=str(uuid.uuid4()),
        type=JobType.SUMMARIZE,
        status=JobStatus.QUEUED,
        owner="test",
        created_at=now,
        updated_at=now,
        input={"text": "never sent.", "max_sentences": 1},
    )
    return await services.store.create(job)


async def test_maintenance_sends_a_row_left_queued_without_a_message(services, app_service_bus):
    job = await queued_row_without_message(services, age=timedelta(minutes=5))
    young = await queued_row_without_message(services, age=timedelta(seconds=1))
    sweeper = StuckJobSweeper(
        services.store,
        services.queue,
        services.settings.job_timeouts,
        services.settings.retry,
        300,
        queued_grace_seconds=60,
    )
    swept = await sweeper.sweep()
    assert job.id in swept
    assert young.id not in swept  # its submit may still be sending
    message = await take_message(app_service_bus.connection_string, "summarize", job.id)
    assert (message.attempt, message.input) == (1, job.input)
    row = await services.store.get(job.id)
    assert row.status is JobStatus.QUEUED
    assert row.updated_at > job.updated_at  # touched: not re-sent on every pass
    assert job.id not in await sweeper.sweep()


async def test_a_key_whose_first_request_died_becomes_usable_again(services):
    key = f"k-{uuid.uuid4()}"
    first = request("first try died after claiming the key")
    fingerprint_owner = "owner-a"
    # The first request claimed the key and died before writing its row.
    await services.store.claim_idempotency_key(
        fingerprint_owner, key, _fingerprint(first), str(uuid.uuid4())
    )
    patient = service(services, claim_timeout=30)
    with pytest.raises(Conflict) as busy:
        await patient.submit(first, caller=Caller(owner=fingerprint_owner), idempotency_key=key)
    assert busy.value.code == "idempotency_in_progress"
    assert busy.value.retry_after is not None

    # Past the claim timeout, the retry takes the key over and its job is queued.
    submitted = await service(services, claim_timeout=0).submit(
        first, caller=Caller(owner=fingerprint_owner), idempotency_key=key
    )
    assert submitted.created
    again = await patient.submit(first, caller=Caller(owner=fingerprint_owner), idempotency_key=key)
    assert (again.created, again.job.id) == (False, submitted.job.id)


async def test_a_key_whose_job_was_never_queued_is_taken_over(services):
    """The send failed and releasing the key failed too: the key points at a failed job."""
    key = f"k-{uuid.uuid4()}"
    job_request = request("the send failed")
    owner = "owner-b"
    dead = str(uuid.uuid4())
    await services.store.claim_idempotency_key(owner, key, _fingerprint(job_request), dead)
    now = utcnow()
    await services.store.create(
        Job(
            id=dead,
            type=JobType.SUMMARIZE,
            status=JobStatus.FAILED,
            owner=owner,
            created_at=now,
            updated_at=now,
            input=job_request.input.model_dump(mode="json"),
            error_code="enqueue_failed",
        )
    )
    submitted = await service(services, claim_timeout=30).submit(
        job_request, caller=Caller(owner=owner), idempotency_key=key
    )
    assert submitted.created
    assert submitted.job.id != dead


def _fingerprint(job_request: SummarizeRequest) -> str:
    from shared.jobs import request_fingerprint

    return request_fingerprint(job_request.type, job_request.input.model_dump(mode="json"))
