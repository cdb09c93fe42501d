"""Jobs run end to end through devtools/host.py: success, retries, DLQ, crash, duplicates,
replay. Real Azurite, the emulator, the real SDK, and a local downstream HTTP stub."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from tests.fixtures.app import ADMIN_HEADERS
from tests.integration.helpers import calls_for, script, submit_sync, wait_for_status

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "dead_lettered", "cancelled"}


async def test_summarize_job_runs_to_succeeded(http):
    text = "Queues decouple producers from consumers. " * 3 + "Cats sleep a lot."
    response = await http.post(
        "/api/jobs", json={"type": "summarize", "input": {"text": text, "max_sentences": 1}}
    )
    doc = await wait_for_status(http, response.json()["id"], TERMINAL)
    assert doc["status"] == "succeeded"
    assert doc["attempt"] == 1
    assert doc["result"]["summary"].startswith("Queues decouple")
    assert doc["finished_at"] is not None


async def test_embed_job_returns_one_vector_per_text(http):
    response = await http.post("/api/jobs", json={"type": "embed", "input": {"texts": ["a", "b"]}})
    doc = await wait_for_status(http, response.json()["id"], TERMINAL)
    assert doc["status"] == "succeeded"
    assert len(doc["result"]["vectors"]) == 2
    assert len(doc["result"]["vectors"][0]) == 384


async def test_transient_failures_are_retried_until_success(http, downstream):
    record = f"r-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 503}, {"status": 429, "retry_after": 0}])
    job_id = await submit_sync(http, record)
    doc = await wait_for_status(http, job_id, TERMINAL)
    assert doc["status"] == "succeeded"
    assert doc["attempt"] == 3
    assert [c["status"] for c in calls_for(downstream, record)] == [503, 429, 200]
    assert {c["key"] for c in calls_for(downstream, record)} == {job_id}


async def test_transient_failures_past_the_attempt_limit_are_dead_lettered(http, downstream):
    record = f"r-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 500}] * 3)
    doc = await wait_for_status(http, await submit_sync(http, record), TERMINAL)
    assert doc["status"] == "dead_lettered"
    assert doc["dead_letter_reason"] == "MaxAttemptsExceeded"
    assert doc["attempt"] == 3
    assert doc["error"]["code"] == "downstream_500"


async def test_permanent_failure_dead_letters_then_replay_succeeds(http, downstream):
    record = f"r-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 400}])
    job_id = await submit_sync(http, record)
    doc = await wait_for_status(http, job_id, TERMINAL)
    assert doc["status"] == "dead_lettered"
    assert doc["dead_letter_reason"] == "PermanentFailure"
    assert doc["error"]["code"] == "downstream_400"
    assert len(calls_for(downstream, record)) == 1  # no retries for a 4xx

    listing = (await http.get("/api/admin/dead-letters/sync", headers=ADMIN_HEADERS)).json()
    mine = [m for m in listing["messages"] if m["job_id"] == job_id]
    assert len(mine) == 1
    assert mine[0]["reason"] == "PermanentFailure"
    assert "downstream_400" in mine[0]["description"]
    sequence = mine[0]["sequence_number"]
    shown = (
        await http.get(f"/api/admin/dead-letters/sync/{sequence}", headers=ADMIN_HEADERS)
    ).json()
    assert json.loads(shown["body"])["job_id"] == job_id

    replay = await http.post(
        "/api/admin/dead-letters/sync/replay",
        json={"sequence_numbers": [mine[0]["sequence_number"]]},
        headers=ADMIN_HEADERS,
    )
    assert replay.status_code == 200
    assert replay.json()["done"] == [mine[0]["sequence_number"]]
    doc = await wait_for_status(http, job_id, {"succeeded"})
    assert doc["attempt"] == 1
    listing = (await http.get("/api/admin/dead-letters/sync", headers=ADMIN_HEADERS)).json()
    assert job_id not in {m["job_id"] for m in listing["messages"]}


async def test_duplicate_message_runs_the_work_once(http, downstream, app_env):
    record = f"r-{uuid.uuid4().hex[:8]}"
    job_id = await submit_sync(http, record)
    await wait_for_status(http, job_id, {"succeeded"})
    # The same job message again, under another message id so the queue keeps it.
    duplicate = {
        "job_id": job_id,
        "type": "sync",
        "attempt": 1,
        "submitted_at": "2026-01-01T00:00:00+00:00",
        "input": {"target": "crm", "record": {"id": record}, "operation": "upsert"},
    }
    async with (
        ServiceBusClient.from_connection_string(app_env["ServiceBusConnection"]) as client,
        client.get_queue_sender("sync") as sender,
    ):
        await sender.send_messages(
            ServiceBusMessage(json.dumps(duplicate), message_id=f"dup-{uuid.uuid4()}")
        )
        # A marker job behind the duplicate: once it finishes, the duplicate was handled.
        marker = await submit_sync(http, f"marker-{uuid.uuid4().hex[:8]}")
        await wait_for_status(http, marker, {"succeeded"})
    await asyncio.sleep(1.0)
    assert len(calls_for(downstream, record)) == 1
