"""Intake switches on Azurite and the emulator: a paused type's submits are 503 with nothing
written while other types go on, a second instance over the same tables follows the switch
within its cache period, the CLI shows and sets it, and after a resume a submit runs."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from azure.data.tables.aio import TableClient

from devtools import cli
from shared.config import Settings
from shared.services import Services, build_services, service_bus_admin_client
from tests.fixtures.app import ADMIN_HEADERS, CALLER_HEADERS
from tests.integration.helpers import api_client, wait_for_status

pytestmark = pytest.mark.integration

SUMMARIZE = {"type": "summarize", "input": {"text": "One thing. Another thing. A third."}}
EMBED = {"type": "embed", "input": {"texts": ["a"]}}


@pytest.fixture(scope="module")
def app_env(app_env: dict[str, str]) -> dict[str, str]:
    return {**app_env, "INTAKE_CACHE_SECONDS": "0.5"}


@pytest.fixture(scope="module")
async def two_instances(app_env: dict[str, str]) -> AsyncIterator[list[Services]]:
    """Two app instances (their own clients and caches) over the same tables and queues."""
    first = await build_services(Settings.from_env(app_env))
    second = await build_services(Settings.from_env(app_env))
    yield [first, second]
    await first.aclose()
    await second.aclose()


async def job_rows(env: dict[str, str]) -> int:
    async with TableClient.from_connection_string(
        env["AzureWebJobsStorage"], env["JOBS_TABLE_NAME"]
    ) as table:
        return len([e async for e in table.query_entities("RowKey eq 'job'")])


async def messages_on(services: Services, queue: str) -> int:
    admin = service_bus_admin_client(services.settings.service_bus)
    async with admin:
        props = await admin.get_queue_runtime_properties(queue)
    return int(props.active_message_count) + int(props.scheduled_message_count)


async def until(check: Any, within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.1)


async def set_intake(api: httpx.AsyncClient, job_type: str, paused: bool, reason: str = "") -> Any:
    response = await api.put(
        f"/api/admin/intake/{job_type}",
        json={"paused": paused, "reason": reason or None},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_paused_type_is_503_with_nothing_written_and_other_types_go_on(
    two_instances, app_env
):
    """No worker runs in this test: every message sent stays on its queue to be counted."""
    services = two_instances[0]
    async with api_client(services) as api:
        switch = await set_intake(api, "summarize", True, "model upgrade")
        assert switch["paused"] is True
        assert switch["changed_by"] == "ops"
        rows, messages = await job_rows(app_env), await messages_on(services, "summarize")

        refused = await api.post("/api/jobs", json=SUMMARIZE, headers={"Idempotency-Key": "k1"})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "60"
        problem = refused.json()
        assert problem["code"] == "intake_paused"
        assert "summarize jobs are paused by an operator (model upgrade)" in problem["detail"]
        assert await job_rows(app_env) == rows
        assert await messages_on(services, "summarize") == messages

        other = await api.post("/api/jobs", json=EMBED)
        assert other.status_code == 202, other.text
        assert await job_rows(app_env) == rows + 1

        shown = (await api.get("/api/admin/intake", headers=ADMIN_HEADERS)).json()
        by_type = {s["type"]: s for s in shown["switches"]}
        assert by_type["summarize"]["paused"]
        assert by_type["summarize"]["reason"] == "model upgrade"
        assert not by_type["embed"]["paused"]
        assert not by_type["sync"]["paused"]
        assert shown["propagation_seconds"] == 0.5
        one = await api.get("/api/admin/intake/summarize", headers=ADMIN_HEADERS)
        assert one.json()["paused"] is True
        assert (await api.get("/api/admin/intake/nope", headers=ADMIN_HEADERS)).status_code == 422
        assert (await api.get("/api/admin/intake")).status_code == 403  # not an admin

        audit = (await api.get("/api/admin/audit", headers=ADMIN_HEADERS)).json()["entries"]
        assert any(e["action"] == "intake.pause" and e["target"] == "summarize" for e in audit)
        await set_intake(api, "summarize", False)


async def test_a_second_instance_follows_the_switch_within_its_cache_period(two_instances):
    first, second = two_instances
    async with api_client(first) as one, api_client(second) as two:
        assert (await two.post("/api/jobs", json=SUMMARIZE)).status_code == 202  # cached: open
        await set_intake(one, "summarize", True, "drain")

        async def refused_by_second() -> bool:
            response = await two.post("/api/jobs", json=SUMMARIZE)
            return response.status_code == 503 and response.json()["code"] == "intake_paused"

        await until(refused_by_second)
        await set_intake(two, "summarize", False)  # resumed through the other instance

        async def accepted_by_first() -> bool:
            return (await one.post("/api/jobs", json=SUMMARIZE)).status_code == 202

        await until(accepted_by_first)


def test_the_cli_shows_pauses_and_resumes(app_env, monkeypatch):
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert cli.main(["intake", "pause", "sync", "--reason", "CRM down"], out=out) == 0
    assert "sync       PAUSED  CRM down" in out.getvalue()
    out = io.StringIO()
    assert cli.main(["--json", "intake"], out=out) == 0
    switches = {s["type"]: s for s in json.loads(out.getvalue())["switches"]}
    assert switches["sync"]["paused"] is True
    assert switches["sync"]["changed_by"].startswith("cli:")
    out = io.StringIO()
    assert cli.main(["intake", "resume", "sync"], out=out) == 0
    assert "sync       open" in out.getvalue()


async def test_after_a_resume_a_submit_is_accepted_and_runs(host, two_instances):
    async with (
        httpx.AsyncClient(base_url=host.base_url, timeout=10, headers=CALLER_HEADERS) as http,
        api_client(two_instances[0]) as other,
    ):
        await set_intake(http, "summarize", True)
        assert (await http.post("/api/jobs", json=SUMMARIZE)).status_code == 503
        await set_intake(other, "summarize", False)  # resumed on another instance

        async def accepted() -> httpx.Response | None:
            response = await http.post("/api/jobs", json=SUMMARIZE)
            return response if response.status_code == 202 else None

        response = await until(accepted)
        doc = await wait_for_status(http, response.json()["id"], {"succeeded", "failed"})
        assert doc["status"] == "succeeded"
