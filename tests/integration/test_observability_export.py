"""Job logs and metrics in Application Insights: the host exports to a local stand-in for
the ingestion endpoint with the real Azure Monitor exporter. The job fields arrive as
customDimensions of the log lines, the job metrics as customMetrics, and /api/metrics still
answers beside that exporter. (A module of its own: one host per emulator, so no other host
takes the jobs.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.host_process import HostProcess
from shared.logs import JOB_FIELDS
from tests.fixtures.app import ADMIN_HEADERS, CALLER_HEADERS
from tests.integration.helpers import wait_for_status
from tests.integration.ingestion_stub import Ingestion, monitored_host
from tests.integration.test_observability import TERMINAL, samples, secret_text, value

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def host_and_sink(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HostProcess, Ingestion]]:
    """The host exporting to a local stand-in for Application Insights' ingestion."""
    with monitored_host(app_env, tmp_path_factory.mktemp("monitored") / "host.log") as running:
        yield running


def exported(sink: Ingestion, base_type: str) -> list[dict[str, Any]]:
    return [
        e["data"]["baseData"]
        for e in list(sink.envelopes)
        if e.get("data", {}).get("baseType") == base_type
    ]


async def test_application_insights_gets_the_fields_and_the_metrics(host_and_sink):
    host, sink = host_and_sink
    async with httpx.AsyncClient(
        base_url=host.base_url, timeout=10, headers=CALLER_HEADERS
    ) as http:
        submitted = await http.post(
            "/api/jobs",
            json={"type": "summarize", "input": {"text": secret_text(), "max_sentences": 1}},
        )
        job_id = submitted.json()["id"]
        assert (await wait_for_status(http, job_id, TERMINAL))["status"] == "succeeded"
        scraped = samples((await http.get("/api/metrics", headers=ADMIN_HEADERS)).text)
    assert value(scraped, "conveyor_jobs_completed_total", type="summarize") >= 1

    deadline = time.monotonic() + 20
    while True:
        lines = [
            m for m in exported(sink, "MessageData") if m["properties"].get("job_id") == job_id
        ]
        completed = [
            point
            for metric in exported(sink, "MetricData")
            for point in metric["metrics"]
            if point["name"] == "conveyor.jobs.completed"
            and metric.get("properties", {}).get("type") == "summarize"
        ]
        if len(lines) >= 3 and completed:
            break
        assert time.monotonic() < deadline, f"exported: {len(lines)} lines, {completed}"
        await asyncio.sleep(0.2)
    succeeded = next(m for m in lines if m["properties"]["outcome"] == "succeeded")
    assert {k: succeeded["properties"][k] for k in JOB_FIELDS} == {
        "job_id": job_id,
        "type": "summarize",
        "attempt": "1",
        "owner": "team-a",
        "outcome": "succeeded",
    }
    assert float(succeeded["properties"]["run_seconds"]) >= 0
    assert sum(point["value"] for point in completed) >= 1
