"""P6: Table transactions and Service Bus operations of one successful job, on the wire.

    python -m bench.operation_counts [--jobs 4] [--burst 64]

Azurite and the emulator; a devtools/host.py process (API and workers) whose Table requests
all go through a counting proxy (devtools/counting_proxy.py) and whose Service Bus
operations the emulator counts. Half the jobs are sent with an Idempotency-Key; the rate
limit is on at its default (10 a minute). Then a burst of submits, half with a key, by a
caller with a high limit of its own (rate-limit leases). Idempotency and rate-limit
bookkeeping are reported apart and together. Writes bench/results/operation_counts.json and
one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from dataclasses import asdict
from typing import Any

from bench.common import EMULATOR_CONFIG, write_result
from devtools.azurite import run_azurite
from devtools.operation_counts import JobCount, count_jobs
from devtools.servicebus_emulator.process import start_emulator
from shared.auth.api_keys import hash_key

KEY = "cvy_bench900_" + "d" * 43
BURST_KEY = "cvy_bench901_" + "e" * 43  # a caller with a high limit of its own


def _mean(values: list[int]) -> float:
    return statistics.mean(values) if values else 0.0


def _bookkeeping(counts: list[JobCount]) -> dict[str, float]:
    return {
        "idempotency": _mean([c.idempotency for c in counts]),
        "rate_limit": _mean([c.rate_limit for c in counts]),
        "together": _mean([c.bookkeeping for c in counts]),
    }


async def main_async(jobs: int, burst: int) -> dict[str, Any]:
    keys_setting = [
        {"id": "bench900", "owner": "o", "sha256": hash_key(KEY)},
        {"id": "bench901", "owner": "p", "sha256": hash_key(BURST_KEY)}
        | {"submits_per_minute": 10**6},
    ]
    with run_azurite() as azurite, start_emulator(EMULATOR_CONFIG) as emulator:
        env = {
            "AzureWebJobsStorage": azurite.connection_string,
            "ServiceBusConnection": emulator.connection_string,
            "ServiceBusAdminConnection": emulator.admin_connection_string,
            "API_KEYS": json.dumps(keys_setting),
            "RATE_LIMIT_SUBMITS_PER_MINUTE": "10",  # the default
            "INTAKE_CACHE_SECONDS": "60",
            "QUEUE_DEPTH_CACHE_SECONDS": "60",
        }
        keys = tuple(i % 2 == 0 for i in range(jobs))
        counts = await count_jobs(
            env,
            f"http://127.0.0.1:{emulator.admin_port}",
            {"x-api-key": KEY},
            with_keys=keys,
            burst=burst,
            burst_headers={"x-api-key": BURST_KEY},
        )
    measured = counts.jobs
    keyed = [c for c, k in zip(measured, keys, strict=True) if k]
    plain = [c for c, k in zip(measured, keys, strict=True) if not k]
    result: dict[str, Any] = {
        "jobs": [asdict(c) | {"idempotency_key": k} for c, k in zip(measured, keys, strict=True)],
        "job_table_transactions_before_read": _mean([c.job_before_read for c in measured]),
        "caller_read": _mean([c.caller_read for c in measured]),
        "service_bus_operations": _mean([sum(c.service_bus.values()) for c in measured]),
        "bookkeeping_per_submit": _mean([c.bookkeeping for c in measured]),
        "bookkeeping_with_key": _bookkeeping(keyed),
        "bookkeeping_without_key": _bookkeeping(plain),
    }
    if counts.burst is not None:
        result["burst"] = asdict(counts.burst) | {
            "rate_limit_per_submit": counts.burst.rate_limit_per_submit,
            "idempotency_per_keyed_submit": counts.burst.idempotency_per_keyed_submit,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.operation_counts")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--burst", type=int, default=64, help="submits in the burst (0: none)")
    args = parser.parse_args()
    result = asyncio.run(main_async(max(2, args.jobs), max(0, args.burst)))
    write_result("operation_counts", result)
    with_key, without_key = result["bookkeeping_with_key"], result["bookkeeping_without_key"]
    burst = result.get("burst")
    leased = (
        f"; a burst of {burst['submits']} at a high limit: rate limit "
        f"{burst['rate_limit_per_submit']:.2f}/submit, "
        f"key {burst['idempotency_per_keyed_submit']:.2f}/keyed submit"
        if burst
        else ""
    )
    print(
        f"P6 operations per job: {result['job_table_transactions_before_read']:.0f} Table "
        f"transactions before the caller's read (target <= 3; +{result['caller_read']:.0f} "
        f"read), {result['service_bus_operations']:.0f} Service Bus operations (target <= 3); "
        f"bookkeeping {result['bookkeeping_per_submit']:.1f}/submit (with an Idempotency-Key "
        f"{with_key['idempotency']:.0f} key + {with_key['rate_limit']:.1f} rate limit = "
        f"{with_key['together']:.1f}, without {without_key['together']:.1f}; target <= 1)"
        f"{leased}"
    )


if __name__ == "__main__":
    main()
