"""What the benchmarks share: the emulator's queues, workers switched off, CPU time, percentiles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shared.auth.api_keys import hash_key
from shared.jobs import JobType

RESULTS = Path(__file__).resolve().parent / "results"
# The app's queues as infra/ names them (each type's, its high-priority one, callbacks).
APP_QUEUES = tuple(
    json.loads((RESULTS.parents[1] / "infra" / "names.json").read_text())["queues"].values()
)
QUEUE_PROPERTIES = {
    "MaxDeliveryCount": 5,
    "LockDuration": "PT1M",
    "RequiresDuplicateDetection": False,
    "DeadLetteringOnMessageExpiration": True,
}
EMULATOR_CONFIG: dict[str, Any] = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "bench",
                "Queues": [
                    {"Name": name, "Properties": QUEUE_PROPERTIES}
                    for name in (*APP_QUEUES, "baseline")
                ],
            }
        ],
        "Logging": {"Type": "Console"},
    }
}
# A host with these settings serves the API only: no queue trigger runs.
NO_WORKERS = {
    f"AzureWebJobs.{t.value}{infix}_worker.Disabled": "true"
    for t in JobType
    for infix in ("", "_high")
} | {"AzureWebJobs.callback_worker.Disabled": "true"}


def api_host_env(azurite: Any, emulator: Any, keys: list[str]) -> dict[str, str]:
    """Settings for an API-only host on this Azurite and emulator, accepting `keys`
    (`cvy_<id>_<secret>`, owner `owner<i>` each)."""
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "ServiceBusConnection": emulator.connection_string,
        "ServiceBusAdminConnection": emulator.admin_connection_string,
        "API_KEYS": json.dumps(
            [
                {"id": key.split("_")[1], "owner": f"owner{i}", "sha256": hash_key(key)}
                for i, key in enumerate(keys)
            ]
        ),
        **NO_WORKERS,
    }


def write_result(name: str, result: dict[str, Any]) -> None:
    """bench/results/<name>.json, which bench/summary.py reads."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
