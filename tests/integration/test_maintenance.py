"""The maintenance timer's two jobs, and the operator CLI, on Azurite + the emulator."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from azure.servicebus.aio import ServiceBusClient

from shared.jobs import Job, JobStatus, JobType, Priority, new_job_id, utcnow
from shared.queue import JobMessage, body_bytes
from tests.integration.helpers import cli

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


async def running_job(services, *, attempt: int, started_ago: timedelta) -> Job:
    now = utcnow()
    job = Job(
        id=new_job_id(),
        type=JobType.SUMMARIZE,
        status=JobStatus.RUNNING,
        owner="test",
        created_at=now - started_ago,
        updated_at=now - started_ago,
        started_at=now - started_ago,
        input={"text": "stuck.", "max_sentences": 1},
        attempt=attempt,
    )
    return await services.store.create(job)


async def take_message(connection: str, queue: str, job_id: str, *, dead_letter: bool = False):
    from azure.servicebus import ServiceBusSubQueue

    sub_queue = ServiceBusSubQueue.DEAD_LETTER if dead_letter else None
    async with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_receiver(queue, sub_queue=sub_queue) as receiver,
    ):
        for _ in range(10):
            for message in await receiver.receive_messages(max_message_count=20, max_wait_time=1):
                parsed = JobMessage.from_body(body_bytes(message))
                if parsed.job_id == job_id:
                    await receiver.complete_message(message)
                    return parsed
                await receiver.abandon_message(message)
    raise AssertionError(f"no message for {job_id} on {queue}")


async def test_sweeper_redrives_a_job_stuck_in_running(services, app_service_bus):
    job = await running_job(services, attempt=1, started_ago=timedelta(hours=1))
    fresh = await running_job(services, attempt=1, started_ago=timedelta(seconds=1))
    swept = await services.sweeper.sweep()
    assert job.id in swept
    assert fresh.id not in swept
    row = await services.store.get(job.id)
    assert row.status is JobStatus.RETRYING
    assert row.error_code == "stuck"
    message = await take_message(app_service_bus.connection_string, "summarize", job.id)
    assert message.attempt == 2
    assert message.input == job.input
    assert (await services.store.get(fresh.id)).status is JobStatus.RUNNING


async def scheduled_row(services, *, run_at_from_now: timedelta, written_ago: timedelta) -> Job:
    """A delayed job's row whose message was never sent (its submit died after the row)."""
    now = utcnow()
    job = Job(
        id=new_job_id(),
        type=JobType.SUMMARIZE,
        status=JobStatus.SCHEDULED,
        owner="test",
        created_at=now - written_ago,
        updated_at=now - written_ago,
        input={"text": "later.", "max_sentences": 1},
        priority=Priority.HIGH,
        run_at=now + run_at_from_now,
    )
    return await services.store.create(job)


async def test_sweeper_leaves_a_scheduled_job_alone_until_its_time(services, app_service_bus):
    grace = timedelta(seconds=services.settings.queued_grace_seconds)
    waiting = await scheduled_row(
        services, run_at_from_now=timedelta(minutes=5), written_ago=grace * 3
    )
    overdue = await scheduled_row(services, run_at_from_now=-grace * 2, written_ago=grace * 3)
    swept = await services.sweeper.sweep()
    assert waiting.id not in swept
    assert (await services.store.get(waiting.id)).status is JobStatus.SCHEDULED
    # Past its time and the grace, a scheduled row that never started is sent: to its queue.
    assert overdue.id in swept
    message = await take_message(app_service_bus.connection_string, "summarize-high", overdue.id)
    assert message.priority is Priority.HIGH
    assert message.attempt == 1


async def test_sweeper_fails_a_stuck_job_with_no_attempts_left(services):
    limit = services.settings.retry.max_attempts
    job = await running_job(services, attempt=limit, started_ago=timedelta(hours=1))
    await services.sweeper.sweep()
    row = await services.store.get(job.id)
    assert row.status is JobStatus.FAILED
    assert row.error_code == "stuck"


async def test_reconcile_marks_rows_for_dead_letters_the_broker_made(services, app_service_bus):
    job = await running_job(services, attempt=1, started_ago=timedelta(seconds=5))
    await services.queue.send(
        JobMessage(job_id=job.id, job_type=job.type, attempt=1, input=job.input)
    )
    async with (
        ServiceBusClient.from_connection_string(app_service_bus.connection_string) as client,
        client.get_queue_receiver("summarize") as receiver,
    ):
        abandoned = 0
        while abandoned < 5:  # MaxDeliveryCount 5: a worker that keeps crashing
            for message in await receiver.receive_messages(max_message_count=1, max_wait_time=2):
                await receiver.abandon_message(message)
                abandoned += message.message_id == job.id
    changed = await services.dead_letters.reconcile("summarize")
    assert changed >= 1
    row = await services.store.get(job.id)
    assert row.status is JobStatus.DEAD_LETTERED
    assert row.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert await services.dead_letters.reconcile("summarize") == 0  # idempotent


async def dead_lettered_job(services, reason: str) -> Job:
    """A job whose message sits in the sync DLQ, as the workers leave a permanent failure."""
    now = utcnow()
    job = await services.store.create(
        Job(
            id=new_job_id(),
            type=JobType.SYNC,
            status=JobStatus.DEAD_LETTERED,
            owner="test",
            created_at=now,
            updated_at=now,
            input={"target": "crm", "record": {"id": f"cli-{uuid.uuid4().hex[:6]}"}},
            attempt=1,
            dead_letter_reason=reason,
        )
    )
    await services.queue.send(JobMessage(job_id=job.id, job_type=job.type, input=job.input))
    async with (
        ServiceBusClient.from_connection_string(
            services.settings.service_bus.connection_string
        ) as client,
        client.get_queue_receiver("sync") as receiver,
    ):
        for _ in range(10):
            for message in await receiver.receive_messages(max_message_count=20, max_wait_time=1):
                if message.message_id == job.id:
                    await receiver.dead_letter_message(
                        message, reason=reason, error_description="downstream_400: refused"
                    )
                    return job
                await receiver.abandon_message(message)
    raise AssertionError("the job's message never arrived")


async def test_cli_lists_replays_and_audits(services, app_env):
    job = await dead_lettered_job(services, "PermanentFailure")
    listing = cli(app_env, "--json", "dlq", "list", "--queue", "sync")
    assert listing.returncode == 0, listing.stderr
    grouped = json.loads(listing.stdout)
    entries = grouped["sync"]["PermanentFailure"]
    mine = [e for e in entries if e["job_id"] == job.id]
    assert mine
    assert mine[0]["description"] == "downstream_400: refused"

    shown = cli(app_env, "dlq", "show", "sync", str(mine[0]["sequence_number"]))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(json.loads(shown.stdout)["body"])["job_id"] == job.id

    replay = cli(app_env, "dlq", "replay", "sync", "--seq", str(mine[0]["sequence_number"]))
    assert replay.returncode == 0, replay.stderr
    assert "replay on sync: 1 done" in replay.stdout
    row = await services.store.get(job.id)
    assert row.status is JobStatus.QUEUED
    assert row.attempt == 0
    message = await take_message(services.settings.service_bus.connection_string, "sync", job.id)
    assert message.attempt == 1

    entries = await services.dead_letters.audit.entries_for_day(utcnow())
    assert any(e.action == "dead_letter.replay" and e.detail["job_id"] == job.id for e in entries)


async def test_cli_purge_needs_confirmation(services, app_env):
    job = await dead_lettered_job(services, "BadMessage")
    refused = cli(app_env, "dlq", "purge", "sync", "--reason", "BadMessage")
    assert refused.returncode == 2
    assert "needs confirmation" in refused.stderr
    purged = cli(app_env, "--json", "dlq", "purge", "sync", "--reason", "BadMessage", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert len(json.loads(purged.stdout)["done"]) >= 1
    remaining = await services.dead_letters.peek("sync")
    assert job.id not in {e.job_id for e in remaining}
    row = await services.store.get(job.id)
    assert row.status is JobStatus.DEAD_LETTERED  # the row keeps the story


async def test_replay_skips_a_job_that_is_no_longer_dead_lettered(services):
    job = await dead_lettered_job(services, "PermanentFailure")
    await services.store.update(
        job.id, lambda row: replace(row, status=JobStatus.CANCELLED), known=None
    )
    entries = [e for e in await services.dead_letters.peek("sync") if e.job_id == job.id]
    from shared.dead_letter_records import Selection

    report = await services.dead_letters.replay(
        "sync", Selection(sequence_numbers=frozenset({entries[0].sequence_number})), actor="t"
    )
    assert report.done == []
    assert "cancelled" in report.skipped[entries[0].sequence_number]
    assert job.id in {e.job_id for e in await services.dead_letters.peek("sync")}  # left in place


def test_cli_unknown_queue_is_a_clear_error(app_env):
    result = cli(app_env, "dlq", "list", "--queue", "nope")
    assert result.returncode == 2
    assert "unknown queue 'nope'" in result.stderr
