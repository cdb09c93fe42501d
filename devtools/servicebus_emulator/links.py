"""Link-level pieces of the broker: who is attached, and reading what the client sent."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from proton import Condition, Delivery, Link

from devtools.servicebus_emulator.entities import Queue

SESSION_FILTER = "com.microsoft:session-filter"


@dataclass
class Consumer:
    link: Link
    queue: Queue
    presettled: bool


@dataclass
class ReplyLink:
    link: Link
    pending: deque[bytes] = field(default_factory=deque)


def dead_letter_details(condition: Condition | None) -> tuple[str, str]:
    if condition is None:
        return "", ""
    info: dict[Any, Any] = condition.info if isinstance(condition.info, dict) else {}
    reason = info.get("DeadLetterReason") or info.get("deadletter-reason") or ""
    description = (
        info.get("DeadLetterErrorDescription")
        or info.get("deadletter-description")
        or condition.description
        or ""
    )
    return str(reason), str(description)


def wants_session(link: Link) -> bool:
    """Whether a receiving client asked for a session (the SDK sends a session filter)."""
    try:
        filters = link.remote_source.filter
        filters.rewind()
        if not filters.next():
            return False
        value = filters.get_object()
    except Exception:
        return False
    return isinstance(value, dict) and any(str(key) == SESSION_FILTER for key in value)


def new_delivery(link: Link, tag: bytes) -> Delivery:
    # proton accepts binary delivery tags (the lock token's 16 bytes); its hints say str.
    return link.delivery(tag)  # type: ignore[arg-type]


def norm(address: str) -> str:
    if "://" in address:
        address = urlparse(address).path
    return address.strip("/").lower()
