"""What the local host reads before it runs anything: settings, host.json, the function list.

It follows the Azure Functions host where the two can differ: `%NAME%` is resolved anywhere in
a binding string, a binding that names a missing setting fails that function only, and
host.json durations are .NET TimeSpans (`[d.]hh:mm:ss[.fffffff]`).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config import read_local_settings
from shared.errors import ConfigError

log = logging.getLogger("devtools.host")

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTING_REFERENCE = re.compile(r"%([^%]+)%")
TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


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


def timespan_seconds(value: str) -> float:
    """A .NET TimeSpan as host.json writes it: `hh:mm:ss`, with optional days and fraction."""
    match = TIMESPAN.match(value.strip())
    if not match:
        raise ConfigError(f"{value!r} is not a duration like 00:05:00 or 1.00:00:00")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


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
            max_auto_lock_renewal_seconds=timespan_seconds(
                section.get("maxAutoLockRenewalDuration", "00:05:00")
            ),
        )


def resolve_setting(value: str, env: Mapping[str, str] | None = None) -> str:
    """Every `%NAME%` in a binding value replaced by the app setting NAME, as the real host
    does. A missing setting raises ConfigError naming it."""
    env = os.environ if env is None else env

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"binding refers to app setting {name}, which is not set")
        return env[name]

    return SETTING_REFERENCE.sub(lookup, value)


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


@dataclass(frozen=True)
class FunctionList:
    queues: list[QueueTrigger]
    timers: list[TimerTrigger]
    failed: dict[str, str]  # function name -> why it cannot run (the others still do)
    disabled: list[str] = field(default_factory=list)  # AzureWebJobs.<name>.Disabled


def is_disabled(name: str, env: Mapping[str, str]) -> bool:
    """`AzureWebJobs.<function>.Disabled` = true stops one function, as in Azure, without a
    redeploy (consumption paused; the rest of the app keeps running)."""
    return env.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in ("true", "1")


def discover(app: Any, env: Mapping[str, str] | None = None) -> FunctionList:
    """Read triggers from the app's own function list, as the real host's indexer does."""
    found = FunctionList([], [], {})
    settings = os.environ if env is None else env
    for function in app.get_functions():
        name = function.get_function_name()
        if is_disabled(name, settings):
            found.disabled.append(name)
            log.warning("function %s is disabled (AzureWebJobs.%s.Disabled)", name, name)
            continue
        try:
            _add(found, function, env)
        except ConfigError as exc:
            found.failed[name] = exc.message
            log.error("function %s will not run: %s", name, exc.message)
    return found


def _add(found: FunctionList, function: Any, env: Mapping[str, str] | None) -> None:
    metadata = json.loads(function.get_function_json())
    trigger = next(b for b in metadata["bindings"] if b["type"].endswith("Trigger"))
    user_function = function.get_user_function()
    name = function.get_function_name()
    if trigger["type"] == "serviceBusTrigger":
        if "queueName" not in trigger:
            raise ConfigError("only queue triggers run here (no topics)")
        if trigger.get("autoCompleteMessages", True):
            raise ConfigError(
                "this host settles only through message actions; set auto_complete_messages=False"
            )
        found.queues.append(
            QueueTrigger(
                name=name,
                function=user_function,
                queue_name=resolve_setting(trigger["queueName"], env),
                connection_setting=resolve_setting(trigger["connection"], env),
                message_param=trigger["name"],
                actions_param=_actions_param(user_function),
            )
        )
    elif trigger["type"] == "timerTrigger":
        found.timers.append(
            TimerTrigger(
                name=name,
                function=user_function,
                schedule=resolve_setting(trigger["schedule"], env),
                run_on_startup=bool(trigger.get("runOnStartup", False)),
                timer_param=trigger["name"],
            )
        )


def _actions_param(function: Callable[..., Any]) -> str | None:
    for name, parameter in inspect.signature(function).parameters.items():
        annotation = parameter.annotation
        type_name = (
            annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        )
        if "ServiceBusMessageActions" in str(type_name):
            return name
    return None
