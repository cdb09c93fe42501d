"""P4: how long `import function_app` takes, next to importing the bare SDKs it stands on.

    python -m bench.cold_start [--runs 7]

Each run is a fresh `python -c` subprocess (what a Functions worker does on a cold start);
the app and the baseline (azure.functions + the Service Bus and Tables SDKs, aio) alternate,
and the medians of their wall times are compared. Then one `-X importtime` run of the app
lists the modules that cost the most of their own time and, cumulatively, the top-level
packages. Writes bench/results/cold_start.json and one summary line.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import write_result

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = "import function_app"
BASELINE = (
    "import azure.functions, azure.servicebus.aio, azure.data.tables.aio, "
    "azurefunctions.extensions.bindings.servicebus"
)
# What a worker has at start: the app's settings, no connection made at import.
ENV = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "ServiceBusConnection": "Endpoint=sb://localhost;SharedAccessKeyName=k;"
    "SharedAccessKey=x;UseDevelopmentEmulator=true",
    "AI_PROVIDER": "local",
    "PYTHONDONTWRITEBYTECODE": "0",
}
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def _run(code: str, *flags: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, done.stderr


def import_times(stderr: str) -> dict[str, Any]:
    """Top modules by own (self) time, and top-level packages by their modules' self time."""
    own: list[tuple[int, str]] = []
    packages: dict[str, int] = {}
    for match in _IMPORTTIME.finditer(stderr):
        self_us, name = int(match.group(1)), match.group(4)
        own.append((self_us, name))
        top = ".".join(name.split(".")[:2]) if name.startswith("azure") else name.split(".")[0]
        packages[top] = packages.get(top, 0) + self_us
    own.sort(reverse=True)
    return {
        "top_modules_self_ms": {name: us / 1000 for us, name in own[:15]},
        "top_packages_ms": {
            name: us / 1000 for name, us in sorted(packages.items(), key=lambda item: -item[1])[:15]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    _run("pass")  # warm the OS file cache and bytecode for both sides
    _run(APP)
    _run(BASELINE)
    app, baseline, bare = [], [], []
    for _ in range(args.runs):
        app.append(_run(APP)[0])
        baseline.append(_run(BASELINE)[0])
        bare.append(_run("pass")[0])
    top = import_times(_run(APP, "-X", "importtime")[1])
    result = {
        "runs": args.runs,
        "app_s": statistics.median(app),
        "baseline_s": statistics.median(baseline),
        "interpreter_s": statistics.median(bare),
        "ratio": statistics.median(app) / statistics.median(baseline),
        **top,
    }
    write_result("cold_start", result)
    print("import -X importtime, top packages (self ms):")
    for name, ms in list(result["top_packages_ms"].items())[:10]:
        print(f"  {ms:8.1f}  {name}")
    print(
        f"P4 cold start: import function_app {result['app_s'] * 1000:.0f} ms = "
        f"{result['ratio']:.2f}x the bare SDK imports {result['baseline_s'] * 1000:.0f} ms "
        f"(target <= 1.5x; interpreter alone {result['interpreter_s'] * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
