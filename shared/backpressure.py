"""Backpressure: refuse new jobs of a type while its queue is too deep to drain soon.

Depths come from Service Bus's runtime properties (the administration client; the local
emulator answers the same API), cached for a few seconds per instance. Only the first read
of a queue is waited for: after that a submit gets the last depth at once, and a stale one
starts a refresh in the background, so the management API is never on the hot path. The
check fails open: when the depths cannot be read, submits go on (the send itself still fails
loudly if Service Bus is really down) and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ServiceUnavailable
from shared.jobs import JobType, Priority

log = logging.getLogger(__name__)

READ_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class QueueDepth:
    active: int
    dead_letter: int
    scheduled: int

    def as_dict(self) -> dict[str, int]:
        return {"active": self.active, "dead_letter": self.dead_letter, "scheduled": self.scheduled}


class QueueDepths:
    """Runtime message counts per queue, read through `admin` (an aio
    ServiceBusAdministrationClient) and cached for `cache_seconds`."""

    def __init__(
        self,
        admin: Any,
        queue_names: Mapping[JobType, str],
        cache_seconds: float,
        high_queue_names: Mapping[JobType, str] | None = None,
    ):
        self._admin = admin
        self._queues = dict(queue_names)
        self._high_queues = dict(high_queue_names or queue_names)
        self._cache_seconds = cache_seconds
        self._cached: dict[str, tuple[float, QueueDepth | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def of(
        self, job_type: JobType, priority: Priority = Priority.NORMAL
    ) -> QueueDepth | None:
        """The queue's depth; None when it cannot be read now (the error is logged)."""
        queues = self._high_queues if priority is Priority.HIGH else self._queues
        return await self.of_name(queues[job_type])

    async def of_name(self, queue: str) -> QueueDepth | None:
        cached = self._cached.get(queue)
        if cached is not None:
            if cached[0] <= time.monotonic() and queue not in self._refreshing:
                task = asyncio.create_task(self._refresh(queue))
                self._refreshing[queue] = task
                task.add_done_callback(lambda _: self._refreshing.pop(queue, None))
            return cached[1]
        # The first read: one per queue at a time; the others use its answer.
        async with self._locks.setdefault(queue, asyncio.Lock()):
            if queue not in self._cached:
                await self._refresh(queue)
        return self._cached[queue][1]

    async def _refresh(self, queue: str) -> None:
        depth = await self._read(queue)
        self._cached[queue] = (time.monotonic() + self._cache_seconds, depth)

    def latest(self) -> dict[str, tuple[int, int]]:
        """The last depths read, {queue: (active, dead-lettered)}, with no I/O (for gauges)."""
        return {
            queue: (depth.active, depth.dead_letter)
            for queue, (_, depth) in self._cached.items()
            if depth is not None
        }

    async def all(self) -> dict[str, QueueDepth | None]:
        names = list(dict.fromkeys([*self._queues.values(), *self._high_queues.values()]))
        depths = await asyncio.gather(*(self.of_name(name) for name in names))
        return dict(zip(names, depths, strict=True))

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        await self._admin.close()

    async def _read(self, queue: str) -> QueueDepth | None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                props = await self._admin.get_queue_runtime_properties(queue)
        except Exception as exc:  # any failure: fail open, say why
            log.warning("could not read the depth of queue %s: %s", queue, exc)
            return None
        return QueueDepth(
            active=int(props.active_message_count or 0),
            dead_letter=int(props.dead_letter_message_count or 0),
            scheduled=int(props.scheduled_message_count or 0),
        )


class Backpressure:
    """Refuses submits of a type whose queue holds more than `max_active` active messages
    (for a high-priority job, the type's high queue: a normal backlog does not refuse it)."""

    def __init__(self, depths: QueueDepths, max_active: int, retry_after: float = 30.0) -> None:
        self.depths = depths
        self._max_active = max_active
        self._retry_after = retry_after

    async def check(self, job_type: JobType, priority: Priority = Priority.NORMAL) -> None:
        if self._max_active <= 0:
            return
        depth = await self.depths.of(job_type, priority)
        if depth is not None and depth.active > self._max_active:
            which = job_type.value if priority is Priority.NORMAL else f"{job_type.value} high"
            raise ServiceUnavailable(
                f"the {which} queue holds {depth.active} jobs, over its limit of "
                f"{self._max_active}; nothing was submitted: retry later",
                retry_after=self._retry_after,
                code="queue_full",
            )
