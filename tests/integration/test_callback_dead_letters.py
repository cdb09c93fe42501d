"""Dead-lettered callback deliveries through the admin routes and the CLI, on Azurite and the
emulator: a delivery no worker settles lands in the callbacks DLQ, is listed, shown,
replayed (back to the callbacks queue, the job untouched) and then delivered by the host."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus.aio import ServiceBusClient

from devtools.host_process import run_host
from shared.callback_state import CallbackStatus
from shared.jobs import Job, JobStatus, JobType, new_job_id, utcnow
from shared.maintenance import run_maintenance
from shared.services import Services
from tests.fixtures.app import ADMIN_HEADERS
from tests.integration.callback_receiver import Received, callback_env, running_receiver
from tests.integration.helpers import api_client, cli

pytestmark = pytest.mark.integration

QUEUE = "callbacks"
MAX_DELIVERY_COUNT = 5  # tests/fixtures/app.py declares every queue so


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, Received]]:
    with running_receiver() as served:
        yield served


@pytest.fixture(scope="module")
def app_env(app_env: dict[str, str]) -> dict[str, str]:
    return callback_env(app_env)


async def finished_job(services: Services, callback_url: str) -> Job:
    """A job with a callback that just succeeded: its first delivery is on the queue."""
    now = utcnow()
    job = await services.store.create(
        Job(
            id=new_job_id(),
            type=JobType.SUMMARIZE,
            status=JobStatus.RUNNING,
            owner="team-a",
            created_at=now,
            updated_at=now,
            started_at=now,
            input={"text": "Callbacks wait in line.", "max_sentences": 1},
            attempt=1,
            callback_url=callback_url,
        )
    )
    done = await services.store.update(
        job.id, lambda row: row.moved_to(JobStatus.SUCCEEDED, result={"summary": "done"})
    )
    assert done.callback is not None
    assert done.callback.status is CallbackStatus.PENDING
    return done


async def never_settled(connection: str, job_id: str) -> None:
    """Take the job's callback delivery and let it go, MaxDeliveryCount times over, as a
    worker that crashes on it each time would: Service Bus moves it to the DLQ."""
    deliveries = 0
    async with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_receiver(QUEUE, prefetch_count=0) as receiver,
    ):
        for _ in range(MAX_DELIVERY_COUNT * 4):
            for message in await receiver.receive_messages(max_message_count=10, max_wait_time=1):
                await receiver.abandon_message(message)
                if str(message.message_id).startswith(f"{job_id}:cb:"):
                    deliveries += 1
            if deliveries >= MAX_DELIVERY_COUNT:
                return
    raise AssertionError(f"the callback of {job_id} was delivered {deliveries} times")


async def dead_letter_of(services: Services, job_id: str) -> dict[str, Any]:
    async with api_client(services, ADMIN_HEADERS) as admin:
        for _ in range(50):
            listing = (await admin.get(f"/api/admin/dead-letters/{QUEUE}")).json()
            mine = [m for m in listing["messages"] if m["job_id"] == job_id]
            if mine:
                return dict(mine[0])
            await asyncio.sleep(0.1)
    raise AssertionError(f"no dead letter for the callback of {job_id}")


async def dead_lettered_callback(
    services: Services, receiver: tuple[str, Received]
) -> tuple[Job, str, dict[str, Any]]:
    url, _ = receiver
    path = f"/hooks/{uuid.uuid4().hex[:8]}"
    job = await finished_job(services, url + path)
    connection = services.settings.service_bus.connection_string
    assert connection is not None
    await never_settled(connection, job.id)
    return job, path, await dead_letter_of(services, job.id)


async def test_a_dead_lettered_callback_is_listed_replayed_and_delivered(
    services, app_env, receiver, tmp_path: Path
):
    job, path, entry = await dead_lettered_callback(services, receiver)
    assert entry["reason"] == "MaxDeliveryCountExceeded"
    assert entry["attempt"] == 1
    assert entry["message_id"].startswith(f"{job.id}:cb:")
    sequence = entry["sequence_number"]
    assert job.callback is not None

    async with api_client(services, ADMIN_HEADERS) as admin:
        summary = (await admin.get("/api/admin/dead-letters")).json()
        grouped = summary[QUEUE]["MaxDeliveryCountExceeded"]["messages"]
        assert job.id in {m["job_id"] for m in grouped}
        shown = (await admin.get(f"/api/admin/dead-letters/{QUEUE}/{sequence}")).json()
        assert json.loads(shown["body"]) == {
            "job_id": job.id,
            "token": job.callback.token,
            "attempt": 1,
        }

        # The maintenance pass reconciles job queues only: the job stays succeeded.
        report = await run_maintenance(services.dead_letters, services.sweeper)
        assert QUEUE not in report.rows_marked_dead_lettered
        before = await services.store.get(job.id)
        assert before.status is JobStatus.SUCCEEDED

        replay = await admin.post(
            f"/api/admin/dead-letters/{QUEUE}/replay", json={"sequence_numbers": [sequence]}
        )
        assert replay.status_code == 200, replay.text
        assert replay.json() == {
            "queue": QUEUE,
            "action": "replay",
            "done": [sequence],
            "skipped": {},
            "failed": {},
        }
        listing = (await admin.get(f"/api/admin/dead-letters/{QUEUE}")).json()
        assert sequence not in {m["sequence_number"] for m in listing["messages"]}

    after = await services.store.get(job.id)  # a replay writes nothing on the row
    assert (after.status, after.updated_at, after.result) == (
        before.status,
        before.updated_at,
        before.result,
    )
    assert after.callback == before.callback
    entries = await services.audit.entries_for_day(utcnow())
    assert any(e.action == "dead_letter.replay" and e.detail["job_id"] == job.id for e in entries)

    _, received = receiver
    with run_host(app_env, tmp_path / "host.log"):
        delivered = await callback_state(services, job.id, within=40.0)
    assert delivered.callback is not None
    assert delivered.callback.status is CallbackStatus.DELIVERED
    assert delivered.callback.attempts == 1
    (call,) = received.at(path)
    assert call["headers"]["conveyor-attempt"] == "1"
    assert json.loads(call["body"])["status"] == "succeeded"
    settled = await services.store.get(job.id)
    assert (settled.status, settled.result) == (JobStatus.SUCCEEDED, {"summary": "done"})


async def callback_state(services: Services, job_id: str, within: float) -> Job:
    deadline = time.monotonic() + within
    while True:
        job = await services.store.get(job_id)
        if job.callback is not None and job.callback.status is not CallbackStatus.PENDING:
            return job
        assert time.monotonic() < deadline, f"callback of {job_id} still {job.callback}"
        await asyncio.sleep(0.2)


async def test_the_cli_skips_a_delivered_callbacks_dead_letter_then_purges_it(
    services, app_env, receiver
):
    job, _, entry = await dead_lettered_callback(services, receiver)
    sequence = str(entry["sequence_number"])
    listing = cli(app_env, "--json", "dlq", "list", "--queue", QUEUE)
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)[QUEUE]["MaxDeliveryCountExceeded"]
    assert job.id in {e["job_id"] for e in listed}

    def delivered(row: Job) -> Job | None:
        assert row.callback is not None
        state = row.callback.attempted(CallbackStatus.DELIVERED, utcnow(), code=200, error=None)
        return replace(row, callback=state)

    await services.store.update(job.id, delivered)  # another copy got through meanwhile
    skipped = cli(app_env, "dlq", "replay", QUEUE, "--seq", sequence)
    assert skipped.returncode == 0, skipped.stderr
    assert f"replay on {QUEUE}: 0 done, 1 skipped" in skipped.stdout
    assert f"the callback of job {job.id} is delivered; purge it" in skipped.stdout

    purged = cli(app_env, "--json", "dlq", "purge", QUEUE, "--seq", sequence, "--yes")
    assert purged.returncode == 0, purged.stderr
    assert json.loads(purged.stdout)["done"] == [int(sequence)]
    assert job.id not in {e.job_id for e in await services.dead_letters.peek(QUEUE)}
    row = await services.store.get(job.id)
    assert row.callback is not None
    assert row.callback.status is CallbackStatus.DELIVERED
