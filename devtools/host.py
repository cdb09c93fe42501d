"""A local Functions host for what Core Tools would run: the HTTP app and every trigger.

    python -m devtools.host [--host 127.0.0.1] [--port 7071] [--settings local.settings.json]

It imports `function_app`, reads the app's own function list (devtools/host_config.py), and
- serves `function_app.asgi_app` (the documented hook; see function_app.py) with uvicorn,
  lifespan on, as the Functions ASGI wrapper runs startup and shutdown;
- runs each Service Bus queue trigger and timer (devtools/host_triggers.py).
A function whose binding names a missing setting is reported and left out; the rest run.
On SIGINT/SIGTERM the triggers drain first, then the HTTP app shuts down (closing the
shared clients). See docs/architecture.md for how this differs from the real host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import uvicorn
from azure.servicebus.aio import ServiceBusClient

from devtools.host_config import (
    REPO_ROOT,
    FunctionList,
    ServiceBusOptions,
    apply_local_settings,
    discover,
)
from devtools.host_triggers import run_queue_trigger, run_timer_trigger, shared_tls_context
from devtools.logs import configure_logging
from devtools.processes import port_is_free
from shared.errors import ConfigError
from shared.logs import JsonLinesFormatter

log = logging.getLogger("devtools.host")

DRAIN_SECONDS = 30.0
# Idle HTTP connections kept open longer than clients keep theirs pooled (aiohttp 15 s),
# as Azure's front ends do (minutes), not uvicorn's 5 s: otherwise a request after a pause
# can go out on a connection the server is closing and fail with "Server disconnected".
KEEP_ALIVE_SECONDS = 120


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop; the host, not uvicorn, owns the process signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class HostOptions:
    host: str = "127.0.0.1"
    port: int = 7071
    settings: Path | None = None
    timers: bool = True


def asgi_app_of(module: ModuleType) -> Callable[..., Any]:
    app = getattr(module, "asgi_app", None)
    if not callable(app):
        raise ConfigError("function_app has no `asgi_app`: the local host serves that name")
    return app


async def serve(options: HostOptions, module: ModuleType) -> None:
    functions = discover(module.app)
    sb_options = ServiceBusOptions.from_host_json(REPO_ROOT / "host.json")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    config = uvicorn.Config(
        asgi_app_of(module),
        host=options.host,
        port=options.port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = _EmbeddedServer(config)
    clients: dict[str, ServiceBusClient] = {}
    tasks: list[asyncio.Task[None]] = []
    server_task = asyncio.create_task(server.serve(), name="http")
    try:
        while not server.started:
            if server_task.done():
                await server_task
                raise SystemExit(f"could not serve HTTP on {options.host}:{options.port}")
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"host listening on http://{options.host}:{port}/api", flush=True)
        tasks = _start_triggers(functions, options, sb_options, clients, stopping)
        await stopping.wait()
        log.info("stopping: finishing in-flight work")
    finally:
        stopping.set()
        await _drain(tasks, grace_seconds=DRAIN_SECONDS)
        for client in clients.values():
            await client.close()
        server.should_exit = True  # now the lifespan shutdown may close the shared clients
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server_task, 10.0)


def _start_triggers(
    functions: FunctionList,
    options: HostOptions,
    sb_options: ServiceBusOptions,
    clients: dict[str, ServiceBusClient],
    stopping: asyncio.Event,
) -> list[asyncio.Task[None]]:
    tasks = []
    tls = shared_tls_context()
    for trigger in functions.queues:
        connection = os.environ.get(trigger.connection_setting)
        if not connection:
            log.error(
                "function %s will not run: its connection setting %s is not set",
                trigger.name,
                trigger.connection_setting,
            )
            continue
        if trigger.connection_setting not in clients:
            clients[trigger.connection_setting] = ServiceBusClient.from_connection_string(
                connection, ssl_context=tls
            )
        client = clients[trigger.connection_setting]
        tasks.append(
            asyncio.create_task(
                run_queue_trigger(trigger, client, sb_options, stopping), name=trigger.name
            )
        )
        log.info(
            "%s: up to %d receivers on queue %s",
            trigger.name,
            sb_options.max_concurrent_calls,
            trigger.queue_name,
        )
    if options.timers:
        for timer in functions.timers:
            tasks.append(asyncio.create_task(run_timer_trigger(timer, stopping), name=timer.name))
            log.info("%s: timer %s", timer.name, timer.schedule)
    return tasks


async def _drain(tasks: list[asyncio.Task[None]], grace_seconds: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _formatter() -> logging.Formatter | None:
    """LOG_FORMAT=json (environment or local.settings.json): one JSON object per line."""
    if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
        return JsonLinesFormatter()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.host", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port")
    parser.add_argument("--settings", type=Path, help="a local.settings.json (default: ./)")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        apply_local_settings(args.settings)
        configure_logging(args.log_level, {"urllib3": logging.WARNING}, formatter=_formatter())
        sys.path.insert(0, str(REPO_ROOT))
        module = importlib.import_module("function_app")
        asgi_app_of(module)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if args.port and not port_is_free(args.host, args.port):
        print(
            f"error: port {args.port} on {args.host} is in use; stop what uses it or pass "
            "--port (Host.LocalHttpPort in local.settings.json for `func start`)",
            file=sys.stderr,
        )
        return 2
    options = HostOptions(args.host, args.port, args.settings, timers=not args.no_timers)
    asyncio.run(serve(options, module))
    return 0


if __name__ == "__main__":
    sys.exit(main())
