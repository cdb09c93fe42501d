"""A local Functions host for what Core Tools would run: the HTTP app and every trigger.

    python -m devtools.host [--host 127.0.0.1] [--port 7071] [--settings local.settings.json]

It imports `function_app`, reads the app's own function list, and for each
- HTTP (ASGI) function: serves `function_app.api` with uvicorn;
- Service Bus trigger: runs `maxConcurrentCalls` (host.json) competing receivers with the
  real SDK (peek-lock, prefetch, AutoLockRenewer), calling the SAME decorated function with a
  real received message and a message-actions object backed by the receiver;
- timer trigger: calls the function on its NCRONTAB schedule (and at start-up if asked).
See docs/architecture.md for how this differs from the real host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import uvicorn
from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient, ServiceBusReceiver
from croniter import croniter

from devtools.logs import configure_logging
from devtools.processes import port_is_free
from shared.config import read_local_settings
from shared.errors import ConfigError

log = logging.getLogger("devtools.host")

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTING_REFERENCE = re.compile(r"^%([^%]+)%$")
SETTLE_TIMEOUT_SECONDS = 60.0
RECEIVE_WAIT_SECONDS = 1.0


# ---- settings ---------------------------------------------------------------------------


def apply_local_settings(path: Path | None) -> Path | None:
    """Put a local.settings.json's Values into the environment (existing variables win)."""
    candidates = [path] if path else [REPO_ROOT / "local.settings.json"]
    if path is None:
        candidates.append(REPO_ROOT / "local.settings.sample.json")
    for candidate in candidates:
        if candidate is not None and candidate.exists():
            for name, value in read_local_settings(candidate).items():
                os.environ.setdefault(name, value)
            return candidate
    if path is not None:
        raise ConfigError(f"settings file {path} does not exist")
    return None


@dataclass(frozen=True)
class ServiceBusOptions:
    """The host.json knobs this host honours (extensions.serviceBus)."""

    max_concurrent_calls: int = 16
    prefetch_count: int = 0
    max_auto_lock_renewal_seconds: float = 300.0

    @classmethod
    def from_host_json(cls, path: Path) -> ServiceBusOptions:
        if not path.exists():
            return cls()
        section = json.loads(path.read_text()).get("extensions", {}).get("serviceBus", {})
        return cls(
            max_concurrent_calls=int(section.get("maxConcurrentCalls", 16)),
            prefetch_count=int(section.get("prefetchCount", 0)),
            max_auto_lock_renewal_seconds=_timespan_seconds(
                section.get("maxAutoLockRenewalDuration", "00:05:00")
            ),
        )


def _timespan_seconds(value: str) -> float:
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def resolve_setting(value: str) -> str:
    """`%NAME%` in a binding means the app setting NAME, as in the real host."""
    match = SETTING_REFERENCE.match(value)
    if not match:
        return value
    name = match.group(1)
    if name not in os.environ:
        raise ConfigError(f"binding refers to app setting {name}, which is not set")
    return os.environ[name]


# ---- message actions backed by an SDK receiver -------------------------------------------


class ReceiverMessageActions:
    """The Functions `ServiceBusMessageActions` surface (blocking calls), done by a receiver.

    The real actions are blocking gRPC calls; the workers call them from a thread, so these
    hand the settlement to the host's event loop and wait for it.
    """

    def __init__(self, receiver: ServiceBusReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self._receiver = receiver
        self._loop = loop

    def _run(self, operation: Awaitable[Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(_awaited(operation), self._loop)
        return future.result(SETTLE_TIMEOUT_SECONDS)

    def complete(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.complete_message(message))

    def abandon(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.abandon_message(message))

    def deadletter(
        self,
        message: ServiceBusReceivedMessage,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self._run(
            self._receiver.dead_letter_message(
                message, reason=deadletter_reason, error_description=deadletter_error_description
            )
        )

    def defer(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.defer_message(message))

    def renew_message_lock(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.renew_message_lock(message))


async def _awaited(operation: Awaitable[Any]) -> Any:
    return await operation


# ---- the function list --------------------------------------------------------------------


@dataclass(frozen=True)
class QueueTrigger:
    name: str
    function: Callable[..., Awaitable[None]]
    queue_name: str
    connection_setting: str
    message_param: str
    actions_param: str | None


@dataclass(frozen=True)
class TimerTrigger:
    name: str
    function: Callable[..., Awaitable[None]]
    schedule: str
    run_on_startup: bool
    timer_param: str


def discover(app: Any) -> tuple[list[QueueTrigger], list[TimerTrigger]]:
    """Read triggers from the app's own function list, as the real host's indexer does."""
    queues: list[QueueTrigger] = []
    timers: list[TimerTrigger] = []
    for function in app.get_functions():
        metadata = json.loads(function.get_function_json())
        trigger = next(b for b in metadata["bindings"] if b["type"].endswith("Trigger"))
        user_function = function.get_user_function()
        if trigger["type"] == "serviceBusTrigger":
            if "queueName" not in trigger:
                raise ConfigError(f"{function.get_function_name()}: only queue triggers run here")
            if trigger.get("autoCompleteMessages", True):
                raise ConfigError(
                    f"{function.get_function_name()}: this host settles only through message "
                    "actions; set auto_complete_messages=False"
                )
            queues.append(
                QueueTrigger(
                    name=function.get_function_name(),
                    function=user_function,
                    queue_name=resolve_setting(trigger["queueName"]),
                    connection_setting=trigger["connection"],
                    message_param=trigger["name"],
                    actions_param=_actions_param(user_function),
                )
            )
        elif trigger["type"] == "timerTrigger":
            timers.append(
                TimerTrigger(
                    name=function.get_function_name(),
                    function=user_function,
                    schedule=resolve_setting(trigger["schedule"]),
                    run_on_startup=bool(trigger.get("runOnStartup", False)),
                    timer_param=trigger["name"],
                )
            )
    return queues, timers


def _actions_param(function: Callable[..., Any]) -> str | None:
    for name, parameter in inspect.signature(function).parameters.items():
        annotation = parameter.annotation
        type_name = (
            annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        )
        if "ServiceBusMessageActions" in str(type_name):
            return name
    return None


# ---- running triggers ---------------------------------------------------------------------


async def run_queue_trigger(
    trigger: QueueTrigger,
    client: ServiceBusClient,
    options: ServiceBusOptions,
    stopping: asyncio.Event,
) -> None:
    renewer = AutoLockRenewer(max_lock_renewal_duration=options.max_auto_lock_renewal_seconds)
    try:
        await asyncio.gather(
            *(
                _competing_receiver(trigger, client, options, renewer, stopping, slot)
                for slot in range(options.max_concurrent_calls)
            )
        )
    finally:
        await renewer.close()


async def _competing_receiver(
    trigger: QueueTrigger,
    client: ServiceBusClient,
    options: ServiceBusOptions,
    renewer: AutoLockRenewer,
    stopping: asyncio.Event,
    slot: int,
) -> None:
    """One receiver handling one message at a time; N of them give N concurrent calls."""
    loop = asyncio.get_running_loop()
    while not stopping.is_set():
        try:
            async with client.get_queue_receiver(
                trigger.queue_name, prefetch_count=options.prefetch_count
            ) as receiver:
                actions = ReceiverMessageActions(receiver, loop)
                while not stopping.is_set():
                    messages = await receiver.receive_messages(
                        max_message_count=1, max_wait_time=RECEIVE_WAIT_SECONDS
                    )
                    for message in messages:
                        renewer.register(receiver, message)
                        await _invoke(trigger, message, actions)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s receiver %d failed; reconnecting in 1 s", trigger.name, slot)
            await asyncio.sleep(1.0)


async def _invoke(
    trigger: QueueTrigger, message: ServiceBusReceivedMessage, actions: ReceiverMessageActions
) -> None:
    kwargs: dict[str, Any] = {trigger.message_param: message}
    if trigger.actions_param:
        kwargs[trigger.actions_param] = actions
    try:
        await trigger.function(**kwargs)
    except Exception:
        # As in the real host: the invocation failed and is logged; settlement (if any) was
        # the function's job, and an unsettled message is redelivered when its lock expires.
        log.exception("Executed '%s' (Failed, message %s)", trigger.name, message.message_id)


@dataclass
class _TimerInfo:
    past_due: bool = False


async def run_timer_trigger(trigger: TimerTrigger, stopping: asyncio.Event) -> None:
    schedule = croniter(trigger.schedule, datetime.now(UTC), second_at_beginning=True)
    if trigger.run_on_startup:
        await _fire(trigger)
    while not stopping.is_set():
        due: datetime = schedule.get_next(datetime)
        delay = max(0.0, (due - datetime.now(UTC)).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
            return
        await _fire(trigger)


async def _fire(trigger: TimerTrigger) -> None:
    try:
        await trigger.function(**{trigger.timer_param: _TimerInfo()})
    except Exception:
        log.exception("Executed '%s' (Failed)", trigger.name)


# ---- HTTP -------------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop; the host, not uvicorn, owns the process signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# ---- the host ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HostOptions:
    host: str = "127.0.0.1"
    port: int = 7071
    settings: Path | None = None
    timers: bool = True


async def serve(options: HostOptions, module: ModuleType) -> None:
    queue_triggers, timer_triggers = discover(module.app)
    sb_options = ServiceBusOptions.from_host_json(REPO_ROOT / "host.json")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    server = _EmbeddedServer(
        uvicorn.Config(
            module.api, host=options.host, port=options.port, log_level="warning", lifespan="off"
        )
    )
    clients: dict[str, ServiceBusClient] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        server_task = asyncio.create_task(server.serve(), name="http")
        while not server.started:
            if server_task.done():
                await server_task
                raise SystemExit(f"could not serve HTTP on {options.host}:{options.port}")
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"host listening on http://{options.host}:{port}/api", flush=True)

        for trigger in queue_triggers:
            if trigger.connection_setting not in clients:
                clients[trigger.connection_setting] = ServiceBusClient.from_connection_string(
                    resolve_setting(f"%{trigger.connection_setting}%")
                )
            client = clients[trigger.connection_setting]
            tasks.append(
                asyncio.create_task(
                    run_queue_trigger(trigger, client, sb_options, stopping), name=trigger.name
                )
            )
            log.info(
                "%s: %d receivers on queue %s",
                trigger.name,
                sb_options.max_concurrent_calls,
                trigger.queue_name,
            )
        if options.timers:
            for timer in timer_triggers:
                tasks.append(
                    asyncio.create_task(run_timer_trigger(timer, stopping), name=timer.name)
                )
                log.info("%s: timer %s", timer.name, timer.schedule)

        await stopping.wait()
        log.info("stopping: finishing in-flight work")
    finally:
        stopping.set()
        server.should_exit = True
        await _drain(tasks, grace_seconds=30.0)
        for client in clients.values():
            await client.close()
        provider = getattr(module, "provider", None)
        if provider is not None:
            await provider.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server_task, 10.0)


async def _drain(tasks: list[asyncio.Task[None]], grace_seconds: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.host", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071, help="0 picks a free port")
    parser.add_argument("--settings", type=Path, help="a local.settings.json (default: ./)")
    parser.add_argument("--no-timers", action="store_true", help="do not run timer triggers")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    quiet = ("azure", "uamqp", "urllib3")
    configure_logging(args.log_level, {name: logging.WARNING for name in quiet})
    try:
        apply_local_settings(args.settings)
        sys.path.insert(0, str(REPO_ROOT))
        module = importlib.import_module("function_app")
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
