"""No-op jobs per second through devtools/host.py, next to a raw SDK receive+complete loop.

    python -m bench.worker_throughput [--jobs 400]

Both sides run on the same emulator and Azurite in one run, with the same number of
concurrent receivers (host.json maxConcurrentCalls). The baseline only receives and
completes messages; the host also reads each job's row and writes its outcome (a no-op job
is never recorded `running`), so the ratio is what Conveyor's bookkeeping costs.
Target (P2): ratio >= 0.7. The sides alternate over `--rounds` rounds; medians. Also
measured: the host's CPU seconds per job (/proc), for the cost estimate. Writes
bench/results/worker_throughput.json and one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from bench.common import EMULATOR_CONFIG, RESULTS, cpu_seconds
from devtools.azurite import run_azurite
from devtools.host_config import ServiceBusOptions
from devtools.host_process import HostProcess
from devtools.host_triggers import shared_tls_context
from devtools.servicebus_emulator.process import start_emulator
from shared.auth.caller import Caller
from shared.config import Settings
from shared.jobs import JobStatus, SummarizeRequest
from shared.services import Services, build_services

REPO_ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_SECONDS = 300


async def baseline(connection: str, count: int, receivers: int) -> float:
    """Raw SDK: `receivers` concurrent receivers, each receive one message and complete it."""
    tls = shared_tls_context()  # as the host's client has it: no CA bundle load per connection
    async with ServiceBusClient.from_connection_string(connection, ssl_context=tls) as client:
        async with client.get_queue_sender("baseline") as sender:
            body = json.dumps({"job_id": str(uuid.uuid4()), "type": "summarize"})
            for start in range(0, count, 100):
                batch = [ServiceBusMessage(body) for _ in range(min(100, count - start))]
                await sender.send_messages(batch)
        done = 0
        started = time.perf_counter()

        async def drain() -> None:
            nonlocal done
            async with client.get_queue_receiver("baseline") as receiver:
                while done < count:
                    for message in await receiver.receive_messages(
                        max_message_count=1, max_wait_time=1
                    ):
                        await receiver.complete_message(message)
                        done += 1

        await asyncio.wait_for(
            asyncio.gather(*(drain() for _ in range(receivers))), TIME_LIMIT_SECONDS
        )
        return count / (time.perf_counter() - started)


async def through_host(services: Services, env: dict[str, str], count: int) -> tuple[float, float]:
    """Jobs submitted first; then the host starts and the clock runs until all succeed.
    Returns jobs/s and the host's CPU seconds per job."""
    already = await services.store.count_by_status(JobStatus.SUCCEEDED)
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
        started = time.perf_counter()
        cpu_before = cpu_seconds(host.process.pid)
        deadline = started + TIME_LIMIT_SECONDS
        while True:
            succeeded = await services.store.count_by_status(JobStatus.SUCCEEDED) - already
            if succeeded >= count:
                elapsed = time.perf_counter() - started
                cpu = cpu_seconds(host.process.pid) - cpu_before
                return count / elapsed, cpu / count
            if time.perf_counter() > deadline:
                raise TimeoutError(f"only {succeeded}/{count} jobs done")
            await asyncio.sleep(0.25)
    finally:
        host.stop()


async def main_async(count: int, rounds: int) -> dict[str, Any]:
    receivers = ServiceBusOptions.from_host_json(REPO_ROOT / "host.json").max_concurrent_calls
    raw: list[float] = []
    hosted: list[float] = []
    cpu: list[float] = []
    with run_azurite() as azurite, start_emulator(EMULATOR_CONFIG) as emulator:
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "ServiceBusConnection": emulator.connection_string,
            "AUTH_MODE": "off",
            "RATE_LIMIT_SUBMITS_PER_MINUTE": "0",
        }
        services = await build_services(Settings.from_env(env))
        try:
            for _ in range(rounds):
                raw.append(await baseline(emulator.connection_string, count, receivers))
                rate, cpu_per_job = await through_host(services, env, count)
                hosted.append(rate)
                cpu.append(cpu_per_job)
        finally:
            await services.aclose()
    raw_median, host_median = statistics.median(raw), statistics.median(hosted)
    return {
        "jobs": count,
        "rounds": rounds,
        "receivers": receivers,
        "raw_sdk_msgs_per_s": raw_median,
        "host_jobs_per_s": host_median,
        "rounds_raw": raw,
        "rounds_host": hosted,
        "ratio": host_median / raw_median,
        "host_cpu_ms_per_job": statistics.median(cpu) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs, args.rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "worker_throughput.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(
        f"P2 workers: host {result['host_jobs_per_s']:.0f} jobs/s = {result['ratio']:.2f}x raw "
        f"receive+complete {result['raw_sdk_msgs_per_s']:.0f} msg/s (target >= 0.7x; "
        f"{result['receivers']} receivers, host CPU/job {result['host_cpu_ms_per_job']:.1f} ms)"
    )


if __name__ == "__main__":
    main()
