"""Crashes and outages, from outside, with every part its own process: Azurite, the Service Bus
emulator and devtools/host.py, each killed, paused or restarted while traffic flows.

What must hold: every accepted job ends terminal and none is lost; nothing stays `queued` or
`running` past the maintenance grace; a sync job's side effect happens once (counted at the
downstream stub, keyed by job id); submits answer 202/200 or 503, never 500, and never hang
(a client timeout well above the submit budget would catch one); poison messages are
dead-lettered with a reason. `CONVEYOR_SOAK=1` runs the long version (more jobs and kills).
Figures are printed at the end of the run and kept in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient

from devtools.azurite import Azurite
from devtools.downstream_stub import StubState
from devtools.host_process import HostProcess
from devtools.servicebus_emulator.process import RunningEmulator, start_emulator
from shared.jobs import JobType
from shared.queue import JobMessage
from tests.fixtures.app import (
    ADMIN_HEADERS,
    CALLER_HEADERS,
    TEST_API_KEYS,
    emulator_config,
    own_storage_names,
)

pytestmark = [pytest.mark.integration, pytest.mark.long_running]

SOAK = os.environ.get("CONVEYOR_SOAK") == "1"
JOBS = 600 if SOAK else 90
KILLS = 6 if SOAK else 2
CLIENTS = 8
TERMINAL = {"succeeded", "failed", "dead_lettered", "cancelled"}
FIGURES: dict[str, Any] = {}
REPO_ROOT = Path(__file__).resolve().parents[2]


def settings(azurite: Azurite, bus: RunningEmulator, downstream_url: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "ServiceBusConnection": bus.connection_string,
        "ServiceBusAdminConnection": bus.admin_connection_string,
        "API_KEYS": json.dumps(TEST_API_KEYS),
        **own_storage_names(),
        "RATE_LIMIT_SUBMITS_PER_MINUTE": "0",
        "SYNC_TARGETS": json.dumps({"crm": downstream_url}),
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "1",
        "RETRY_MAX_ATTEMPTS": "4",
        "JOB_TIMEOUT_SECONDS": "20",
        "STUCK_GRACE_SECONDS": "2",
        "QUEUED_GRACE_SECONDS": "2",
        "SUBMIT_BUDGET_SECONDS": "3",
    }


class Host:
    """devtools/host.py that can be SIGKILLed and started again on the same settings."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: HostProcess | None = None
        self.kills = 0

    def start(self) -> str:
        self.process = HostProcess(self.env, self.log)
        return self.process.base_url

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def job_body(i: int) -> dict[str, Any]:
    if i % 2:
        return {"type": "sync", "input": {"target": "crm", "record": {"id": f"r{i}"}}}
    return {"type": "summarize", "input": {"text": f"Job {i} runs. It must not be lost."}}


async def submit_until_answered(
    base: dict[str, str], body: dict[str, Any], key: str, answers: Counter[int]
) -> str | None:
    """POST with retries across host restarts, as a careful client with a key would."""
    for _ in range(60):
        try:
            async with httpx.AsyncClient(
                base_url=base["url"], timeout=20, headers=CALLER_HEADERS
            ) as client:
                response = await client.post(
                    "/api/jobs", json=body, headers={"Idempotency-Key": key}
                )
        except httpx.TransportError:
            await asyncio.sleep(0.3)  # the host is down: try again once it is back
            continue
        answers[response.status_code] += 1
        if response.status_code in (200, 202):
            return str(response.json()["id"])
        await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 4)
    return None


async def wait_all_terminal(base: dict[str, str], ids: set[str], within: float) -> dict[str, str]:
    statuses: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with httpx.AsyncClient(
        base_url=base["url"], timeout=20, headers=CALLER_HEADERS
    ) as client:
        while loop.time() < deadline:
            await client.post("/api/admin/maintenance", headers=ADMIN_HEADERS)
            for job_id in ids:
                if statuses.get(job_id) not in TERMINAL:
                    statuses[job_id] = (await client.get(f"/api/jobs/{job_id}")).json()["status"]
            if all(s in TERMINAL for s in statuses.values()):
                break
            await asyncio.sleep(1)
    return statuses


@pytest.mark.timeout(600)
async def test_crashes_during_submit_and_work_lose_nothing(
    azurite: Azurite, app_service_bus: Any, downstream: tuple[str, StubState], tmp_path: Path
) -> None:
    url, state = downstream
    host = Host(settings(azurite, app_service_bus, url), tmp_path / "host.log")
    base = {"url": host.start()}
    answers: Counter[int] = Counter()
    accepted: dict[str, str] = {}  # key -> job id
    rng = random.Random(11)
    kill_points = sorted(rng.sample(range(10, JOBS - 10), KILLS))

    async def client(keys: list[tuple[int, str]]) -> None:
        for i, key in keys:
            job_id = await submit_until_answered(base, job_body(i), key, answers)
            if job_id is not None:
                accepted[key] = job_id

    keys = [(i, f"job-{i}-{uuid.uuid4().hex[:6]}") for i in range(JOBS)]
    tasks = [asyncio.create_task(client(keys[c::CLIENTS])) for c in range(CLIENTS)]
    try:
        for point in kill_points:
            while len(accepted) < point and not all(t.done() for t in tasks):  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # poll the clients' progress; no event to wait on
            host.kill()  # mid-submit and mid-work: no chance to settle or clean up
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            base["url"] = host.start()
        await asyncio.gather(*tasks)
        ids = set(accepted.values())
        statuses = await wait_all_terminal(base, ids, within=240)
    finally:
        host.stop()

    sync_ids = {job_id for key, job_id in accepted.items() if int(key.split("-")[1]) % 2}
    calls = Counter(call["key"] for call in state.calls if call["key"] in sync_ids)
    lost = [j for j, s in statuses.items() if s not in TERMINAL]
    FIGURES["crash"] = {
        "jobs": JOBS,
        "kills": host.kills,
        "accepted": len(ids),
        "lost": len(lost),
        "not_succeeded": sum(1 for s in statuses.values() if s != "succeeded"),
        "sync_side_effects": len([k for k in state.records if k in sync_ids]),
        "sync_jobs": len(sync_ids),
        "duplicate_deliveries_absorbed": sum(n - 1 for n in calls.values() if n > 1),
        "answers": dict(answers),
    }
    assert len(ids) == JOBS  # every request got its job in the end (same key, same job)
    assert lost == []
    assert all(s == "succeeded" for s in statuses.values()), Counter(statuses.values())
    assert 500 not in answers
    # Each sync job reached the downstream, once per job id (the stub keeps one record a key).
    assert {k for k in state.records if k in sync_ids} == sync_ids


@pytest.mark.timeout(300)
async def test_storage_paused_and_service_bus_killed_give_503_never_500(
    azurite: Azurite, downstream: tuple[str, StubState], tmp_path: Path
) -> None:
    url, _ = downstream
    with start_emulator(emulator_config()) as bus:
        env = settings(azurite, bus, url)
        host = Host(env, tmp_path / "host.log")
        base = {"url": host.start()}
        answers: Counter[int] = Counter()
        codes: Counter[str] = Counter()
        failed_ids: set[str] = set()

        async def burst(n: int) -> None:
            async with httpx.AsyncClient(
                base_url=base["url"], timeout=30, headers=CALLER_HEADERS
            ) as client:

                async def one(i: int) -> None:
                    response = await client.post("/api/jobs", json=job_body(i))
                    answers[response.status_code] += 1
                    if response.status_code == 503:
                        problem = response.json()
                        codes[problem["code"]] += 1
                        assert response.headers["retry-after"]
                        if "job_id" in problem:
                            failed_ids.add(problem["job_id"])

                await asyncio.gather(*(one(i) for i in range(n)))

        try:
            await burst(4)  # warm: clients open, queues attached
            os.kill(azurite.process.pid, signal.SIGSTOP)  # Storage hangs
            try:
                await burst(8)
            finally:
                os.kill(azurite.process.pid, signal.SIGCONT)
            paused = dict(answers)
            bus.process.kill()  # Service Bus goes away
            bus.process.wait(10)
            await burst(8)
        finally:
            host.stop()
    FIGURES["outage"] = {"answers": dict(answers), "codes": dict(codes), "while_paused": paused}
    assert set(answers) <= {202, 503}, answers
    assert answers[503] >= 8  # every submit while a dependency was gone: 503 with Retry-After
    assert 500 not in answers


@pytest.mark.timeout(180)
async def test_poison_messages_are_dead_lettered_with_a_reason(
    azurite: Azurite, app_service_bus: Any, downstream: tuple[str, StubState], tmp_path: Path
) -> None:
    host = Host(settings(azurite, app_service_bus, downstream[0]), tmp_path / "h.log")
    host.start()
    poison = [b"not json", b'{"type": "summarize"}', b'{"job_id": 5, "type": "nope"}']
    reasons: Counter[str] = Counter()
    try:
        async with ServiceBusClient.from_connection_string(app_service_bus.connection_string) as sb:
            for queue in ("summarize", "embed", "sync"):
                async with sb.get_queue_sender(queue) as sender:
                    for body in poison:
                        await sender.send_messages(ServiceBusMessage(body))
            for queue in ("summarize", "embed", "sync"):
                async with sb.get_queue_receiver(
                    queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER
                ) as receiver:
                    got: list[Any] = []
                    for _ in range(30):
                        got += await receiver.receive_messages(
                            max_message_count=10, max_wait_time=1
                        )
                        if len(got) >= len(poison):
                            break
                    for message in got:
                        reasons[str(message.dead_letter_reason)] += 1
                        await receiver.complete_message(message)
    finally:
        host.stop()
    FIGURES["poison"] = dict(reasons)
    assert reasons == {"BadMessage": 3 * len(poison)}


@pytest.mark.timeout(180)
async def test_duplicate_deliveries_run_a_sync_once(
    azurite: Azurite, app_service_bus: Any, downstream: tuple[str, StubState], tmp_path: Path
) -> None:
    """Copies of a job's message (a resend, a replay racing a redelivery) never run it twice."""
    url, state = downstream
    host = Host(settings(azurite, app_service_bus, url), tmp_path / "dup.log")
    base = {"url": host.start()}
    copies = 3
    try:
        async with httpx.AsyncClient(
            base_url=base["url"], timeout=20, headers=CALLER_HEADERS
        ) as client:
            job_input: dict[str, Any] = {"target": "crm", "record": {"id": "dup"}}
            body = {"type": "sync", "input": job_input}
            job_id = (await client.post("/api/jobs", json=body)).json()["id"]
            message = JobMessage(job_id=job_id, job_type=JobType.SYNC, input=job_input)
            async with (
                ServiceBusClient.from_connection_string(app_service_bus.connection_string) as sb,
                sb.get_queue_sender("sync") as sender,
            ):
                for n in range(copies):
                    await sender.send_messages(message.next_copy(1, f"dup{n}").to_service_bus())
            statuses = await wait_all_terminal(base, {job_id}, within=60)
            await asyncio.sleep(2)  # let every copy be delivered and settled
    finally:
        host.stop()
    runs = [c for c in state.calls if c["key"] == job_id]
    FIGURES["duplicates"] = {"copies_sent": copies + 1, "downstream_calls": len(runs)}
    assert statuses[job_id] == "succeeded"
    assert len(runs) == 1


def teardown_module() -> None:
    if FIGURES:
        print("\nreliability figures: " + json.dumps(FIGURES, sort_keys=True))
        out = REPO_ROOT / ".local"
        out.mkdir(exist_ok=True)
        (out / "reliability.json").write_text(json.dumps(FIGURES, indent=2), encoding="utf-8")
