"""What one successful job costs, counted on the wire: every Table request of the host (the
API and the worker) through a counting proxy in front of Azurite, every Service Bus
operation by the emulator. The goal: the job's own row at most 3 transactions before its
caller reads it (insert, one read, one final write), 3 Service Bus operations (send, receive,
complete), and each guard's bookkeeping 1 write a submit."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.operation_counts import count_jobs
from tests.fixtures.app import CALLER_HEADERS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def counts(app_env: dict[str, str], app_service_bus: Any) -> Any:
    env = {
        **app_env,
        "RATE_LIMIT_SUBMITS_PER_MINUTE": "1000",
        # Cached reads (intake switches, queue depths) are refreshed off the measured job.
        "INTAKE_CACHE_SECONDS": "60",
        "QUEUE_DEPTH_CACHE_SECONDS": "60",
    }
    with_key, without_key = await count_jobs(
        env, f"http://127.0.0.1:{app_service_bus.admin_port}", CALLER_HEADERS
    )
    return with_key, without_key


async def test_a_job_costs_three_table_transactions_before_its_caller_reads_it(counts):
    for count in counts:
        assert count.statuses_seen == ("queued", "succeeded")
        assert count.job_before_read == 3, count
        assert count.caller_read == 1, count
        assert count.other_tables == {}, count


async def test_a_job_costs_three_service_bus_operations(counts):
    for count in counts:
        assert count.service_bus == {"send": 1, "receive": 1, "complete": 1}, count


async def test_bookkeeping_is_one_write_per_guard(counts):
    with_key, without_key = counts
    assert (with_key.idempotency, with_key.rate_limit) == (1, 1)
    assert (without_key.idempotency, without_key.rate_limit) == (0, 1)
