"""Priorities and delayed jobs end to end: devtools/host.py running every trigger the app
registers, on Azurite and the Service Bus emulator, with the downstream stub for sync jobs.

- High jobs submitted after a backlog of normal ones of the same type finish before the
  backlog does (their queue has a trigger of its own), retries included.
- A delayed job is `scheduled` until its time and never starts before its run_at; a
  cancelled one never starts (its scheduled message is withdrawn, or completed unrun).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from azure.servicebus.aio import ServiceBusClient

from shared.config import Settings
from shared.dead_letter_records import Selection
from shared.services import Services, build_services
from tests.integration.helpers import api_client, calls_for, script, wait_for_status

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "dead_lettered", "cancelled"}
BACKLOG = 40  # normal jobs, 8 at a time (host.json maxConcurrentCalls), a second each
STEP_SECONDS = 1.0


def sync_job(record_id: str, **options: Any) -> dict[str, Any]:
    return {"type": "sync", "input": {"target": "crm", "record": {"id": record_id}}, **options}


async def submit(http: httpx.AsyncClient, job: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/api/jobs", json=job)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def message_ids(connection: str, queue: str) -> set[str]:
    """Ids of every message on `queue`, scheduled ones included (a peek changes nothing)."""
    found: set[str] = set()
    async with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_queue_receiver(queue) as receiver,
    ):
        start = 0
        while True:
            batch = await receiver.peek_messages(max_message_count=100, sequence_number=start)
            if not batch:
                return found
            found |= {str(m.message_id) for m in batch}
            start = (batch[-1].sequence_number or 0) + 1


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def wait_until_past(when: datetime) -> None:
    await asyncio.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))


# ---- priorities -----------------------------------------------------------------------------


async def test_high_jobs_finish_before_a_normal_backlog_of_their_type(http, downstream):
    tag = uuid.uuid4().hex[:6]
    normal_records = [f"n-{tag}-{i}" for i in range(BACKLOG)]
    high_records = [f"h-{tag}-{i}" for i in range(3)]
    for record in normal_records + high_records[:2]:
        script(downstream, record, [{"status": 200, "delay": STEP_SECONDS}])
    # One high job fails once: its retry copy must go back to the high queue too.
    script(downstream, high_records[2], [{"status": 503, "retry_after": 0}])

    normal = await asyncio.gather(*(submit(http, sync_job(r)) for r in normal_records))
    # The backlog is there: every normal worker slot is busy and the rest wait in the queue.
    for _ in range(100):
        if any(calls_for(downstream, r) for r in normal_records):
            break
        await asyncio.sleep(0.1)
    high = [await submit(http, sync_job(r, priority="high")) for r in high_records]
    assert {doc["priority"] for doc in high} == {"high"}
    assert {doc["priority"] for doc in normal} == {"normal"}

    done = {
        doc["id"]: await wait_for_status(http, doc["id"], TERMINAL, within=120)
        for doc in [*high, *normal]
    }
    assert {doc["status"] for doc in done.values()} == {"succeeded"}
    assert done[high[2]["id"]]["attempt"] == 2
    last_normal = max(moment(done[doc["id"]]["finished_at"]) for doc in normal)
    order = sorted(done, key=lambda job_id: moment(done[job_id]["finished_at"]))
    places = [order.index(doc["id"]) + 1 for doc in high]
    print(f"\npriority: high jobs finished {places} of {len(order)} (backlog {BACKLOG})")
    for doc in high:
        assert moment(done[doc["id"]]["finished_at"]) < last_normal, done[doc["id"]]


async def test_a_high_jobs_dead_letter_is_listed_and_replayed_from_its_queue(
    http, downstream, services
):
    record = f"dl-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 400}])
    job_id = (await submit(http, sync_job(record, priority="high")))["id"]
    assert (await wait_for_status(http, job_id, TERMINAL))["status"] == "dead_lettered"

    tools = services.dead_letters
    assert "sync-high" in tools.queue_names
    listed = (await tools.summary())["sync-high"]
    (entry,) = [e for entries in listed.values() for e in entries if e.job_id == job_id]
    report = await tools.replay(
        "sync-high", Selection(sequence_numbers=frozenset({entry.sequence_number})), actor="t"
    )
    assert report.done == [entry.sequence_number]
    doc = await wait_for_status(http, job_id, {"succeeded"})
    assert doc["priority"] == "high"


# ---- delayed jobs ---------------------------------------------------------------------------


async def test_a_delayed_job_is_scheduled_until_its_time_and_starts_after_it(http, downstream):
    record = f"d-{uuid.uuid4().hex[:8]}"
    submitted = await submit(http, sync_job(record, delay_seconds=3))
    assert submitted["status"] == "scheduled"
    run_at = moment(submitted["run_at"])
    assert run_at > moment(submitted["created_at"])

    seen = []
    while True:
        doc = (await http.get(f"/api/jobs/{submitted['id']}")).json()
        seen.append(doc["status"])
        if doc["status"] in TERMINAL:
            break
        if doc["status"] == "scheduled":
            assert not calls_for(downstream, record)
        await asyncio.sleep(0.2)
    assert seen[0] == "scheduled"
    assert doc["status"] == "succeeded"
    assert moment(doc["started_at"]) >= run_at
    assert len(calls_for(downstream, record)) == 1


async def test_run_at_is_kept_in_any_time_zone(http):
    ahead = datetime.now(timezone(timedelta(hours=-5))) + timedelta(seconds=2)
    submitted = await submit(
        http,
        {"type": "summarize", "input": {"text": "Later. Not now."}, "run_at": ahead.isoformat()},
    )
    assert submitted["status"] == "scheduled"
    assert abs((moment(submitted["run_at"]) - ahead).total_seconds()) < 0.001
    doc = await wait_for_status(http, submitted["id"], TERMINAL)
    assert doc["status"] == "succeeded"
    assert moment(doc["started_at"]) >= moment(submitted["run_at"])


async def test_a_cancelled_delayed_job_never_starts(http, downstream, app_env, services):
    record = f"c-{uuid.uuid4().hex[:8]}"
    submitted = await submit(http, sync_job(record, delay_seconds=3))
    job_id = submitted["id"]
    connection = app_env["ServiceBusConnection"]
    assert job_id in await message_ids(connection, "sync")
    assert (await services.store.get(job_id)).scheduled_sequence_number is not None

    cancelled = await http.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert job_id not in await message_ids(connection, "sync")

    await wait_until_past(moment(submitted["run_at"]) + timedelta(seconds=1))
    marker = (await submit(http, sync_job(f"m-{uuid.uuid4().hex[:8]}")))["id"]
    await wait_for_status(http, marker, {"succeeded"})
    doc = (await http.get(f"/api/jobs/{job_id}")).json()
    assert doc["status"] == "cancelled"
    assert doc["started_at"] is None
    assert calls_for(downstream, record) == []


@pytest.fixture
async def broken_bus(app_env: dict[str, str]) -> Any:
    """The app on the same tables with Service Bus unreachable (a port nobody listens on)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(
        app_env,
        ServiceBusConnection=f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=k;"
        "SharedAccessKey=v;UseDevelopmentEmulator=true",
        SUBMIT_BUDGET_SECONDS="2",
    )
    built: Services = await build_services(Settings.from_env(env))
    async with api_client(built) as client:
        yield client
    await built.aclose()


async def test_a_cancel_that_cannot_withdraw_the_message_still_cancels(
    http, broken_bus, downstream
):
    record = f"b-{uuid.uuid4().hex[:8]}"
    submitted = await submit(http, sync_job(record, delay_seconds=2))
    cancelled = await broken_bus.post(f"/api/jobs/{submitted['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"

    # The scheduled message was left on the queue: at its time the worker completes it unrun.
    await wait_until_past(moment(submitted["run_at"]) + timedelta(seconds=1))
    marker = (await submit(http, sync_job(f"m-{uuid.uuid4().hex[:8]}")))["id"]
    await wait_for_status(http, marker, {"succeeded"})
    doc = (await http.get(f"/api/jobs/{submitted['id']}")).json()
    assert doc["status"] == "cancelled"
    assert doc["started_at"] is None
    assert calls_for(downstream, record) == []


async def test_a_scheduled_send_that_fails_leaves_a_failed_row(broken_bus, services):
    response = await broken_bus.post("/api/jobs", json=sync_job("x", delay_seconds=60))
    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "enqueue_failed"
    row = await services.store.get(problem["job_id"])
    assert row.status.value == "failed"
    assert row.error_code == "enqueue_failed"


# ---- what is refused ------------------------------------------------------------------------


@pytest.fixture
async def api(services: Services) -> Any:
    async with api_client(services) as client:
        yield client


def fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json().get("errors", [])}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"run_at": "2030-01-01T00:00:00Z", "delay_seconds": 5}, {"run_at", "delay_seconds"}),
        ({"run_at": None, "delay_seconds": 5}, {"run_at", "delay_seconds"}),
        ({"delay_seconds": 8 * 86400}, {"delay_seconds"}),
        ({"delay_seconds": -1}, {"delay_seconds"}),
        ({"run_at": "2020-01-01T00:00:00Z"}, {"run_at"}),
        ({"run_at": "2999-01-01T00:00:00+02:00"}, {"run_at"}),
        ({"run_at": "2030-01-01T00:00:00"}, {"run_at"}),
        ({"run_at": 1893456000}, {"run_at"}),
        ({"priority": "urgent"}, {"priority"}),
    ],
)
async def test_bad_priorities_and_schedules_are_422_naming_the_field(api, services, options, named):
    response = await api.post("/api/jobs", json=sync_job("r", **options))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert named <= fields(response), response.json()


async def test_a_run_at_a_moment_ago_runs_now(api):
    just_now = datetime.now(UTC) - timedelta(seconds=5)
    response = await api.post("/api/jobs", json=sync_job("r", run_at=just_now.isoformat()))
    assert response.status_code == 202
    assert response.json()["status"] == "queued"


async def test_the_openapi_document_describes_priority_and_schedule(api):
    schema = (await api.get("/api/openapi.json")).json()["components"]["schemas"]
    request = schema["SyncRequest"]
    assert request["not"] == {"required": ["run_at", "delay_seconds"]}
    assert schema["Priority"]["enum"] == ["normal", "high"]
    delay = next(b for b in request["properties"]["delay_seconds"]["anyOf"] if "maximum" in b)
    assert delay["maximum"] == 7 * 86400
    run_at = next(b for b in request["properties"]["run_at"]["anyOf"] if b["type"] == "string")
    assert run_at["format"] == "date-time"
    assert {"priority", "run_at"} <= set(schema["JobDocument"]["properties"])
