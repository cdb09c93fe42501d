"""Outcomes of shared.processing for every class of failure, on a real Table store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.errors import PermanentError, TransientError
from shared.handlers.base import JobContext
from shared.jobs import Job, JobStatus, JobType, new_job_id, utcnow
from shared.outcomes import Complete, DeadLetter, RetryLater
from shared.processing import Processor
from shared.queue import JobMessage


class Recorder:
    """A handler whose behaviour each test sets; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.behaviour: Any = {"ok": True}

    async def __call__(self, input_data: dict[str, Any], context: JobContext) -> Any:
        self.calls += 1
        if isinstance(self.behaviour, BaseException):
            raise self.behaviour
        if self.behaviour == "hang":
            await asyncio.sleep(10)
        return self.behaviour


@pytest.fixture
def handler() -> Recorder:
    return Recorder()


@pytest.fixture(params=[0.0, 5.0], ids=["running at once", "running after a delay"])
def processor(store_only_services, handler, request) -> Processor:
    """Every outcome holds whether `running` is written first or only for long jobs."""
    settings = store_only_services.settings
    return Processor(
        store_only_services.store,
        {t: handler for t in JobType},
        settings.retry,
        settings.job_timeouts,
        rng=lambda: 1.0,
        running_mark_delay=request.param,
    )


async def new_job(services, status: JobStatus = JobStatus.QUEUED, attempt: int = 0) -> Job:
    now = utcnow()
    job = Job(
        id=new_job_id(),
        type=JobType.SYNC,
        status=status,
        owner="test",
        created_at=now,
        updated_at=now,
        input={"target": "crm", "record": {}},
        attempt=attempt,
    )
    return await services.store.create(job)


def body(job: Job, attempt: int = 1) -> bytes:
    message = JobMessage(job_id=job.id, job_type=job.type, attempt=attempt, input=job.input)
    return b"".join(message.to_service_bus().body)


async def test_success_stores_the_result(store_only_services, processor, handler):
    job = await new_job(store_only_services)
    outcome, message = await processor.process(body(job))
    assert outcome == Complete("succeeded")
    assert message is not None
    row = await store_only_services.store.get(job.id)
    assert row.status is JobStatus.SUCCEEDED
    assert row.result == {"ok": True}
    assert row.attempt == 1
    assert row.started_at is not None
    assert row.finished_at is not None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TransientError("busy", code="downstream_503"), "downstream_503"),
        (ConnectionResetError("reset"), "connection_error"),
        (RuntimeError("surprise"), "unexpected_error"),
    ],
)
async def test_transient_failure_retries_with_backoff(
    store_only_services, processor, handler, error, code
):
    handler.behaviour = error
    job = await new_job(store_only_services)
    outcome, _ = await processor.process(body(job))
    assert isinstance(outcome, RetryLater)
    assert outcome.next_attempt == 2
    assert outcome.delay == store_only_services.settings.retry.base_seconds  # rng = 1.0
    row = await store_only_services.store.get(job.id)
    assert row.status is JobStatus.RETRYING
    assert row.error_code == code


async def test_delays_grow_with_each_attempt(store_only_services, processor, handler):
    handler.behaviour = TransientError("busy")
    job = await new_job(store_only_services)
    first, _ = await processor.process(body(job, attempt=1))
    second, _ = await processor.process(body(job, attempt=2))
    assert isinstance(first, RetryLater)
    assert isinstance(second, RetryLater)
    assert second.delay == 2 * first.delay


async def test_downstream_retry_after_is_honoured(store_only_services, processor, handler):
    handler.behaviour = TransientError("slow down", retry_after=42)
    outcome, _ = await processor.process(body(await new_job(store_only_services)))
    assert isinstance(outcome, RetryLater)
    assert outcome.delay == 42


async def test_timeout_is_transient(store_only_services, processor, handler):
    handler.behaviour = "hang"
    outcome, _ = await processor.process(body(await new_job(store_only_services)))
    assert isinstance(outcome, RetryLater)
    assert outcome.reason.startswith("timeout")


async def test_last_attempt_dead_letters(store_only_services, processor, handler):
    handler.behaviour = TransientError("still busy", code="downstream_503")
    job = await new_job(store_only_services)
    outcome, _ = await processor.process(body(job, attempt=3))  # RETRY_MAX_ATTEMPTS = 3
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "MaxAttemptsExceeded"
    row = await store_only_services.store.get(job.id)
    assert row.status is JobStatus.DEAD_LETTERED
    assert row.dead_letter_reason == "MaxAttemptsExceeded"


async def test_permanent_failure_dead_letters_at_once(store_only_services, processor, handler):
    handler.behaviour = PermanentError("bad record", code="downstream_400")
    job = await new_job(store_only_services)
    outcome, _ = await processor.process(body(job))
    assert outcome == DeadLetter("PermanentFailure", "downstream_400: bad record")
    row = await store_only_services.store.get(job.id)
    assert row.status is JobStatus.DEAD_LETTERED
    assert row.error_message == "bad record"


async def test_unreadable_message_dead_letters_without_a_row(processor, handler):
    outcome, message = await processor.process(b"{not json")
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "BadMessage"
    assert message is None
    assert handler.calls == 0


async def test_message_without_a_row_dead_letters(store_only_services, processor, handler):
    ghost = Job(
        id=new_job_id(),
        type=JobType.SYNC,
        status=JobStatus.QUEUED,
        owner="t",
        created_at=utcnow(),
        updated_at=utcnow(),
        input={},
    )
    outcome, _ = await processor.process(body(ghost))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "JobNotFound"
    assert handler.calls == 0


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.FAILED])
async def test_finished_jobs_are_not_run_again(store_only_services, processor, handler, status):
    job = await new_job(store_only_services, status=status, attempt=1)
    outcome, _ = await processor.process(body(job))
    assert isinstance(outcome, Complete)
    assert outcome.note == f"already {status.value}"
    assert handler.calls == 0


async def test_dead_lettered_row_with_its_message_still_queued_finishes_the_move(
    store_only_services, processor, handler
):
    job = await new_job(store_only_services, status=JobStatus.DEAD_LETTERED, attempt=1)
    outcome, _ = await processor.process(body(job, attempt=1))
    assert isinstance(outcome, DeadLetter)
    assert handler.calls == 0


async def test_stale_copy_of_an_earlier_attempt_is_skipped(store_only_services, processor, handler):
    job = await new_job(store_only_services, status=JobStatus.RETRYING, attempt=2)
    outcome, _ = await processor.process(body(job, attempt=1))
    assert isinstance(outcome, Complete)
    assert "stale" in outcome.note
    assert handler.calls == 0


async def test_redelivery_of_a_running_attempt_runs_it_again(
    store_only_services, processor, handler
):
    job = await new_job(store_only_services, status=JobStatus.RUNNING, attempt=1)
    outcome, _ = await processor.process(body(job, attempt=1))
    assert outcome == Complete("succeeded")
    assert handler.calls == 1


@pytest.mark.parametrize("delay", [0.0, 5.0])
async def test_cancel_while_running_discards_the_result(store_only_services, handler, delay):
    store = store_only_services.store
    job = await new_job(store_only_services)

    async def cancel_during_run(input_data: dict[str, Any], context: JobContext) -> Any:
        await store.update(job.id, lambda row: row.moved_to(JobStatus.CANCELLED))
        return {"late": True}

    processor = Processor(
        store,
        {t: cancel_during_run for t in JobType},
        store_only_services.settings.retry,
        store_only_services.settings.job_timeouts,
        running_mark_delay=delay,
    )
    outcome, _ = await processor.process(body(job))
    assert isinstance(outcome, Complete)
    assert "discarded" in outcome.note
    row = await store.get(job.id)
    assert row.status is JobStatus.CANCELLED
    assert row.result is None


def delayed(services, handler: Any, delay: float) -> Processor:
    return Processor(
        services.store,
        {t: handler for t in JobType},
        services.settings.retry,
        services.settings.job_timeouts,
        running_mark_delay=delay,
    )


async def test_a_job_still_running_after_the_delay_is_recorded_running(store_only_services):
    store = store_only_services.store
    job = await new_job(store_only_services)
    seen: list[JobStatus] = []
    release = asyncio.Event()

    async def slow(input_data: dict[str, Any], context: JobContext) -> Any:
        await release.wait()
        return {"ok": True}

    processing = asyncio.create_task(delayed(store_only_services, slow, 0.05).process(body(job)))
    for _ in range(200):
        row = await store.get(job.id)
        seen.append(row.status)
        if row.status is JobStatus.RUNNING:
            break
        await asyncio.sleep(0.02)
    release.set()
    outcome, _ = await processing
    assert outcome == Complete("succeeded")
    assert seen[-1] is JobStatus.RUNNING
    row = await store.get(job.id)
    assert row.status is JobStatus.SUCCEEDED
    assert row.started_at is not None


async def test_a_short_job_goes_from_queued_to_succeeded_in_one_write(store_only_services):
    store = store_only_services.store
    job = await new_job(store_only_services)
    writes: list[JobStatus] = []
    update = store.update

    async def counting_update(job_id: str, change: Any, *, known: Job | None = None) -> Job:
        stored = await update(job_id, change, known=known)
        writes.append(stored.status)
        return stored

    store.update = counting_update
    try:

        async def quick(input_data: dict[str, Any], context: JobContext) -> Any:
            return {"ok": True}

        outcome, _ = await delayed(store_only_services, quick, 5.0).process(body(job))
    finally:
        del store.update
    assert outcome == Complete("succeeded")
    assert writes == [JobStatus.SUCCEEDED]
    row = await store.get(job.id)
    assert row.attempt == 1
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.started_at <= row.finished_at


async def test_a_cancel_before_the_mark_keeps_the_job_cancelled(store_only_services):
    store = store_only_services.store
    job = await new_job(store_only_services)

    async def slow(input_data: dict[str, Any], context: JobContext) -> Any:
        await store.update(job.id, lambda row: row.moved_to(JobStatus.CANCELLED))
        await asyncio.sleep(0.1)  # past the delay: the mark finds the job cancelled
        return {"late": True}

    outcome, _ = await delayed(store_only_services, slow, 0.02).process(body(job))
    assert isinstance(outcome, Complete)
    row = await store.get(job.id)
    assert row.status is JobStatus.CANCELLED
    assert row.result is None
