"""`make run`: the whole system on this machine, offline, until Ctrl-C.

Starts Azurite (Storage), the Service Bus emulator, and devtools/host.py (API + workers),
each on the port its setting names, and stops every one of them on Ctrl-C or SIGTERM.
Settings come from local.settings.json when present, else local.settings.sample.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from devtools.azurite import run_azurite
from devtools.dev_keys import DevKeys, load_dev_keys
from devtools.host_config import apply_local_settings
from devtools.processes import port_is_free, stop_process
from shared.config import SERVICE_BUS, SERVICE_BUS_ADMIN, STORAGE
from shared.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
EMULATOR_CONFIG = REPO_ROOT / "infra" / "servicebus.config.json"
DEV_STORAGE_PORTS = {"Blob": 10000, "Queue": 10001, "Table": 10002}
DEFAULT_HOST_PORT = 7071


class StartupError(Exception):
    pass


@dataclass(frozen=True)
class Port:
    number: int
    what: str
    setting: str


def storage_ports(connection: str) -> dict[str, int]:
    if connection.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
        return dict(DEV_STORAGE_PORTS)
    ports = {}
    for service in DEV_STORAGE_PORTS:
        match = re.search(
            rf"{service}Endpoint=https?://(?:127\.0\.0\.1|localhost):(\d+)", connection
        )
        if not match:
            raise StartupError(
                f"AzureWebJobsStorage has no local {service}Endpoint; for `make run` use "
                "UseDevelopmentStorage=true or an Azurite connection string"
            )
        ports[service] = int(match.group(1))
    return ports


def service_bus_port(connection: str, setting: str = SERVICE_BUS, default: int = 5672) -> int:
    match = re.search(r"Endpoint=sb://(?:127\.0\.0\.1|localhost):(\d+)", connection)
    if not match or "UseDevelopmentEmulator=true" not in connection:
        raise StartupError(
            f"{setting} must point at the local emulator for `make run`: "
            f"Endpoint=sb://127.0.0.1:{default};...;UseDevelopmentEmulator=true"
        )
    return int(match.group(1))


def check_ports(ports: list[Port]) -> None:
    busy = [p for p in ports if not port_is_free("127.0.0.1", p.number)]
    if busy:
        lines = [f"  port {p.number} ({p.what}) is in use; change {p.setting}" for p in busy]
        raise StartupError(
            "cannot start: ports already in use (another `make run`?):\n" + "\n".join(lines)
        )


@contextmanager
def child(command: list[str], ready_prefix: str, name: str, timeout: float = 60.0) -> Iterator[str]:
    """Run a child until the block exits; wait for its first stdout line to start with
    `ready_prefix`, and yield that line. Its later output is passed through."""
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = _first_line(process, timeout)
        if not line.startswith(ready_prefix):
            raise StartupError(f"{name} did not start (exit code {process.poll()}): {line!r}")
        threading.Thread(target=_pass_through, args=(process,), daemon=True).start()
        yield line.strip()
    finally:
        stop_process(process)


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def _pass_through(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)


def local_http_port(settings_file: Path | None) -> int:
    """Host.LocalHttpPort from local.settings.json, the port `func start` uses too."""
    if settings_file is None:
        return DEFAULT_HOST_PORT
    document = json.loads(settings_file.read_text(encoding="utf-8"))
    port = (document.get("Host") or {}).get("LocalHttpPort", DEFAULT_HOST_PORT)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise StartupError(f"{settings_file}: Host.LocalHttpPort must be a port number")
    return port


def run(settings: Path | None = None) -> int:
    settings_file = apply_local_settings(settings)
    host_port = local_http_port(settings_file)
    sb_port = service_bus_port(os.environ.get(SERVICE_BUS, ""))
    admin_port = service_bus_port(
        os.environ.get(SERVICE_BUS_ADMIN, ""), SERVICE_BUS_ADMIN, default=5300
    )
    st_ports = storage_ports(os.environ.get(STORAGE, ""))
    check_ports(
        [Port(host_port, "API and workers", "Host.LocalHttpPort")]
        + [Port(n, f"Azurite {s.lower()}", STORAGE) for s, n in st_ports.items()]
        + [Port(sb_port, "Service Bus emulator", SERVICE_BUS)]
        + [Port(admin_port, "Service Bus emulator management", SERVICE_BUS_ADMIN)]
    )
    keys = load_dev_keys(REPO_ROOT / ".local" / "dev-keys.json")
    keys.export()  # the host reads API_KEYS from the environment it inherits
    print(f"settings: {settings_file}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    python = sys.executable
    with ExitStack() as stack:
        azurite = stack.enter_context(
            run_azurite(
                blob_port=st_ports["Blob"],
                queue_port=st_ports["Queue"],
                table_port=st_ports["Table"],
            )
        )
        print(f"azurite: blob {azurite.blob_port}, table {azurite.table_port}", flush=True)
        emulator = [python, "-m", "devtools.servicebus_emulator", "--host", "127.0.0.1"]
        emulator += ["--port", str(sb_port), "--config", str(EMULATOR_CONFIG)]
        emulator += ["--admin-port", str(admin_port)]
        print(
            "service bus emulator: "
            + stack.enter_context(child(emulator, "listening on", "emulator"))
        )
        host = [python, "-m", "devtools.host", "--port", str(host_port)]
        if settings_file is not None:
            host += ["--settings", str(settings_file)]
        stack.enter_context(child(host, "host listening on", "host"))
        print(_banner(host_port, keys), flush=True)
        while not stop.is_set():
            time.sleep(0.2)
        print("\nstopping: host, emulator, azurite", flush=True)
    return 0


def _banner(port: int, keys: DevKeys) -> str:
    base = f"http://localhost:{port}/api"
    auth = (
        f"development key: {keys.key}\n"
        f"admin key:       {keys.admin_key}   (for /api/admin; kept in {keys.path})\n"
        if os.environ.get("AUTH_MODE", "on").strip().lower() not in ("off", "false", "0")
        else "AUTH_MODE=off: every request is accepted as an administrator\n"
    )
    return (
        f"\nConveyor is running at {base}  (Swagger UI: {base}/docs)\n{auth}"
        f"  export CONVEYOR_KEY={keys.key}\n"
        f'  curl -s -X POST {base}/jobs -H "x-api-key: $CONVEYOR_KEY" \\\n'
        "       -H 'Content-Type: application/json' \\\n"
        '       -d \'{"type": "summarize", "input": {"text": "Queues decouple work. '
        "Workers drain them.\"}}'\n"
        "Press Ctrl-C to stop everything.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.run_local", description=__doc__)
    parser.add_argument(
        "--settings", type=Path, help="a local.settings.json (default: ./, else the sample)"
    )
    args = parser.parse_args(argv)
    try:
        return run(args.settings)
    except (StartupError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
