"""Intake switches: pause submits of one job type without a redeploy.

One Table row per job type (PartitionKey "intake", RowKey = the type) says whether its
submits are paused, why, by whom and since when. Every instance reads the whole partition
at most once per INTAKE_CACHE_SECONDS (default 5), so a switch set anywhere reaches every
instance within that time; the instance that set it sees it at once. A paused type's
submits get 503 with Retry-After before anything is written. When the table cannot be
read, submits go on (fail open, as backpressure does) and the failure is remembered for
the cache period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.errors import ServiceUnavailable
from shared.jobs import JobType, utcnow
from shared.tables import ensure_table

log = logging.getLogger(__name__)

PARTITION = "intake"
READ_TIMEOUT_SECONDS = 2.0
PAUSED_RETRY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class IntakeSwitch:
    job_type: JobType
    paused: bool = False
    reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.job_type.value,
            "paused": self.paused,
            "reason": self.reason,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }


class IntakeSwitches:
    def __init__(self, table: TableClient, cache_seconds: float = 5.0) -> None:
        self._table = table
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, dict[JobType, IntakeSwitch] | None] | None = None
        self._lock = asyncio.Lock()

    async def ensure_table(self) -> None:
        await ensure_table(self._table)

    async def check(self, job_type: JobType) -> None:
        """Raise ServiceUnavailable (503, code intake_paused) when `job_type` is paused."""
        switches = await self._cached_switches()
        switch = switches.get(job_type) if switches is not None else None
        if switch is not None and switch.paused:
            why = f" ({switch.reason})" if switch.reason else ""
            raise ServiceUnavailable(
                f"submits of {job_type.value} jobs are paused by an operator{why}; nothing "
                "was submitted: retry later",
                retry_after=PAUSED_RETRY_AFTER_SECONDS,
                code="intake_paused",
            )

    async def all(self) -> list[IntakeSwitch]:
        """Every type's switch, read now (not from the cache)."""
        switches = await self._read(strict=True)
        assert switches is not None
        return [switches.get(t, IntakeSwitch(t)) for t in JobType]

    async def set(
        self, job_type: JobType, *, paused: bool, reason: str | None, actor: str
    ) -> IntakeSwitch:
        switch = IntakeSwitch(job_type, paused, reason, actor, utcnow())
        entity = {
            "PartitionKey": PARTITION,
            "RowKey": job_type.value,
            "paused": paused,
            "reason": reason or "",
            "changed_by": actor,
            "changed_at": switch.changed_at,
        }
        try:
            await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as exc:
            raise ServiceUnavailable(f"could not write the intake switch: {exc}") from exc
        self._cached = None  # this instance sees its own change at once
        log.warning(
            "intake of %s %s by %s", job_type.value, "paused" if paused else "resumed", actor
        )
        return switch

    async def _cached_switches(self) -> dict[JobType, IntakeSwitch] | None:
        cached = self._cached
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._lock:  # one read at a time; the others use its answer
            cached = self._cached
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            switches = await self._read(strict=False)
            self._cached = (time.monotonic() + self.cache_seconds, switches)
            return switches

    async def _read(self, *, strict: bool) -> dict[JobType, IntakeSwitch] | None:
        found: dict[JobType, IntakeSwitch] = {}
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                async for entity in self._table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": PARTITION}
                ):
                    switch = _from_entity(entity)
                    if switch is not None:
                        found[switch.job_type] = switch
        except (AzureError, TimeoutError) as exc:
            if strict:
                raise ServiceUnavailable(f"could not read the intake switches: {exc}") from exc
            log.warning("could not read the intake switches (submits go on): %s", exc)
            return None
        return found


def _from_entity(entity: Any) -> IntakeSwitch | None:
    try:
        job_type = JobType(entity["RowKey"])
    except ValueError:
        return None
    return IntakeSwitch(
        job_type=job_type,
        paused=bool(entity.get("paused", False)),
        reason=entity.get("reason") or None,
        changed_by=entity.get("changed_by"),
        changed_at=entity.get("changed_at"),
    )
