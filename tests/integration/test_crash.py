"""A worker host killed mid-job: the lock expires, another host gets the message, and the
job succeeds exactly once. Its own module, so no other host competes for the message."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

from devtools.host_process import HostProcess, run_host
from tests.fixtures.app import CALLER_HEADERS
from tests.integration.helpers import calls_for, script, submit_sync, wait_for_status

pytestmark = pytest.mark.integration


async def test_crash_mid_job_redelivers_and_succeeds_once(app_env, downstream, tmp_path: Path):
    record = f"crash-{uuid.uuid4().hex[:8]}"
    script(downstream, record, [{"status": 200, "delay": 20}])  # the first call hangs
    crashing = HostProcess(app_env, tmp_path / "crashing-host.log")
    try:
        async with httpx.AsyncClient(
            base_url=crashing.base_url, timeout=10, headers=CALLER_HEADERS
        ) as http:
            job_id = await submit_sync(http, record)
            deadline = time.monotonic() + 30
            while not calls_for(downstream, record):  # the host is inside the handler
                assert time.monotonic() < deadline, "the job never started"
                await asyncio.sleep(0.1)
            # A job still in its handler after RUNNING_MARK_DELAY_SECONDS is recorded running.
            await wait_for_status(http, job_id, {"running"}, within=10)
    finally:
        crashing.kill()

    with run_host(app_env, tmp_path / "second-host.log") as second:
        async with httpx.AsyncClient(
            base_url=second.base_url, timeout=10, headers=CALLER_HEADERS
        ) as http:
            doc = await wait_for_status(http, job_id, {"succeeded", "dead_lettered"}, within=60)
    assert doc["status"] == "succeeded"
    assert doc["attempt"] == 1  # a redelivery of the same attempt, not a retry
    calls = calls_for(downstream, record)
    assert len(calls) == 2  # the crashed call and the redelivered one
    assert {c["key"] for c in calls} == {job_id}
    _, state = downstream
    assert job_id in state.records  # one record downstream, keyed by the job id
