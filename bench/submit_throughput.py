"""P1: `POST /api/jobs` through devtools/host.py over HTTP, next to the two raw SDK calls.

    python -m bench.submit_throughput [--jobs 320] [--rounds 5]

The baseline is what a submit must do at the least: insert a Table row and send a Service
Bus message, with the real SDKs, at the same concurrency (16 clients, each its own sender;
one TableClient). The API runs in its own devtools/host.py process (workers disabled) on the
same Azurite and emulator, driven over HTTP by 16 clients. Rounds are interleaved, and the
medians of each side's jobs/s and of every request's latency are reported:

  api       API keys (from settings), backpressure and intake switches at their defaults
            (both cached, off the hot path), no rate limit: the two calls' own work
  default   the same + the rate limit's Table counter, 16 owners (one per client)

Also measured: the host's CPU seconds per submit (from /proc), the figure the cost estimate
in docs/benchmarks.md uses. Writes bench/results/submit_throughput.json and one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableClient
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from bench.common import (
    EMULATOR_CONFIG,
    api_host_env,
    cpu_seconds,
    percentile,
    write_result,
)
from devtools.azurite import run_azurite
from devtools.host_process import HostProcess
from devtools.servicebus_emulator.process import start_emulator

CONCURRENCY = 16
KEYS = [f"cvy_bench{i:03d}_" + "c" * 43 for i in range(CONCURRENCY)]
JOB = {"type": "summarize", "input": {"text": "One sentence."}}
VARIANTS: dict[str, dict[str, str]] = {
    "api": {"RATE_LIMIT_SUBMITS_PER_MINUTE": "0"},
    "default": {"RATE_LIMIT_SUBMITS_PER_MINUTE": "1000000"},
}
Round = tuple[float, list[float]]  # jobs/s, each request's seconds


async def _drive(jobs: int, call: Any) -> Round:
    """`jobs` calls by CONCURRENCY clients; call(client_index) does one."""
    remaining = [jobs]
    latencies: list[float] = []

    async def client(index: int) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CONCURRENCY)))
    return jobs / (time.perf_counter() - started), latencies


class RawSubmit:
    """The two calls a submit needs, straight on the SDKs."""

    def __init__(self, storage: str, service_bus: str) -> None:
        # The SDK's default transport: a session that trusts the environment.
        self.session = aiohttp.ClientSession(trust_env=True)
        self.table = TableClient.from_connection_string(
            storage,
            "rawjobs",
            transport=AioHttpTransport(session=self.session, session_owner=False),
        )
        self.client = ServiceBusClient.from_connection_string(service_bus)
        self.senders = [self.client.get_queue_sender("summarize") for _ in range(CONCURRENCY)]

    async def open(self) -> None:
        await self.table.create_table()
        for sender in self.senders:
            await sender.__aenter__()

    async def submit(self, index: int) -> None:
        job_id = str(uuid.uuid4())
        now = time.time()
        await self.table.create_entity(
            {
                "PartitionKey": job_id,
                "RowKey": "job",
                "type": "summarize",
                "status": "queued",
                "owner": f"owner{index}",
                "attempt": 0,
                "created_at": now,
                "updated_at": now,
                "input_json": json.dumps(JOB["input"]),
            }
        )
        body = {"job_id": job_id, "type": "summarize", "attempt": 1, "input": JOB["input"]}
        await self.senders[index].send_messages(ServiceBusMessage(json.dumps(body)))

    async def close(self) -> None:
        for sender in self.senders:
            await sender.close()
        await self.client.close()
        await self.table.close()
        await self.session.close()


async def main_async(jobs: int, rounds: int) -> dict[str, Any]:
    with run_azurite() as azurite, start_emulator(EMULATOR_CONFIG) as emulator:
        env = api_host_env(azurite, emulator, KEYS)
        hosts = {
            name: await asyncio.to_thread(HostProcess, {**env, **extra})
            for name, extra in VARIANTS.items()
        }
        raw = RawSubmit(azurite.connection_string, emulator.connection_string)
        # The load generator is aiohttp (C parser, keep-alive, one connection per client),
        # so the clients take as little of the two cores as they can.
        clients = {
            name: aiohttp.ClientSession(
                base_url=host.base_url,
                connector=aiohttp.TCPConnector(limit=CONCURRENCY),
                timeout=aiohttp.ClientTimeout(total=30),
            )
            for name, host in hosts.items()
        }
        payload = json.dumps(JOB).encode()

        def api_call(name: str) -> Any:
            async def call(index: int) -> None:
                headers = {"x-api-key": KEYS[index], "content-type": "application/json"}
                async with clients[name].post("/api/jobs", data=payload, headers=headers) as r:
                    assert r.status == 202, await r.text()
                    await r.read()

            return call

        sides: dict[str, Any] = {"raw": raw.submit} | {n: api_call(n) for n in VARIANTS}
        rates: dict[str, list[float]] = {name: [] for name in sides}
        latencies: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, float] = {name: 0.0 for name in VARIANTS}
        try:
            await raw.open()
            for call in sides.values():  # warm up: connections, links, first reads
                await _drive(CONCURRENCY * 4, call)
            for _ in range(rounds):
                for name, call in sides.items():
                    before = cpu_seconds(hosts[name].process.pid) if name in hosts else 0.0
                    rate, times = await _drive(jobs, call)
                    if name in hosts:
                        cpu[name] += cpu_seconds(hosts[name].process.pid) - before
                    rates[name].append(rate)
                    latencies[name].extend(times)
        finally:
            for client in clients.values():
                await client.close()
            await raw.close()
            for host in hosts.values():
                host.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "jobs_per_round": jobs,
        "rounds": rounds,
        "concurrency": CONCURRENCY,
        "jobs_per_s": medians,
        "rounds_jobs_per_s": rates,
        "ratio_to_raw": {name: medians[name] / medians["raw"] for name in medians},
        "p50_ms": {name: percentile(v, 50) * 1000 for name, v in latencies.items()},
        "p95_ms": {name: percentile(v, 95) * 1000 for name, v in latencies.items()},
        "host_cpu_ms_per_submit": {name: cpu[name] / (jobs * rounds) * 1000 for name in cpu},
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_throughput")
    parser.add_argument("--jobs", type=int, default=320)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs, args.rounds))
    write_result("submit_throughput", result)
    rates, ratios = result["jobs_per_s"], result["ratio_to_raw"]
    p50, p95, cpu = result["p50_ms"], result["p95_ms"], result["host_cpu_ms_per_submit"]
    print(
        f"P1 submit: api {rates['api']:.0f}/s = {ratios['api']:.2f}x raw {rates['raw']:.0f}/s "
        f"(target >= 0.8x); p50/p95 api {p50['api']:.0f}/{p95['api']:.0f} ms, raw "
        f"{p50['raw']:.0f}/{p95['raw']:.0f} ms; default (rate limit on) {rates['default']:.0f}/s "
        f"= {ratios['default']:.2f}x, p95 {p95['default']:.0f} ms; host CPU/submit "
        f"{cpu['api']:.1f} ms ({CONCURRENCY} clients)"
    )


if __name__ == "__main__":
    main()
