"""Backpressure from real queue depths: the emulator's management API, read through the
SDK's administration client, refuses submits of a type whose queue is too deep."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from shared.config import Settings
from shared.errors import NotFound
from shared.idempotency import keyed_job_id
from shared.jobs import JobStatus
from shared.services import Services, build_services
from tests.fixtures.app import CALLER_HEADERS
from tests.integration.helpers import api_client

pytestmark = pytest.mark.integration

DEPTH_LIMIT = 2
SYNC = {"type": "sync", "input": {"target": "crm", "record": {"id": "bp"}}}
SUMMARIZE = {"type": "summarize", "input": {"text": "Other queues are not held back."}}


@pytest.fixture(scope="module")
def app_env(app_env: dict[str, str]) -> dict[str, str]:
    assert "ServiceBusAdminConnection" in app_env  # the emulator serves the management API
    return {**app_env, "QUEUE_DEPTH_LIMIT": str(DEPTH_LIMIT), "QUEUE_DEPTH_CACHE_SECONDS": "0.05"}


async def queued(services: Services) -> int:
    return await services.store.count_by_status(JobStatus.QUEUED)


async def depth_once_it_shows(services: Services, queue: str, active: int) -> Any:
    """The cached depth of `queue`, polled until the refreshes in the background show it."""
    for _ in range(100):
        depth = await services.queue_depths.of_name(queue)
        if depth is not None and depth.active == active:
            return depth
        await asyncio.sleep(0.05)
    raise AssertionError(f"{queue} never showed {active} active messages: {depth}")


async def test_a_queue_over_its_depth_limit_refuses_submits_and_writes_nothing(api, services):
    # No worker drains the queues in this module: each accepted job stays on its queue.
    for _ in range(DEPTH_LIMIT + 1):
        response = await api.post("/api/jobs", json=SYNC)
        assert response.status_code == 202, response.text
    messages = await depth_once_it_shows(services, "sync", DEPTH_LIMIT + 1)
    rows = await queued(services)

    refused = await api.post("/api/jobs", json=SYNC, headers={"Idempotency-Key": "bp-1"})
    assert refused.status_code == 503
    problem = refused.json()
    assert problem["code"] == "queue_full"
    assert f"limit of {DEPTH_LIMIT}" in problem["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert await queued(services) == rows  # no row
    await asyncio.sleep(0.2)  # two cache periods: a refresh has run since
    await services.queue_depths.of_name("sync")
    await asyncio.sleep(0.1)
    assert await services.queue_depths.of_name("sync") == messages  # no message
    # Nothing of the refused submit stays: the same Idempotency-Key is free for later.
    with pytest.raises(NotFound):  # a keyed job's row is its key's claim: there is none
        await services.store.get(keyed_job_id("team-a", "bp-1"))

    other = await api.post("/api/jobs", json=SUMMARIZE)
    assert other.status_code == 202  # another type's queue is not held back

    health = (await api.get("/api/health")).json()
    assert health["queues"]["sync"]["active"] == DEPTH_LIMIT + 1
    assert set(health["queues"]["summarize"]) == {"active", "dead_letter", "scheduled"}


async def test_unreadable_depths_do_not_block_submits(app_env: dict[str, str]) -> None:
    # Nothing listens on port 1 of this machine: the management API is unreachable.
    dead = re.sub(r"sb://([^:;]+):\d+", r"sb://\1:1", app_env["ServiceBusAdminConnection"])
    env = dict(app_env, ServiceBusAdminConnection=dead)
    built = await build_services(Settings.from_env(env))
    try:
        async with api_client(built, CALLER_HEADERS) as client:
            response = await client.post("/api/jobs", json=SUMMARIZE)
            assert response.status_code == 202  # fails open: the send itself still guards
            health: Any = (await client.get("/api/health")).json()
            assert health["queues"]["summarize"] is None
    finally:
        await built.aclose()
