"""Prints the P1, P2, P4 and P6 figures of the last runs (bench/results/*.json) with their
baselines and targets, one line each: what `make bench` ends with."""

from __future__ import annotations

import json
from typing import Any

from bench.common import RESULTS


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def lines() -> list[str]:
    out = []
    if (p1 := _load("submit_throughput")) is not None:
        rate, ratio = p1["jobs_per_s"], p1["ratio_to_raw"]
        out.append(
            f"P1 submit   {rate['api']:7.1f} jobs/s vs raw Table insert + send "
            f"{rate['raw']:7.1f}/s = {ratio['api']:.2f}x (>= 0.8x: {_mark(ratio['api'] >= 0.8)}); "
            f"p50/p95 {p1['p50_ms']['api']:.0f}/{p1['p95_ms']['api']:.0f} ms at "
            f"{p1['concurrency']} clients; rate limit on {ratio['default']:.2f}x"
        )
    if (p2 := _load("worker_throughput")) is not None:
        out.append(
            f"P2 workers  {p2['host_jobs_per_s']:7.1f} jobs/s vs raw receive+complete "
            f"{p2['raw_sdk_msgs_per_s']:7.1f}/s = {p2['ratio']:.2f}x "
            f"(>= 0.7x: {_mark(p2['ratio'] >= 0.7)}); vs the same loop with the job's two "
            f"Table calls {p2['raw_sdk_with_rows_msgs_per_s']:.1f}/s = "
            f"{p2['ratio_to_raw_with_rows']:.2f}x"
        )
    if (p4 := _load("cold_start")) is not None:
        out.append(
            f"P4 import   {p4['app_s'] * 1000:7.0f} ms vs bare SDK imports "
            f"{p4['baseline_s'] * 1000:7.0f} ms = {p4['ratio']:.2f}x "
            f"(<= 1.5x: {_mark(p4['ratio'] <= 1.5)})"
        )
    if (p6 := _load("operation_counts")) is not None:
        with_key, without_key = p6["bookkeeping_with_key"], p6["bookkeeping_without_key"]
        ok = (
            p6["job_table_transactions_before_read"] <= 3
            and p6["service_bus_operations"] <= 3
            and with_key["together"] <= 1
            and without_key["together"] <= 1
        )
        out.append(
            f"P6 per job  {p6['job_table_transactions_before_read']:.0f} Table + "
            f"{p6['service_bus_operations']:.0f} Service Bus operations, bookkeeping "
            f"{p6['bookkeeping_per_submit']:.1f}/submit (with a key {with_key['idempotency']:.0f}"
            f" key + {with_key['rate_limit']:.1f} rate limit, without "
            f"{without_key['together']:.1f}) (3 / 3 / <= 1: {_mark(ok)})"
        )
    return out


def main() -> None:
    for line in lines() or ["no results yet: run the benchmarks first"]:
        print(line)


if __name__ == "__main__":
    main()
