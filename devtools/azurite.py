"""Starts Azurite (the Storage emulator, installed by npm into node_modules) as a child process."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# The well-known development account. Its key is public and works only against emulators.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at \S+:(\d+)"
)


class AzuriteError(RuntimeError):
    pass


@dataclass(frozen=True)
class Azurite:
    host: str
    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[str]

    @property
    def connection_string(self) -> str:
        base = f"http://{self.host}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT};"
        )


KEEP_ALIVE_SECONDS = 240


@contextmanager
def run_azurite(
    *,
    host: str = "127.0.0.1",
    blob_port: int = 0,
    queue_port: int = 0,
    table_port: int = 0,
    data_dir: Path | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[Azurite]:
    """Run Azurite until the block exits. Port 0 picks a free port for that service."""
    if not AZURITE_BIN.exists():
        raise AzuriteError(f"{AZURITE_BIN} is missing; run `make install` (it runs `npm ci`)")
    command = [
        str(AZURITE_BIN),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--blobHost", host, "--blobPort", str(blob_port),
        "--queueHost", host, "--queuePort", str(queue_port),
        "--tableHost", host, "--tablePort", str(table_port),
        # Idle connections kept as Azure Storage keeps them (minutes), not Node's 5 s: the
        # SDKs' aiohttp pools keep theirs 15 s, and a request sent on a connection the
        # server is closing fails with "Server disconnected" (a POST is not retried).
        "--blobKeepAliveTimeout", str(KEEP_ALIVE_SECONDS),
        "--queueKeepAliveTimeout", str(KEEP_ALIVE_SECONDS),
        "--tableKeepAliveTimeout", str(KEEP_ALIVE_SECONDS),
    ]  # fmt: skip
    if data_dir is None:
        command.append("--inMemoryPersistence")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--location", str(data_dir)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        ports = _wait_for_ports(process, startup_timeout)
        yield Azurite(host, ports["Blob"], ports["Queue"], ports["Table"], process)
    finally:
        stop_process(process)


def _wait_for_ports(process: subprocess.Popen[str], timeout: float) -> dict[str, int]:
    ports: dict[str, int] = {}
    output: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not done.is_set():
                output.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                ports[match.group(1)] = int(match.group(2))
                if len(ports) == 3:
                    done.set()
        done.set()  # the process ended

    threading.Thread(target=read, name="azurite-output", daemon=True).start()
    done.wait(timeout)
    if len(ports) < 3:
        tail = "\n".join(output[-10:])
        raise AzuriteError(f"Azurite did not start (a port may be in use):\n{tail}")
    return ports
