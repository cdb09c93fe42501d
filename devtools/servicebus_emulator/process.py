"""Start the emulator as a child process (for tests, benchmarks and `make run`)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.processes import stop_process
from devtools.servicebus_emulator import connection_string

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunningEmulator:
    host: str
    port: int
    process: subprocess.Popen[str]

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port)


@contextmanager
def start_emulator(
    config: dict[str, Any] | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "WARNING",
    startup_timeout: float = 30.0,
) -> Iterator[RunningEmulator]:
    """Run `python -m devtools.servicebus_emulator` until the block exits."""
    with tempfile.TemporaryDirectory(prefix="sb-emulator-") as scratch:
        command = [sys.executable, "-m", "devtools.servicebus_emulator", "--host", host]
        command += ["--port", str(port), "--log-level", log_level]
        if isinstance(config, dict):
            path = Path(scratch) / "Config.json"
            path.write_text(json.dumps(config))
            command += ["--config", str(path)]
        elif config is not None:
            command += ["--config", str(config)]
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            line = _first_line(process, startup_timeout)
            if not line.startswith("listening on "):
                raise RuntimeError(f"the emulator did not start (exit {process.poll()}): {line!r}")
            bound_host, _, bound_port = line.split()[-1].rpartition(":")
            yield RunningEmulator(bound_host, int(bound_port), process)
        finally:
            stop_process(process)


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.append(process.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""
