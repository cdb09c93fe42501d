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
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    # The admin endpoint's TLS certificate (PEM): `connection_verify=` for the SDK.
    admin_certificate: Path | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port)

    @property
    def admin_connection_string(self) -> str:
        """For ServiceBusAdministrationClient: the same format, the administration port."""
        return connection_string(self.admin_host, self.admin_port)


@contextmanager
def start_emulator(
    config: dict[str, Any] | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    admin_port: int = 0,
    log_level: str = "WARNING",
    startup_timeout: float = 30.0,
) -> Iterator[RunningEmulator]:
    """Run `python -m devtools.servicebus_emulator` until the block exits.

    Both ports default to free ones (the command line defaults to 5672 and 5300)."""
    with tempfile.TemporaryDirectory(prefix="sb-emulator-") as scratch:
        certificate = Path(scratch) / "admin-certificate.pem"
        command = [sys.executable, "-m", "devtools.servicebus_emulator", "--host", host]
        command += ["--port", str(port), "--log-level", log_level]
        command += ["--admin-port", str(admin_port), "--admin-certificate", str(certificate)]
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
            line, admin_line = _first_lines(process, 2, startup_timeout)
            if not line.startswith("listening on ") or not admin_line.startswith("admin "):
                raise RuntimeError(f"the emulator did not start (exit {process.poll()}): {line!r}")
            bound_host, _, bound_port = line.split()[-1].rpartition(":")
            admin_host, _, bound_admin_port = admin_line.split()[-1].rpartition(":")
            yield RunningEmulator(
                bound_host,
                int(bound_port),
                process,
                admin_host=admin_host,
                admin_port=int(bound_admin_port),
                admin_certificate=certificate,
            )
        finally:
            stop_process(process)


def _first_lines(process: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """The first `count` stdout lines ("" for any that did not come in time)."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for _ in range(count):
            lines.append(process.stdout.readline().strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return (lines + [""] * count)[:count]
