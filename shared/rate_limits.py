"""Per-owner submit rate limits that hold across every instance of the app.

One Table row per (owner, job type) holds the current window: when it opened and how many
submits it has counted. Each submit adds one under the row's ETag, so instances racing for
the same row never both take the last slot (a loser reloads and decides again). Each
instance keeps the row's last ETag and count, so a submit normally costs one Table write and
no read; a caller already over its limit costs nothing until the window ends.

A window opens at the first submit after the last one ended and lasts `window_seconds`, so
"N per minute" means at most N in any window, counted from the caller's first submit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.errors import ServiceUnavailable, Throttled
from shared.jobs import JobType, utcnow
from shared.tables import ensure_table

log = logging.getLogger(__name__)

ROW_KEY = "window"
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class RateDecision:
    """A submit that was let through, and what is left of its window (RateLimit-* headers)."""

    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: int


@dataclass
class _Window:
    etag: str | None  # None: no row yet
    opened_at: datetime
    count: int


class RateLimiter:
    def __init__(self, table: TableClient, *, window_seconds: int = 60) -> None:
        self._table = table
        self.window_seconds = window_seconds
        self._known: dict[str, _Window] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure_table(self) -> None:
        await ensure_table(self._table)

    async def acquire(self, owner: str, job_type: JobType, limit: int) -> RateDecision:
        """Count one submit, or raise Throttled when the window is full."""
        partition = _partition(owner, job_type)
        # One writer per row per instance: without it, concurrent submits of one caller
        # would mostly lose ETag races to each other.
        async with self._locks.setdefault(partition, asyncio.Lock()):
            for _ in range(MAX_ATTEMPTS):
                window = self._known.get(partition) or await self._read(partition)
                now = utcnow()
                span = timedelta(seconds=self.window_seconds)
                if window is not None and now < window.opened_at + span:
                    if window.count >= limit:
                        # A cached count can only be low, never high: this is safe to trust.
                        left = (window.opened_at + span - now).total_seconds()
                        raise Throttled(
                            f"{owner} may submit {limit} {job_type.value} jobs per "
                            f"{self.window_seconds} s; try again in {math.ceil(left)} s",
                            retry_after=left,
                            limit=limit,
                            window_seconds=self.window_seconds,
                        )
                    proposed = _Window(window.etag, window.opened_at, window.count + 1)
                else:
                    proposed = _Window(window.etag if window else None, now, 1)
                if await self._write(partition, owner, job_type, proposed):
                    left = (proposed.opened_at + span - now).total_seconds()
                    return RateDecision(
                        limit=limit,
                        remaining=max(0, limit - proposed.count),
                        reset_seconds=max(1, math.ceil(left)),
                        window_seconds=self.window_seconds,
                    )
                self._known.pop(partition, None)  # lost a race: reload and decide again
        raise ServiceUnavailable(
            "the rate limit counter is contended; retry shortly",
            retry_after=1,
            code="rate_limit_contended",
        )

    async def _read(self, partition: str) -> _Window | None:
        try:
            entity = await self._table.get_entity(partition, ROW_KEY)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise ServiceUnavailable(f"could not read the rate limit counter: {exc}") from exc
        return _Window(entity.metadata.get("etag"), entity["opened_at"], int(entity["count"]))

    async def _write(self, partition: str, owner: str, job_type: JobType, w: _Window) -> bool:
        entity: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": ROW_KEY,
            "owner": owner,
            "type": job_type.value,
            "opened_at": w.opened_at,
            "count": w.count,
        }
        try:
            if w.etag is None:
                meta = await self._table.create_entity(entity)
            else:
                meta = await self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=w.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        except AzureError as exc:
            raise ServiceUnavailable(f"could not update the rate limit counter: {exc}") from exc
        self._known[partition] = _Window(meta.get("etag"), w.opened_at, w.count)
        return True


def _partition(owner: str, job_type: JobType) -> str:
    # Table keys forbid '/', '\\', '#', '?' and control characters: hash the owner.
    return f"{hashlib.sha256(owner.encode()).hexdigest()[:40]}-{job_type.value}"
