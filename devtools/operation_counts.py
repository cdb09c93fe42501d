"""What one successful job costs in Table transactions and Service Bus operations.

A devtools/host.py process (the API and the workers) runs with its Table endpoint behind a
CountingProxy; Service Bus operations are counted by the emulator itself (GET /$operations
on its administration port). One warm-up job first (the rate limit row, cached reads), then
each measured job is submitted, left to finish (watched straight on Azurite and the
emulator, so the watching is not counted) and read once by its caller. Then, when asked, a
burst of concurrent submits (as another caller, with a high limit of its own) shows what the
guards' bookkeeping costs when a caller submits many jobs at once: rate-limit leases.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from azure.data.tables.aio import TableClient

from devtools.counting_proxy import CountingProxy, Request, counting_proxy
from devtools.host_process import HostProcess
from shared.config import Settings

JOB = {"type": "summarize", "input": {"text": "One short sentence to summarize."}}


@dataclass(frozen=True)
class JobCount:
    job_before_read: int  # the job's own row: insert, worker read, final write
    caller_read: int
    # What an Idempotency-Key added: inserts on the jobs table beyond the job's one (a keyed
    # job's row is its key's claim) and any request on a table of idempotency records.
    idempotency: int
    rate_limit: int
    other_tables: dict[str, int]
    service_bus: dict[str, int]  # by kind, over every queue
    statuses_seen: tuple[str, ...]

    @property
    def bookkeeping(self) -> int:
        return self.idempotency + self.rate_limit


@dataclass(frozen=True)
class BurstCount:
    submits: int
    keyed: int  # of them, with an Idempotency-Key
    idempotency: int  # as in JobCount, over the whole burst
    rate_limit: int

    @property
    def rate_limit_per_submit(self) -> float:
        return self.rate_limit / self.submits

    @property
    def idempotency_per_keyed_submit(self) -> float:
        return self.idempotency / max(1, self.keyed)


@dataclass(frozen=True)
class Counts:
    jobs: list[JobCount]
    burst: BurstCount | None


@dataclass(frozen=True)
class _Tables:
    jobs: str
    rate_limits: str
    idempotency: str = "idempotency"  # a table of its own, as releases before kept them in

    def inserts(self, requests: list[Request]) -> int:
        """Entity inserts on the jobs table (POST to the table itself)."""
        return sum(
            1
            for r in requests
            if r.method == "POST" and r.table.lower() == self.jobs.lower() and "(" not in r.path
        )


def _table_endpoint(connection: str, endpoint: str) -> str:
    return re.sub(r"TableEndpoint=[^;]+", f"TableEndpoint={endpoint}", connection)


async def _operations(admin_url: str) -> Counter[str]:
    async with httpx.AsyncClient(verify=False, trust_env=False) as client:
        counts = (await client.get(f"{admin_url}/$operations")).json()
    total: Counter[str] = Counter()
    for kinds in counts.values():
        total.update(kinds)
    return total


async def _until_settled(admin_url: str, before: Counter[str], within: float) -> Counter[str]:
    deadline = time.monotonic() + within
    while True:
        delta = await _operations(admin_url) - before
        if delta["complete"] + delta["dead_letter"] >= 1:
            return delta
        if time.monotonic() > deadline:
            raise AssertionError(f"the job's message was not settled: {dict(delta)}")
        await asyncio.sleep(0.1)


async def count_jobs(
    env: dict[str, str],
    admin_url: str,
    headers: dict[str, str],
    *,
    with_keys: tuple[bool, ...] = (True, False),
    within: float = 30.0,
    burst: int = 0,
    burst_headers: dict[str, str] | None = None,
) -> Counts:
    """One JobCount per measured job; `with_keys[i]` says whether job i sends an
    Idempotency-Key. `env` names the host's settings (AzureWebJobsStorage points at Azurite;
    the proxy is put in front of its Table endpoint here). With `burst`, that many submits
    follow, BURST_CONCURRENCY at a time, every other one with a key, sent with
    `burst_headers` (a caller whose limit the burst does not reach)."""
    storage = env["AzureWebJobsStorage"]
    account = re.search(r"AccountName=([^;]+)", storage)
    target = re.search(r"TableEndpoint=(https?://[^/;]+)", storage)
    assert account is not None
    assert target is not None
    settings = Settings.from_env(env)
    legacy = env.get("IDEMPOTENCY_TABLE_NAME", "idempotency")
    tables = _Tables(settings.jobs_table, settings.limits.rate_limits_table, legacy)
    async with counting_proxy(target.group(1)) as proxy:
        host_env = {**env, "AzureWebJobsStorage": _table_endpoint(storage, proxy.endpoint(
            account.group(1)))}  # fmt: skip
        host = await asyncio.to_thread(HostProcess, host_env)
        rows = TableClient.from_connection_string(storage, tables.jobs)
        try:
            async with httpx.AsyncClient(
                base_url=host.base_url, headers=headers, timeout=30, trust_env=False
            ) as http:
                await _one(http, proxy, rows, admin_url, tables, True, within)  # warm-up
                jobs = [
                    await _one(http, proxy, rows, admin_url, tables, key, within)
                    for key in with_keys
                ]
                counted = None
                if burst:
                    counted = await _burst(http, proxy, tables, burst, burst_headers or headers)
                return Counts(jobs, counted)
        finally:
            await rows.close()
            await asyncio.to_thread(host.stop)


async def _one(
    http: httpx.AsyncClient,
    proxy: CountingProxy,
    rows: TableClient,
    admin_url: str,
    tables: _Tables,
    with_key: bool,
    within: float,
) -> JobCount:
    before = await _operations(admin_url)
    proxy.requests.clear()
    extra = {"Idempotency-Key": uuid.uuid4().hex} if with_key else {}
    response = await http.post("/api/jobs", json=JOB, headers=extra)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    statuses = ["queued"]
    delta = await _until_settled(admin_url, before, within)
    entity: Any = await rows.get_entity(job_id, "job")
    statuses.append(entity["status"])
    on_jobs = len(proxy.on(tables.jobs))
    read = await http.get(f"/api/jobs/{job_id}")
    assert read.status_code == 200, read.text
    extra_inserts = max(0, tables.inserts(proxy.requests) - 1)  # the job's own insert is 1
    others = Counter(r.table.lower() for r in proxy.requests)
    caller_read = others.pop(tables.jobs.lower(), 0) - on_jobs
    idempotency = extra_inserts + others.pop(tables.idempotency.lower(), 0)
    rate_limit = others.pop(tables.rate_limits.lower(), 0)
    rest = dict(others)
    return JobCount(
        job_before_read=on_jobs - extra_inserts,
        caller_read=caller_read,
        idempotency=idempotency,
        rate_limit=rate_limit,
        other_tables=rest,
        service_bus=dict(delta),
        statuses_seen=tuple(statuses),
    )


BURST_CONCURRENCY = 8


async def _burst(
    http: httpx.AsyncClient,
    proxy: CountingProxy,
    tables: _Tables,
    submits: int,
    headers: dict[str, str],
) -> BurstCount:
    """Submits only: the jobs run on afterwards, their own transactions are not counted."""
    proxy.requests.clear()
    gate = asyncio.Semaphore(BURST_CONCURRENCY)

    async def submit(i: int) -> None:
        extra = {"Idempotency-Key": uuid.uuid4().hex} if i % 2 == 0 else {}
        async with gate:
            response = await http.post("/api/jobs", json=JOB, headers={**headers, **extra})
        assert response.status_code == 202, response.text

    await asyncio.gather(*(submit(i) for i in range(submits)))
    return BurstCount(
        submits=submits,
        keyed=(submits + 1) // 2,
        # Every submit inserts its row once; what is beyond that is the keys' doing.
        idempotency=max(0, tables.inserts(proxy.requests) - submits)
        + len(proxy.on(tables.idempotency)),
        rate_limit=len(proxy.on(tables.rate_limits)),
    )
