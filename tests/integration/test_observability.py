"""Job logs and metrics on the real paths: Azurite, the emulator, the real SDKs.

- In-process: a job submitted through the API and delivered to the worker function by a real
  receiver logs lines that carry its fields (caplog), and none carries its input.
- Through devtools/host.py with LOG_FORMAT=json: /api/metrics shows the counters moving as
  jobs are submitted and processed, and the host's log is one JSON object per line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.servicebus.aio import ServiceBusReceiver
from prometheus_client.parser import text_string_to_metric_families

from devtools.host_process import HostProcess, run_host
from devtools.host_triggers import ReceiverMessageActions
from functions.workers import deliver
from shared.jobs import JobType
from shared.logs import JOB_FIELDS
from shared.services import Services, ServicesProvider
from tests.fixtures.app import ADMIN_HEADERS, CALLER_HEADERS
from tests.integration.helpers import script, submit_sync, wait_for_status

pytestmark = pytest.mark.integration

TERMINAL = {"succeeded", "failed", "dead_lettered", "cancelled"}


def secret_text() -> str:
    marker = f"confidential{uuid.uuid4().hex}"
    return f"The {marker} plan stays private. Queues decouple producers. Cats sleep a lot."


async def deliver_job(services: Services, job_type: JobType, job_id: str) -> None:
    """Receive the job's message from the emulator and run it through the worker function,
    settled by the receiver, as devtools/host.py runs it."""

    async def ready() -> Services:
        return services

    queue = services.queue.queue_names[job_type]
    receiver: ServiceBusReceiver
    async with services.service_bus.get_queue_receiver(queue) as receiver:
        for _ in range(20):
            for message in await receiver.receive_messages(max_message_count=10, max_wait_time=1):
                if message.message_id != job_id:
                    await receiver.abandon_message(message)
                    continue
                actions = ReceiverMessageActions(receiver, asyncio.get_running_loop())
                await deliver(ServicesProvider(ready), job_type, message, actions)
                return
    raise AssertionError(f"no message for job {job_id}")


def lines_about(caplog: pytest.LogCaptureFixture, job_id: str) -> list[dict[str, Any]]:
    """The records about one job, as dicts of their attributes (the `extra` fields too)."""
    return [vars(r) for r in caplog.records if getattr(r, "job_id", None) == job_id]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        r.getMessage() + " " + json.dumps(vars(r), default=str) for r in caplog.records
    )


async def test_a_jobs_log_lines_carry_its_fields(api, services, caplog):
    caplog.set_level(logging.DEBUG, logger="shared")
    text = secret_text()
    response = await api.post(
        "/api/jobs", json={"type": "summarize", "input": {"text": text, "max_sentences": 1}}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await deliver_job(services, JobType.SUMMARIZE, job_id)
    assert (await services.store.get(job_id)).status.value == "succeeded"

    lines = lines_about(caplog, job_id)
    assert [r["outcome"] for r in lines] == ["queued", "running", "succeeded"]
    for record in lines:
        assert set(JOB_FIELDS) <= set(record)
        assert record["type"] == "summarize"
        assert record["owner"] == "team-a"
    assert [r["attempt"] for r in lines] == [0, 1, 1]
    assert lines[-1]["run_seconds"] >= 0
    assert text.split()[1] not in everything_logged(caplog)


async def test_a_dead_letter_logs_its_reason_and_not_the_input(api, services, downstream, caplog):
    caplog.set_level(logging.DEBUG, logger="shared")
    record = f"private-{uuid.uuid4().hex}"
    script(downstream, record, [{"status": 400}])
    job_id = await submit_sync(api, record)
    await deliver_job(services, JobType.SYNC, job_id)
    lines = lines_about(caplog, job_id)
    assert {k: lines[-1][k] for k in ("outcome", "reason", "error_code", "levelno")} == {
        "outcome": "dead_lettered",
        "reason": "PermanentFailure",
        "error_code": "downstream_400",
        "levelno": logging.ERROR,
    }
    assert record not in everything_logged(caplog)


# ---- through the local host ---------------------------------------------------------------


@pytest.fixture(scope="module")
def json_host(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    log_path = tmp_path_factory.mktemp("host") / "host.log"
    with run_host({**app_env, "LOG_FORMAT": "json"}, log_path) as running:
        yield running


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


async def test_metrics_move_as_jobs_are_submitted_and_processed(json_host, downstream):
    async with httpx.AsyncClient(
        base_url=json_host.base_url, timeout=10, headers=CALLER_HEADERS
    ) as http:
        first = await http.get("/api/metrics", headers=ADMIN_HEADERS)
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = samples(first.text)

        text = secret_text()
        submitted = await http.post(
            "/api/jobs", json={"type": "summarize", "input": {"text": text, "max_sentences": 1}}
        )
        assert submitted.status_code == 202
        summarize_id = submitted.json()["id"]
        record = f"private-{uuid.uuid4().hex}"
        script(downstream, record, [{"status": 400}])
        sync_id = await submit_sync(http, record)
        assert (await wait_for_status(http, summarize_id, TERMINAL))["status"] == "succeeded"
        assert (await wait_for_status(http, sync_id, TERMINAL))["status"] == "dead_lettered"
        after = samples((await http.get("/api/metrics", headers=ADMIN_HEADERS)).text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("conveyor_jobs_submitted_total", type="summarize", owner="team-a") == 1
    assert moved("conveyor_jobs_submitted_total", type="sync") == 1
    assert moved("conveyor_jobs_completed_total", type="summarize") == 1
    assert moved("conveyor_jobs_dead_lettered_total", type="sync", reason="PermanentFailure") == 1
    assert moved("conveyor_job_run_time_seconds_count", type="summarize") == 1
    assert moved("conveyor_job_latency_seconds_count", type="summarize", status="succeeded") == 1
    assert moved("conveyor_job_latency_seconds_count", type="sync", status="dead_lettered") == 1
    assert moved("conveyor_usage_tokens_total", type="summarize", owner="team-a") > 0
    # Queue depths, as the submits' backpressure checks last read them from the emulator.
    depth_samples = {
        dict(labels)["queue"] for (n, labels) in after if n == "conveyor_queue_messages"
    }
    assert {"summarize", "sync"} <= depth_samples

    async with httpx.AsyncClient(base_url=json_host.base_url, timeout=10) as anonymous:
        assert (await anonymous.get("/api/metrics")).status_code == 401
        refused = await anonymous.get("/api/metrics", headers=CALLER_HEADERS)
        assert refused.status_code == 403  # usage per owner is for operators

    log = json_host.log_path.read_text()
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(isinstance(entry, dict) for entry in entries)
    mine = [e for e in entries if e.get("job_id") == summarize_id]
    assert [e["outcome"] for e in mine] == ["queued", "running", "succeeded"]
    assert all(set(JOB_FIELDS) <= set(e) for e in mine)
    assert text.split()[1] not in log
    assert record not in log
