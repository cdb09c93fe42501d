"""Per-owner submit limits on the real Table counter: through one API, and through two
separate host processes that share the limit as scaled-out instances do."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.data.tables.aio import TableClient

from devtools.host_process import HostProcess, run_host
from shared.auth.api_keys import hash_key
from shared.errors import Throttled
from shared.jobs import JobStatus, JobType
from shared.rate_limits import LEASE_SHARE, RateLimiter
from shared.services import Services
from tests.fixtures.app import CALLER_HEADERS, OTHER_OWNER_HEADERS, TEST_API_KEYS
from tests.integration.helpers import api_client

pytestmark = pytest.mark.integration

LIMIT = 10
LIMITED_KEY = "cvy_limited1_" + "l" * 43  # a key with a limit of its own: 2 a minute
SHARED_KEY = "cvy_shared01_" + "s" * 43  # an owner used only by the two-process test
BURST_KEY = "cvy_burst001_" + "u" * 43  # an owner used only by the concurrency test
EXTRA_KEYS = [
    {"id": "limited1", "owner": "team-l", "sha256": hash_key(LIMITED_KEY), "submits_per_minute": 2},
    {"id": "shared01", "owner": "team-s", "sha256": hash_key(SHARED_KEY)},
    {"id": "burst001", "owner": "team-u", "sha256": hash_key(BURST_KEY)},
]
JOB = {"type": "summarize", "input": {"text": "Limits keep one caller from flooding all."}}


@pytest.fixture(scope="module")
def app_env(app_env: dict[str, str]) -> dict[str, str]:
    return {
        **app_env,
        "RATE_LIMIT_SUBMITS_PER_MINUTE": str(LIMIT),
        "API_KEYS": json.dumps(TEST_API_KEYS + EXTRA_KEYS),
        "QUEUE_DEPTH_LIMIT": "0",  # no workers drain the queues here
    }


@pytest.fixture(scope="module")
async def client(services: Services) -> Any:
    async with api_client(services, headers=None) as http:
        yield http


async def jobs_of(services: Services, owner: str) -> int:
    queued = await services.store.list_by_status(JobStatus.QUEUED, limit=10_000)
    return sum(1 for job in queued if job.owner == owner)


async def test_the_eleventh_submit_in_a_minute_is_429_and_others_go_on(client, services):
    remaining = []
    for _ in range(LIMIT):
        response = await client.post("/api/jobs", json=JOB, headers=CALLER_HEADERS)
        assert response.status_code == 202, response.text
        assert response.headers["ratelimit-limit"] == str(LIMIT)
        remaining.append(int(response.headers["ratelimit-remaining"]))
    assert remaining == list(range(LIMIT - 1, -1, -1))
    before = await jobs_of(services, "team-a")

    over = await client.post("/api/jobs", json=JOB, headers=CALLER_HEADERS)
    assert over.status_code == 429
    problem = over.json()
    assert problem["code"] == "rate_limited"
    assert f"{LIMIT} summarize jobs per 60 s" in problem["detail"]
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert over.headers["ratelimit-remaining"] == "0"
    assert over.headers["ratelimit-limit"] == str(LIMIT)
    assert await jobs_of(services, "team-a") == before  # nothing written

    # Another owner, and the same owner's other job types, have limits of their own.
    assert (
        await client.post("/api/jobs", json=JOB, headers=OTHER_OWNER_HEADERS)
    ).status_code == 202
    embed = {"type": "embed", "input": {"texts": ["a"]}}
    assert (await client.post("/api/jobs", json=embed, headers=CALLER_HEADERS)).status_code == 202


async def test_a_key_can_carry_its_own_limit(client):
    headers = {"x-api-key": LIMITED_KEY}
    codes = [
        (await client.post("/api/jobs", json=JOB, headers=headers)).status_code for _ in range(3)
    ]
    assert codes == [202, 202, 429]


async def test_concurrent_submits_never_pass_the_limit(services):
    """Twenty at once from one owner, through two API apps (each its own counter cache)."""
    headers = {"x-api-key": BURST_KEY}
    async with api_client(services, headers) as one, api_client(services, headers) as two:
        responses = await asyncio.gather(*(c.post("/api/jobs", json=JOB) for c in [one, two] * 10))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * LIMIT + [429] * LIMIT


@pytest.fixture(scope="module")
def two_hosts(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[HostProcess]]:
    logs = tmp_path_factory.mktemp("rate-limits")
    with run_host(app_env, logs / "a.log") as first, run_host(app_env, logs / "b.log") as second:
        yield [first, second]


async def test_two_api_processes_share_one_limit(two_hosts: list[HostProcess]):
    codes: list[int] = []
    headers = {"x-api-key": SHARED_KEY}
    async with (
        httpx.AsyncClient(base_url=two_hosts[0].base_url, headers=headers, timeout=20) as a,
        httpx.AsyncClient(base_url=two_hosts[1].base_url, headers=headers, timeout=20) as b,
    ):
        for i in range(LIMIT + 2):
            response = await (a if i % 2 == 0 else b).post("/api/jobs", json=JOB)
            codes.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
        other = await b.post("/api/jobs", json=JOB, headers=OTHER_OWNER_HEADERS)
    assert codes == [202] * LIMIT + [429, 429]
    assert other.status_code == 202


# ---- leases: a block of slots per write, spent locally ---------------------------------------


@pytest.fixture
async def counted_table(app_env: dict[str, str], services: Services) -> Any:
    """The rate limit table through clients that count every request they send."""
    sent: list[str] = []
    clients = [
        TableClient.from_connection_string(
            app_env["AzureWebJobsStorage"],
            services.settings.limits.rate_limits_table,
            raw_request_hook=lambda request: sent.append(request.http_request.method),
        )
        for _ in range(2)
    ]
    yield clients, sent
    for client in clients:
        await client.close()


async def test_one_instance_leases_slots_instead_of_writing_each_submit(counted_table):
    (client, _), sent = counted_table
    limiter = RateLimiter(client)
    owner = f"lease-{uuid.uuid4()}"
    remaining = [
        (await limiter.acquire(owner, JobType.SUMMARIZE, 1000)).remaining for _ in range(200)
    ]
    assert remaining == list(range(999, 799, -1))  # exact for the one instance it is
    assert 1 <= len(sent) <= 200 // 10, sent  # a handful of writes, not 200


async def test_two_instances_leasing_under_a_high_limit_never_pass_it(counted_table):
    clients, sent = counted_table
    limiters = [RateLimiter(client) for client in clients]
    owner = f"lease-{uuid.uuid4()}"
    limit = 100

    async def submit(i: int) -> bool:
        try:
            await limiters[i % 2].acquire(owner, JobType.SUMMARIZE, limit)
        except Throttled:
            return False
        return True

    accepted = sum(await asyncio.gather(*(submit(i) for i in range(160))))
    # Never more than the limit; slots one instance leased and did not spend are lost.
    assert limit - 2 * LEASE_SHARE <= accepted <= limit
    assert len(sent) < 160 / 2, sent
