"""Reads the official Service Bus emulator's Config.json: namespaces, queues and properties.

Every problem is reported with where it is: file:line:column for JSON syntax, the JSON path
for unknown property names, wrong types and bad ISO-8601 durations.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
FOREVER = 10 * 365 * 24 * 3600.0


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class QueueSettings:
    """One queue's properties. The defaults are those of queues created on first use."""

    max_delivery_count: int = 10
    lock_duration: float = 60.0
    default_ttl: float = FOREVER
    dead_letter_on_expiration: bool = False
    requires_duplicate_detection: bool = False
    duplicate_window: float = 600.0
    forward_to: str = ""
    forward_dead_lettered_to: str = ""
    requires_session: bool = False
    # From the namespace's tier ("Sku": Standard 256 KB, Premium 100 MB), not a queue property.
    max_message_bytes: int = 256 * 1024


# The largest message each tier takes (the Premium limit is the most it can be raised to).
MAX_MESSAGE_BYTES_BY_SKU = {"Standard": 256 * 1024, "Premium": 100 * 1024 * 1024}


# Config.json property name -> (QueueSettings field, expected type)
_PROPERTIES: dict[str, tuple[str, type]] = {
    "MaxDeliveryCount": ("max_delivery_count", int),
    "LockDuration": ("lock_duration", float),
    "DefaultMessageTimeToLive": ("default_ttl", float),
    "DeadLetteringOnMessageExpiration": ("dead_letter_on_expiration", bool),
    "RequiresDuplicateDetection": ("requires_duplicate_detection", bool),
    "DuplicateDetectionHistoryTimeWindow": ("duplicate_window", float),
    "ForwardTo": ("forward_to", str),
    "ForwardDeadLetteredMessagesTo": ("forward_dead_lettered_to", str),
    "RequiresSession": ("requires_session", bool),
}
assert {f for f, _ in _PROPERTIES.values()} | {"max_message_bytes"} == {
    f.name for f in fields(QueueSettings)
}


def parse_duration(text: str) -> float:
    """ISO-8601 duration (PT1M, PT0.5S, P14D, PT1H30M) -> seconds."""
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"{text!r} is not an ISO-8601 duration such as PT1M or P14D")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (
        parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


def load_config(path: Path) -> dict[str, QueueSettings]:
    """Queue name -> settings, for every queue of every namespace in the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(document, str(path))


def parse_config(document: Any, source: str = "config") -> dict[str, QueueSettings]:
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {where}: {problem}")

    user = _object(document, "$", fail).get("UserConfig")
    user = _object(user, "$.UserConfig", fail)
    namespaces = user.get("Namespaces")
    if not isinstance(namespaces, list):
        raise fail("$.UserConfig.Namespaces", "expected a list of namespaces")
    queues: dict[str, QueueSettings] = {}
    for n, namespace in enumerate(namespaces):
        where = f"$.UserConfig.Namespaces[{n}]"
        namespace = _object(namespace, where, fail)
        unknown = set(namespace) - {"Name", "Queues", "Topics", "Sku"}
        if unknown:
            raise fail(where, f"unknown properties {sorted(unknown)}")
        sku = namespace.get("Sku", "Standard")
        if sku not in MAX_MESSAGE_BYTES_BY_SKU:
            raise fail(f"{where}.Sku", f"expected one of {sorted(MAX_MESSAGE_BYTES_BY_SKU)}")
        if namespace.get("Topics"):
            log.warning("%s: topics are not supported by this emulator and are ignored", where)
        for q, queue in enumerate(namespace.get("Queues") or []):
            queue_where = f"{where}.Queues[{q}]"
            queue = _object(queue, queue_where, fail)
            name = queue.get("Name")
            if not isinstance(name, str) or not name:
                raise fail(f"{queue_where}.Name", "a queue needs a non-empty string Name")
            if name in queues:
                raise fail(f"{queue_where}.Name", f"queue {name!r} is declared twice")
            unknown = set(queue) - {"Name", "Properties"}
            if unknown:
                raise fail(queue_where, f"unknown properties {sorted(unknown)}")
            queues[name] = replace(
                _queue_settings(
                    _object(queue.get("Properties", {}), f"{queue_where}.Properties", fail),
                    f"{queue_where}.Properties",
                    fail,
                ),
                max_message_bytes=MAX_MESSAGE_BYTES_BY_SKU[sku],
            )
    _check_forwarding(queues, fail)
    return queues


def _check_forwarding(queues: dict[str, QueueSettings], fail: Any) -> None:
    """Forwarding targets must be other declared queues, and ForwardTo must not loop."""
    known = {name.lower(): name for name in queues}
    for name, settings in queues.items():
        for key, target in (
            ("ForwardTo", settings.forward_to),
            ("ForwardDeadLetteredMessagesTo", settings.forward_dead_lettered_to),
        ):
            where = f"queue {name!r} {key}"
            if target and target.lower() not in known:
                raise fail(where, f"{target!r} is not a queue declared in this file")
            if target and target.lower() == name.lower():
                raise fail(where, "a queue cannot forward to itself")
        chain, current = [name], settings.forward_to
        while current:
            if current.lower() in (c.lower() for c in chain):
                raise fail(f"queue {name!r} ForwardTo", "loops: " + " -> ".join([*chain, current]))
            next_queue = known[current.lower()]
            chain.append(next_queue)
            current = queues[next_queue].forward_to


def _queue_settings(properties: dict[str, Any], where: str, fail: Any) -> QueueSettings:
    values: dict[str, Any] = {}
    for key, value in properties.items():
        if key not in _PROPERTIES:
            known = ", ".join(sorted(_PROPERTIES))
            raise fail(f"{where}.{key}", f"unknown property; known properties: {known}")
        field_name, kind = _PROPERTIES[key]
        if kind is float:
            if not isinstance(value, str):
                raise fail(f"{where}.{key}", "expected an ISO-8601 duration string like PT1M")
            try:
                values[field_name] = parse_duration(value)
            except ValueError as exc:
                raise fail(f"{where}.{key}", str(exc)) from exc
        elif kind is int:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise fail(f"{where}.{key}", "expected a whole number >= 1")
            values[field_name] = value
        elif not isinstance(value, kind):
            raise fail(f"{where}.{key}", f"expected a {kind.__name__}")
        else:
            values[field_name] = value
    settings = QueueSettings(**values)
    if settings.requires_session:
        log.warning(
            "%s: RequiresSession is not supported: the queue works without sessions and "
            "session receivers are refused",
            where,
        )
    return settings


def _object(value: Any, where: str, fail: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, "expected a JSON object")
    return value
