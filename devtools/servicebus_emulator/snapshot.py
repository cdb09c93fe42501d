"""Queue counts for the administration endpoint, read on the reactor thread.

The HTTP server runs on threads of its own while every queue is owned by the proton reactor.
A reader never touches a queue: it injects an event into the reactor, which takes the
snapshot between two AMQP events (so every send or settlement the broker has answered is in
it) and hands the result back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from proton import Delivery, Disposition
from proton.reactor import ApplicationEvent, EventInjector

from devtools.servicebus_emulator.codec import Sections
from devtools.servicebus_emulator.config import QueueSettings
from devtools.servicebus_emulator.entities import Queue, State

SNAPSHOT_EVENT = "admin_snapshot"  # the broker handles it in on_admin_snapshot


@dataclass(frozen=True)
class QueueSnapshot:
    name: str
    settings: QueueSettings
    active: int  # available, locked and deferred messages, as Azure counts them
    scheduled: int
    dead_letters: int
    size_in_bytes: int
    created_at: float
    accessed_at: float  # 0.0: never sent to nor read from
    operations: dict[str, int]  # the queue's and its dead-letter queue's, by kind

    @property
    def total(self) -> int:
        return self.active + self.scheduled + self.dead_letters


def snapshot(queues: Iterable[Queue]) -> list[QueueSnapshot]:
    """Counts of every queue, sorted by name. Call on the reactor thread only."""
    taken = []
    for queue in queues:
        active = scheduled = size = 0
        for message in queue.messages.values():
            size += _size(message.sections)
            if message.state is State.SCHEDULED:
                scheduled += 1
            else:
                active += 1
        dead = queue.dead_letters
        dead_count = len(dead.messages) if dead is not None else 0
        if dead is not None:
            size += sum(_size(m.sections) for m in dead.messages.values())
        accessed = max(queue.accessed_at, dead.accessed_at if dead is not None else 0.0)
        taken.append(
            QueueSnapshot(
                name=queue.name,
                settings=queue.settings,
                active=active,
                scheduled=scheduled,
                dead_letters=dead_count,
                size_in_bytes=size,
                created_at=queue.created_at,
                accessed_at=accessed,
                operations=_operations(queue),
            )
        )
    return sorted(taken, key=lambda s: s.name.lower())


def _operations(queue: Queue) -> dict[str, int]:
    counts = dict(queue.operations)
    if queue.dead_letters is not None:
        for kind, count in queue.dead_letters.operations.items():
            counts[f"deadletterqueue:{kind}"] = count
    return counts


def _size(sections: Sections) -> int:
    """Bytes of what the sender wrote: properties, application properties and body."""
    return (
        len(sections.raw_properties)
        + len(sections.raw_application_properties)
        + len(sections.raw_body)
    )


class SnapshotTimeout(Exception):
    """The reactor did not answer in time (it is stopping, or stuck)."""


class _Request:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: list[QueueSnapshot] = []


class SnapshotBridge:
    """Lets any thread ask the reactor for a snapshot. Register `injector` with the container."""

    def __init__(self) -> None:
        self.injector = EventInjector()

    def request(self, timeout: float = 10.0) -> list[QueueSnapshot]:
        pending = _Request()
        self.injector.trigger(ApplicationEvent(SNAPSHOT_EVENT, subject=pending))
        if not pending.done.wait(timeout):
            raise SnapshotTimeout(f"no answer from the broker within {timeout} s")
        return pending.result

    @staticmethod
    def answer(subject: object, take: Callable[[], list[QueueSnapshot]]) -> None:
        """On the reactor thread: fill in the request carried by an injected event."""
        if isinstance(subject, _Request):
            try:
                subject.result = take()
            finally:
                subject.done.set()


def settlement_kind(state: Any, delivery: Delivery) -> str:
    """How a settlement is counted in a queue's operations."""
    kinds = {Disposition.ACCEPTED: "complete", Disposition.REJECTED: "dead_letter"}
    if state == Disposition.RELEASED:
        return "release"
    if state == Disposition.MODIFIED:
        return "defer" if delivery.remote.undeliverable else "abandon"
    return kinds.get(state, "settle")
