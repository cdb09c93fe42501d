"""No-op jobs per second through devtools/host.py, next to a raw SDK receive+complete loop.

    python -m bench.worker_throughput [--jobs 400]

Both sides run on the same emulator and Azurite in one run, with the same number of
concurrent receivers (host.json maxConcurrentCalls). The baseline only receives and
completes messages; the host also reads and writes each job's status row three times, so
the ratio is what Conveyor's bookkeeping costs. Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path

from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from devtools.azurite import run_azurite
from devtools.host_config import ServiceBusOptions
from devtools.host_process import HostProcess
from devtools.servicebus_emulator.process import start_emulator
from shared.auth.caller import Caller
from shared.config import Settings
from shared.jobs import JobStatus, SummarizeRequest
from shared.services import build_services

REPO_ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_SECONDS = 300
QUEUE_PROPERTIES = {
    "MaxDeliveryCount": 5,
    "LockDuration": "PT1M",
    "RequiresDuplicateDetection": False,
    "DeadLetteringOnMessageExpiration": True,
}


async def baseline(connection: str, count: int, receivers: int) -> float:
    """Raw SDK: `receivers` concurrent receivers, each receive one message and complete it."""
    async with ServiceBusClient.from_connection_string(connection) as client:
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


async def through_host(env: dict[str, str], count: int) -> float:
    """Jobs submitted first; then the host starts and the clock runs until all succeed."""
    services = await build_services(Settings.from_env(env))
    try:
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
            deadline = started + TIME_LIMIT_SECONDS
            while True:
                succeeded = await services.store.count_by_status(JobStatus.SUCCEEDED)
                if succeeded >= count:
                    return count / (time.perf_counter() - started)
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"only {succeeded}/{count} jobs done")
                await asyncio.sleep(0.25)
        finally:
            host.stop()
    finally:
        await services.aclose()


async def main_async(count: int) -> dict[str, float]:
    receivers = ServiceBusOptions.from_host_json(REPO_ROOT / "host.json").max_concurrent_calls
    config = {
        "UserConfig": {
            "Namespaces": [
                {
                    "Name": "bench",
                    "Queues": [
                        {"Name": name, "Properties": QUEUE_PROPERTIES}
                        for name in ("summarize", "embed", "sync", "baseline")
                    ],
                }
            ],
            "Logging": {"Type": "Console"},
        }
    }
    with run_azurite() as azurite, start_emulator(config) as emulator:
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "ServiceBusConnection": emulator.connection_string,
        }
        raw = await baseline(emulator.connection_string, count, receivers)
        hosted = await through_host(env, count)
    return {"receivers": receivers, "raw_sdk_msgs_per_s": raw, "host_jobs_per_s": hosted}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput")
    parser.add_argument("--jobs", type=int, default=400)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.jobs))
    ratio = result["host_jobs_per_s"] / result["raw_sdk_msgs_per_s"]
    print(f"jobs: {args.jobs}, concurrent receivers: {result['receivers']:.0f}")
    print(f"raw SDK receive+complete: {result['raw_sdk_msgs_per_s']:8.1f} msg/s")
    print(f"devtools/host.py no-op jobs: {result['host_jobs_per_s']:8.1f} jobs/s")
    print(f"ratio host/raw: {ratio:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
