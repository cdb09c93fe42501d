"""Health of the parts a job needs: Table/Blob storage and Service Bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.servicebus.aio import ServiceBusClient

if TYPE_CHECKING:
    from shared.backpressure import QueueDepth, QueueDepths
    from shared.store import JobStore

CHECK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class DependencyHealth:
    name: str
    healthy: bool
    detail: str
    latency_ms: float


@dataclass(frozen=True)
class HealthReport:
    dependencies: list[DependencyHealth]
    queues: dict[str, QueueDepth | None]  # None: the depth could not be read

    @property
    def healthy(self) -> bool:
        return all(d.healthy for d in self.dependencies)


class HealthChecker:
    def __init__(
        self,
        store: JobStore,
        service_bus: ServiceBusClient,
        probe_queue: str,
        depths: QueueDepths,
    ) -> None:
        self._store = store
        self._service_bus = service_bus
        self._probe_queue = probe_queue
        self._depths = depths

    async def check(self) -> HealthReport:
        storage, service_bus, queues = await asyncio.gather(
            _timed("storage", self._store.ping()),
            _timed("service_bus", self._peek_probe_queue()),
            self._depths.all(),
        )
        return HealthReport([storage, service_bus], queues)

    async def _peek_probe_queue(self) -> None:
        # Peeking takes no lock and changes nothing; it proves auth, the link and the entity.
        async with self._service_bus.get_queue_receiver(self._probe_queue) as receiver:
            await receiver.peek_messages(max_message_count=1)


async def _timed(name: str, probe: Coroutine[Any, Any, None]) -> DependencyHealth:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return DependencyHealth(name, False, "timed out", _ms(started))
    except Exception as exc:  # any failure means unhealthy; say what it was
        return DependencyHealth(name, False, f"{type(exc).__name__}: {exc}", _ms(started))
    return DependencyHealth(name, True, "ok", _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
