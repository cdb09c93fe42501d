"""Tracing across the queue: the HTTP request, the send and every attempt share one trace,
exported by the real Azure Monitor exporter to a local ingestion endpoint."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.host_process import HostProcess
from tests.fixtures.app import CALLER_HEADERS
from tests.integration.helpers import script, submit_sync, wait_for_status
from tests.integration.ingestion_stub import Ingestion, monitored_host

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def traced_host(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HostProcess, Ingestion]]:
    with monitored_host(app_env, tmp_path_factory.mktemp("traced") / "host.log") as running:
        yield running


async def spans_of(ingestion: Ingestion, job_id: str, want: dict[str, int]) -> list[dict[str, Any]]:
    """The exported spans of one job's trace, once it has `want[name]` spans of each name."""
    deadline = time.monotonic() + 20
    while True:
        spans = ingestion.spans()
        mine = {
            s["operation_id"] for s in spans if s["properties"].get("conveyor.job.id") == job_id
        }
        trace = [s for s in spans if s["operation_id"] in mine]
        names = Counter(s["name"] for s in trace)
        if len(mine) == 1 and all(names[name] >= count for name, count in want.items()):
            return trace
        if time.monotonic() > deadline:
            raise AssertionError(f"spans of job {job_id}: {names}")
        await asyncio.sleep(0.2)


async def test_one_trace_from_the_request_through_every_attempt(traced_host, downstream):
    host, sink = traced_host
    record = f"r-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 503}])  # attempt 1 fails, attempt 2 succeeds
    async with httpx.AsyncClient(
        base_url=host.base_url, timeout=10, headers=CALLER_HEADERS
    ) as http:
        job_id = await submit_sync(http, record)
        doc = await wait_for_status(http, job_id, {"succeeded", "dead_lettered"})
    assert doc["status"] == "succeeded"
    assert doc["attempt"] == 2

    trace = await spans_of(sink, job_id, {"POST /api/jobs": 1, "send sync": 2, "process sync": 2})
    by_id = {s["id"]: s for s in trace}
    request = next(s for s in trace if s["name"] == "POST /api/jobs")
    sends = [s for s in trace if s["name"] == "send sync"]
    attempts = sorted(
        (s for s in trace if s["name"] == "process sync"),
        key=lambda s: int(s["properties"]["conveyor.attempt"]),
    )
    assert [s["properties"]["conveyor.attempt"] for s in attempts] == ["1", "2"]
    assert [s["properties"]["conveyor.outcome"] for s in attempts] == ["RetryLater", "Complete"]
    assert len(sends) == 2
    first_send = next(s for s in sends if s["properties"]["conveyor.attempt"] == "1")
    assert by_id[first_send["parent_id"]]["id"] == request["id"]
    # Both attempts continue the submit's trace: children of the first send.
    assert {a["parent_id"] for a in attempts} == {first_send["id"]}
    retry_send = next(s for s in sends if s["properties"]["conveyor.attempt"] == "2")
    assert retry_send["parent_id"] == attempts[0]["id"]


async def test_a_dead_letter_is_a_failed_span(traced_host, downstream):
    host, sink = traced_host
    record = f"r-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 400}])
    async with httpx.AsyncClient(
        base_url=host.base_url, timeout=10, headers=CALLER_HEADERS
    ) as http:
        job_id = await submit_sync(http, record)
        doc = await wait_for_status(http, job_id, {"succeeded", "dead_lettered"})
    assert doc["status"] == "dead_lettered"
    trace = await spans_of(sink, job_id, {"process sync": 1})
    (attempt,) = [s for s in trace if s["name"] == "process sync"]
    assert attempt["success"] is False
    assert attempt["properties"]["conveyor.outcome.reason"] == "PermanentFailure"
