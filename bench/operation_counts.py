"""P6: Table transactions and Service Bus operations of one successful job, on the wire.

    python -m bench.operation_counts [--jobs 4]

Azurite and the emulator; a devtools/host.py process (API and workers) whose Table requests
all go through a counting proxy (devtools/counting_proxy.py) and whose Service Bus
operations the emulator counts. Half the jobs are sent with an Idempotency-Key; the rate
limit is on. Writes bench/results/operation_counts.json and one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from dataclasses import asdict
from typing import Any

from bench.common import EMULATOR_CONFIG, RESULTS
from devtools.azurite import run_azurite
from devtools.operation_counts import count_jobs
from devtools.servicebus_emulator.process import start_emulator
from shared.auth.api_keys import hash_key

KEY = "cvy_bench900_" + "d" * 43


async def main_async(jobs: int) -> dict[str, Any]:
    with run_azurite() as azurite, start_emulator(EMULATOR_CONFIG) as emulator:
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "ServiceBusConnection": emulator.connection_string,
            "ServiceBusAdminConnection": emulator.admin_connection_string,
            "API_KEYS": json.dumps([{"id": "bench900", "owner": "o", "sha256": hash_key(KEY)}]),
            "RATE_LIMIT_SUBMITS_PER_MINUTE": "1000",
            "INTAKE_CACHE_SECONDS": "60",
            "QUEUE_DEPTH_CACHE_SECONDS": "60",
        }
        keys = tuple(i % 2 == 0 for i in range(jobs))
        counts = await count_jobs(
            env, f"http://127.0.0.1:{emulator.admin_port}", {"x-api-key": KEY}, with_keys=keys
        )
    per_job = [asdict(c) | {"idempotency_key": k} for c, k in zip(counts, keys, strict=True)]
    return {
        "jobs": per_job,
        "job_table_transactions_before_read": statistics.mean(c.job_before_read for c in counts),
        "caller_read": statistics.mean(c.caller_read for c in counts),
        "service_bus_operations": statistics.mean(sum(c.service_bus.values()) for c in counts),
        "bookkeeping_per_submit": statistics.mean(c.bookkeeping for c in counts),
        "bookkeeping_with_key": statistics.mean(
            c.bookkeeping for c, k in zip(counts, keys, strict=True) if k
        ),
        "bookkeeping_without_key": statistics.mean(
            c.bookkeeping for c, k in zip(counts, keys, strict=True) if not k
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.operation_counts")
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(main_async(max(2, args.jobs)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operation_counts.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(
        f"P6 operations per job: {result['job_table_transactions_before_read']:.0f} Table "
        f"transactions before the caller's read (target <= 3; +{result['caller_read']:.0f} "
        f"read), {result['service_bus_operations']:.0f} Service Bus operations (target <= 3); "
        f"bookkeeping {result['bookkeeping_per_submit']:.1f}/submit (with an Idempotency-Key "
        f"{result['bookkeeping_with_key']:.0f}, without {result['bookkeeping_without_key']:.0f}; "
        f"target <= 1)"
    )


if __name__ == "__main__":
    main()
