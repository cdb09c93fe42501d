"""What the guards in front of a submit cost: authentication, the rate limit, backpressure.

    python -m bench.submit_guards [--jobs 200] [--rounds 5]

Four variants of the API, each its own devtools/host.py process (workers disabled, so only
submits run) on one Azurite and one emulator, measured in interleaved rounds at 8 concurrent
submits over HTTP; medians of jobs/s, and each variant's ratio to the first, which has every
guard off:

  open          AUTH_MODE=off, no rate limit, no backpressure
  api key       + an API key from settings (no I/O)
  + rate limit  + the Table counter, 8 owners (one per concurrent client: a shared API)
  one owner     the same, one owner (the worst case: every submit writes one row, in turn)
  + backpressure + the queue depth check (cached 5 s), 8 owners

Then Table transactions per counted submit, counted on the wire (one request = one
transaction): one instance alone, and two instances taking turns on the same owner's row.
Writes bench/results/submit_guards.json and one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from azure.data.tables.aio import TableClient

from bench.common import EMULATOR_CONFIG, api_host_env, write_result
from devtools.azurite import run_azurite
from devtools.host_process import HostProcess
from devtools.servicebus_emulator.process import start_emulator
from shared.jobs import JobType
from shared.rate_limits import RateLimiter

RESULTS = Path(__file__).resolve().parent / "results"
KEYS = [f"cvy_bench00{i}_" + "b" * 43 for i in range(8)]
CONCURRENCY = 8
JOB = {"type": "summarize", "input": {"text": "One sentence."}}
LIMITED = {"RATE_LIMIT_SUBMITS_PER_MINUTE": "1000000", "QUEUE_DEPTH_LIMIT": "0"}
# name: (settings, how many owners the 8 concurrent clients submit as)
VARIANTS: dict[str, tuple[dict[str, str], int]] = {
    "open": (
        {"AUTH_MODE": "off", "RATE_LIMIT_SUBMITS_PER_MINUTE": "0", "QUEUE_DEPTH_LIMIT": "0"},
        8,
    ),
    "api key": ({"RATE_LIMIT_SUBMITS_PER_MINUTE": "0", "QUEUE_DEPTH_LIMIT": "0"}, 8),
    "+ rate limit": (LIMITED, 8),
    "one owner": (LIMITED, 1),
    "+ backpressure": ({**LIMITED, "QUEUE_DEPTH_LIMIT": "100000"}, 8),
}


async def one_round(client: httpx.AsyncClient, jobs: int, owners: int) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(jobs):
        queue.put_nowait(i)

    async def worker(key: str) -> None:
        while not queue.empty():
            queue.get_nowait()
            response = await client.post("/api/jobs", json=JOB, headers={"x-api-key": key})
            assert response.status_code == 202, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker(KEYS[i % owners]) for i in range(CONCURRENCY)))
    return jobs / (time.perf_counter() - started)


async def transactions_per_submit(connection: str, table: str, submits: int) -> dict[str, float]:
    counted = {"requests": 0}

    def count(request: Any) -> None:
        counted["requests"] += 1

    async def measure(instances: int) -> float:
        clients = [
            TableClient.from_connection_string(connection, table, raw_request_hook=count)
            for _ in range(instances)
        ]
        limiters = [RateLimiter(client) for client in clients]
        owner = f"bench-{instances}-{time.monotonic_ns()}"
        counted["requests"] = 0
        for i in range(submits):
            await limiters[i % instances].acquire(owner, JobType.SUMMARIZE, 10**6)
        for client in clients:
            await client.close()
        return counted["requests"] / submits

    return {"one instance": await measure(1), "two instances taking turns": await measure(2)}


async def main_async(jobs: int, rounds: int) -> dict[str, Any]:
    with run_azurite() as azurite, start_emulator(EMULATOR_CONFIG) as emulator:
        base = {
            **api_host_env(azurite, emulator, KEYS),
            "RATE_LIMITS_TABLE_NAME": "benchrates",
        }
        hosts = {
            name: await asyncio.to_thread(HostProcess, {**base, **extra})
            for name, (extra, _) in VARIANTS.items()
        }
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        try:
            clients = {
                name: httpx.AsyncClient(base_url=host.base_url, timeout=30)
                for name, host in hosts.items()
            }
            for name, client in clients.items():  # warm up: connections, first reads
                await one_round(client, CONCURRENCY * 4, VARIANTS[name][1])
            for _ in range(rounds):
                for name, client in clients.items():
                    rates[name].append(await one_round(client, jobs, VARIANTS[name][1]))
            for client in clients.values():
                await client.aclose()
        finally:
            for host in hosts.values():
                host.stop()
        transactions = await transactions_per_submit(azurite.connection_string, "benchrates", 200)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "jobs_per_round": jobs,
        "rounds": rounds,
        "concurrency": CONCURRENCY,
        "jobs_per_s": medians,
        "ratio_to_open": {name: medians[name] / medians["open"] for name in medians},
        "rate_limit_table_transactions_per_submit": transactions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_guards")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs, args.rounds))
    write_result("submit_guards", result)
    for name, rate in result["jobs_per_s"].items():
        print(f"{name:>15}: {rate:7.1f} jobs/s  ({result['ratio_to_open'][name]:.2f}x open)")
    for name, value in result["rate_limit_table_transactions_per_submit"].items():
        print(f"rate limit Table transactions per submit, {name}: {value:.2f}")
    ratios = result["ratio_to_open"]
    print(
        f"submit guards: api key {ratios['api key']:.2f}x, + rate limit "
        f"{ratios['+ rate limit']:.2f}x (one owner {ratios['one owner']:.2f}x), "
        f"+ backpressure {ratios['+ backpressure']:.2f}x of open"
    )


if __name__ == "__main__":
    main()
