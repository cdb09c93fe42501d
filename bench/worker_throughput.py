"""No-op jobs per second through devtools/host.py, next to a raw SDK receive+complete loop.

    python -m bench.worker_throughput [--jobs 400]

Both sides run on the same emulator and Azurite in one run, with the same number of
concurrent receivers (host.json maxConcurrentCalls). The baseline only receives and
completes messages; the host also reads each job's row and writes its outcome (a no-op job
is never recorded `running`), so the ratio is what Conveyor's bookkeeping costs.
Both sides are measured in steady state: the clock starts when the first `--warm-up`
messages of a round are completed (connections open, the host's clients built on its first
delivery) and stops at the last; completions are read from the emulator's own per-queue
operation counts (GET /$operations), so watching costs neither side anything.
Target (P2): ratio >= 0.7. The sides alternate over `--rounds` rounds; medians. Also
measured: the host's CPU seconds per job (/proc) over the same span, for the cost estimate,
and Azurite's and the emulator's. Writes bench/results/worker_throughput.json and one
summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.core import MatchConditions
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from bench.common import EMULATOR_CONFIG, cpu_seconds, write_result
from devtools.azurite import run_azurite
from devtools.host_config import ServiceBusOptions
from devtools.host_process import HostProcess
from devtools.host_triggers import shared_tls_context
from devtools.servicebus_emulator.process import start_emulator
from shared.auth.caller import Caller
from shared.config import Settings
from shared.jobs import SummarizeRequest
from shared.services import Services, build_services

REPO_ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_SECONDS = 300
POLL_SECONDS = 0.05


@dataclass
class Span:
    """A steady-state stretch of one round: completions over seconds, and CPU per process."""

    completions: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.completions / self.seconds


class Watch:
    """Counts a queue's completions from the emulator's own operation counts, and samples
    the CPU of the processes doing the work, at the warm-up mark and at the end."""

    def __init__(self, admin_url: str, queue: str, pids: dict[str, int]) -> None:
        self._http = httpx.AsyncClient(base_url=admin_url, verify=False, trust_env=False)
        self._queue = queue
        self._pids = dict(pids)

    async def completed(self) -> int:
        counts = (await self._http.get("/$operations")).json()
        return int(counts.get(self._queue, {}).get("complete", 0))

    def watch_pid(self, name: str, pid: int) -> None:
        self._pids[name] = pid

    def _cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    async def span(self, count: int, warm_up: int) -> Span:
        """Waits for `count` more completions; measures from the `warm_up`-th to the last."""
        base = await self.completed()
        deadline = time.perf_counter() + TIME_LIMIT_SECONDS
        marked: tuple[int, float, dict[str, float]] | None = None
        while True:
            done = await self.completed() - base
            now = time.perf_counter()
            if marked is None and done >= warm_up:
                marked = (done, now, self._cpu())
            if done >= count and marked is not None:
                cpu_end = self._cpu()
                cpu = {name: cpu_end[name] - marked[2][name] for name in cpu_end}
                return Span(done - marked[0], now - marked[1], cpu)
            if now > deadline:
                raise TimeoutError(f"only {done}/{count} completed on {self._queue}")
            await asyncio.sleep(POLL_SECONDS)

    async def aclose(self) -> None:
        await self._http.aclose()


async def baseline(
    connection: str,
    watch: Watch,
    count: int,
    warm_up: int,
    receivers: int,
    rows: TableClient | None = None,
) -> Span:
    """Raw SDK: `receivers` concurrent receivers, each receive one message and complete it.
    With `rows`: between the two, the row read and the ETag-guarded final write a job needs
    (the least work a job's bookkeeping can be)."""
    tls = shared_tls_context()  # as the host's client has it: no CA bundle load per connection
    queue = "baseline"
    async with ServiceBusClient.from_connection_string(connection, ssl_context=tls) as client:
        async with client.get_queue_sender(queue) as sender:
            for start in range(0, count, 100):
                batch = []
                for _ in range(min(100, count - start)):
                    job_id = str(uuid.uuid4())
                    if rows is not None:
                        await rows.create_entity(
                            {"PartitionKey": job_id, "RowKey": "job", "status": "queued"}
                        )
                    batch.append(ServiceBusMessage(json.dumps({"job_id": job_id})))
                await sender.send_messages(batch)
        done = 0

        async def record(job_id: str) -> None:
            assert rows is not None
            row = await rows.get_entity(job_id, "job")
            await rows.update_entity(
                {"PartitionKey": job_id, "RowKey": "job", "status": "succeeded"},
                mode=UpdateMode.MERGE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )

        async def drain() -> None:
            nonlocal done
            async with client.get_queue_receiver(queue) as receiver:
                while done < count:
                    for message in await receiver.receive_messages(
                        max_message_count=1, max_wait_time=1
                    ):
                        if rows is not None:
                            await record(json.loads(str(message))["job_id"])
                        await receiver.complete_message(message)
                        done += 1

        drains = asyncio.gather(*(drain() for _ in range(receivers)))
        try:
            return await watch.span(count, warm_up)
        finally:
            await asyncio.wait_for(drains, TIME_LIMIT_SECONDS)


async def through_host(
    services: Services, env: dict[str, str], watch: Watch, count: int, warm_up: int
) -> Span:
    """Jobs submitted first; then the host starts and drains them."""
    request = SummarizeRequest.model_validate({"type": "summarize", "input": {"text": "x."}})
    for start in range(0, count, 50):
        await asyncio.gather(
            *(
                services.jobs.submit(request, caller=Caller(owner="bench"))
                for _ in range(min(50, count - start))
            )
        )
    host = await asyncio.to_thread(HostProcess, env)
    try:
        watch.watch_pid("host", host.process.pid)
        return await watch.span(count, warm_up)
    finally:
        host.stop()


async def main_async(count: int, warm_up: int, rounds: int) -> dict[str, Any]:
    receivers = ServiceBusOptions.from_host_json(REPO_ROOT / "host.json").max_concurrent_calls
    raw: list[Span] = []
    raw_rows: list[Span] = []
    hosted: list[Span] = []
    with run_azurite() as azurite, start_emulator(EMULATOR_CONFIG) as emulator:
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "ServiceBusConnection": emulator.connection_string,
            "ServiceBusAdminConnection": emulator.admin_connection_string,
            "AUTH_MODE": "off",
            "RATE_LIMIT_SUBMITS_PER_MINUTE": "0",
        }
        admin_url = f"http://127.0.0.1:{emulator.admin_port}"
        pids = {"azurite": azurite.process.pid, "emulator": emulator.process.pid}
        raw_watch = Watch(admin_url, "baseline", {**pids, "bench": os.getpid()})
        host_watch = Watch(admin_url, "summarize", pids)
        services = await build_services(Settings.from_env(env))
        rows = TableClient.from_connection_string(
            azurite.connection_string,
            "benchrows",
            transport=AioHttpTransport(use_env_settings=False),
        )
        try:
            await rows.create_table()
            for _ in range(rounds):
                raw.append(
                    await baseline(emulator.connection_string, raw_watch, count, warm_up, receivers)
                )
                raw_rows.append(
                    await baseline(
                        emulator.connection_string, raw_watch, count, warm_up, receivers, rows
                    )
                )
                hosted.append(await through_host(services, env, host_watch, count, warm_up))
        finally:
            await rows.close()
            await services.aclose()
            await raw_watch.aclose()
            await host_watch.aclose()
    raw_median = statistics.median(span.rate for span in raw)
    rows_median = statistics.median(span.rate for span in raw_rows)
    host_median = statistics.median(span.rate for span in hosted)

    def cpu_ms_per_message(spans: list[Span]) -> dict[str, float]:
        return {
            name: statistics.median(span.cpu[name] / span.completions for span in spans) * 1000
            for name in spans[0].cpu
        }

    host_cpu = cpu_ms_per_message(hosted)
    return {
        "jobs": count,
        "warm_up": warm_up,
        "rounds": rounds,
        "receivers": receivers,
        "raw_sdk_msgs_per_s": raw_median,
        "host_jobs_per_s": host_median,
        "raw_sdk_with_rows_msgs_per_s": rows_median,
        "rounds_raw": [span.rate for span in raw],
        "rounds_raw_with_rows": [span.rate for span in raw_rows],
        "rounds_host": [span.rate for span in hosted],
        "ratio": host_median / raw_median,
        "ratio_to_raw_with_rows": host_median / rows_median,
        "host_cpu_ms_per_job": host_cpu["host"],
        "cpu_ms_per_message": {
            "raw": cpu_ms_per_message(raw),
            "raw_with_rows": cpu_ms_per_message(raw_rows),
            "host": host_cpu,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput")
    parser.add_argument("--jobs", type=int, default=800)
    parser.add_argument("--warm-up", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs, args.warm_up, args.rounds))
    write_result("worker_throughput", result)
    cpu = result["cpu_ms_per_message"]
    print(
        f"P2 workers: host {result['host_jobs_per_s']:.0f} jobs/s = {result['ratio']:.2f}x raw "
        f"receive+complete {result['raw_sdk_msgs_per_s']:.0f} msg/s (target >= 0.7x; "
        f"{result['receivers']} receivers, steady state; CPU ms/job host "
        f"{cpu['host']['host']:.1f} + Azurite {cpu['host']['azurite']:.1f} + emulator "
        f"{cpu['host']['emulator']:.1f}, raw {cpu['raw']['bench']:.1f} + emulator "
        f"{cpu['raw']['emulator']:.1f}); {result['ratio_to_raw_with_rows']:.2f}x the raw loop "
        f"with the job's two Table calls ({result['raw_sdk_with_rows_msgs_per_s']:.0f} msg/s)"
    )


if __name__ == "__main__":
    main()
