"""Regression tests for what crashes and outages showed from outside (issue: prove it
survives): rows left `queued` with no message, Idempotency-Keys locked out, sends that fail
in ways the SDK does not wrap. Real Azurite and the emulator."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared.auth.caller import Caller
from shared.errors import NotFound
from shared.idempotency import keyed_job_id
from shared.jobs import Job, JobStatus, JobType, SummarizeInput, SummarizeRequest, utcnow
from shared.submission import JobService, fingerprint_of
from shared.sweeper import StuckJobSweeper
from tests.integration.test_maintenance import take_message

pytestmark = pytest.mark.integration


def request(text: str) -> SummarizeRequest:
    return SummarizeRequest(type=JobType.SUMMARIZE, input=SummarizeInput(text=text))


def service(services) -> JobService:
    return JobService(services.store, services.queue, {}, budget_seconds=10)


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


def keyed_row(owner: str, key: str, job_request: SummarizeRequest, **changes: Any) -> Job:
    now = utcnow()
    fields: dict[str, Any] = {
        "id": keyed_job_id(owner, key),
        "type": JobType.SUMMARIZE,
        "status": JobStatus.QUEUED,
        "owner": owner,
        "created_at": now,
        "updated_at": now,
        "input": job_request.input.model_dump(mode="json"),
        "idempotency_key": key,
        "request_hash": fingerprint_of(job_request),
    }
    return Job(**(fields | changes))


async def test_a_key_whose_first_request_died_before_sending_answers_with_its_job(services):
    """The first request wrote its row (which claims the key) and died before the send: a
    retry gets that job, and the maintenance pass sends it (the test above)."""
    key = f"k-{uuid.uuid4()}"
    first = request("first try died after writing its row")
    owner = "owner-a"
    orphan = await services.store.create(keyed_row(owner, key, first))
    again = await service(services).submit(first, caller=Caller(owner=owner), idempotency_key=key)
    assert (again.created, again.job.id) == (False, orphan.id)


async def test_a_key_whose_first_request_died_before_writing_is_free(services):
    key = f"k-{uuid.uuid4()}"
    first = request("first try died before its row")
    submitted = await service(services).submit(
        first, caller=Caller(owner="owner-c"), idempotency_key=key
    )
    assert submitted.created
    assert submitted.job.id == keyed_job_id("owner-c", key)


async def test_a_key_whose_job_was_never_queued_is_taken_over(services):
    """The send failed and the row was marked failed: the key starts a new job, once, however
    many retries race for it."""
    key = f"k-{uuid.uuid4()}"
    job_request = request("the send failed")
    owner = "owner-b"
    dead = await services.store.create(
        keyed_row(owner, key, job_request, status=JobStatus.FAILED, error_code="enqueue_failed")
    )
    jobs = service(services)
    results = await asyncio.gather(
        *(jobs.submit(job_request, caller=Caller(owner=owner), idempotency_key=key) for _ in "abc")
    )
    assert sorted(r.created for r in results) == [False, False, True]
    assert {r.job.id for r in results} == {keyed_job_id(owner, key, 1)}
    assert dead.id != keyed_job_id(owner, key, 1)
    assert (await services.store.get(dead.id)).status is JobStatus.FAILED


async def test_a_key_whose_job_was_deleted_starts_a_new_job(services):
    key = f"k-{uuid.uuid4()}"
    job_request = request("done and deleted")
    caller = Caller(owner="owner-d")
    done = await services.store.create(
        keyed_row("owner-d", key, job_request, status=JobStatus.SUCCEEDED)
    )
    jobs = service(services)
    await jobs.delete(done.id, caller)
    again = await jobs.submit(job_request, caller=caller, idempotency_key=key)
    assert again.created
    assert again.job.id != done.id
    with pytest.raises(NotFound):
        await jobs.get(done.id, caller)  # the deleted job stays gone
    replay = await jobs.submit(job_request, caller=caller, idempotency_key=key)
    assert (replay.created, replay.job.id) == (False, again.job.id)
