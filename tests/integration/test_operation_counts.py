"""What one successful job costs, counted on the wire: every Table request of the host (the
API and the worker) through a counting proxy in front of Azurite, every Service Bus
operation by the emulator. The goal: the job's own row at most 3 transactions before its
caller reads it (insert, one read, one final write), 3 Service Bus operations (send, receive,
complete), and the guards' bookkeeping (Idempotency-Key and rate limit) together at most 1
Table transaction a submit, with a key or without, with the default rate limit on. A burst
under a high limit shows the rate limit's leases: well under 1 transaction a submit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.operation_counts import count_jobs
from shared.auth.api_keys import hash_key
from tests.fixtures.app import CALLER_HEADERS, TEST_API_KEYS

pytestmark = pytest.mark.integration

BURST_KEY = "cvy_burstops_" + "o" * 43  # a caller with a high limit of its own
BURST = 64


@pytest.fixture(scope="module")
async def counts(app_env: dict[str, str], app_service_bus: Any) -> Any:
    burst_key = {"id": "burstops", "owner": "team-o", "sha256": hash_key(BURST_KEY)}
    env = {
        **app_env,
        "API_KEYS": json.dumps([*TEST_API_KEYS, {**burst_key, "submits_per_minute": 100_000}]),
        "RATE_LIMIT_SUBMITS_PER_MINUTE": "10",  # the default
        # Cached reads (intake switches, queue depths) are refreshed off the measured job.
        "INTAKE_CACHE_SECONDS": "60",
        "QUEUE_DEPTH_CACHE_SECONDS": "60",
    }
    return await count_jobs(
        env,
        f"http://127.0.0.1:{app_service_bus.admin_port}",
        CALLER_HEADERS,
        with_keys=(True, False, True, False),
        burst=BURST,
        burst_headers={"x-api-key": BURST_KEY},
    )


async def test_a_job_costs_three_table_transactions_before_its_caller_reads_it(counts):
    for count in counts.jobs:
        assert count.statuses_seen == ("queued", "succeeded")
        assert count.job_before_read == 3, count
        assert count.caller_read == 1, count
        assert count.other_tables == {}, count


async def test_a_job_costs_three_service_bus_operations(counts):
    for count in counts.jobs:
        assert count.service_bus == {"send": 1, "receive": 1, "complete": 1}, count


async def test_bookkeeping_is_at_most_one_transaction_a_submit_with_or_without_a_key(counts):
    with_key, without_key = counts.jobs[::2], counts.jobs[1::2]
    for count in with_key + without_key:
        assert count.bookkeeping <= 1, count
        assert count.other_tables == {}, count  # no guard writes anywhere else
    # The key's claim is the job's own insert; the default limit (10) leases 1 slot a write.
    assert [c.idempotency for c in with_key + without_key] == [0] * 4
    assert [c.rate_limit for c in with_key + without_key] == [1] * 4


async def test_a_burst_under_a_high_limit_leases_its_rate_limit_slots(counts):
    burst = counts.burst
    assert burst.submits == BURST
    assert burst.idempotency == 0, burst
    assert 1 <= burst.rate_limit <= BURST // 4, burst  # well under 1 a submit
