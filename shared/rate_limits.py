"""Per-owner submit rate limits that hold across every instance of the app.

One Table row per (owner, job type) holds the current window: when it opened and how many
slots of it have been taken. An instance takes a block of slots (a lease) in one write under
the row's ETag and spends them locally, so most submits cost no Table transaction at all;
instances racing for the row never both take the last slots (a loser reloads and decides
again), so the row's count never passes the limit and "N per window" holds across all of
them. Slots leased and not spent by the time the window ends are lost, never carried over.

A lease is sized to this instance's demand, at least 1: its submits of the last
DEMAND_SECONDS, capped at 1/LEASE_SHARE of what the window has left, or, if more, the
submits waiting for the row right now (each spends a slot as soon as the lease is taken),
capped at half of what is left. So a caller submitting one at a time under a small limit
(fewer than 2 x LEASE_SHARE left: the default 10 a minute) is counted one slot per write,
exactly as without leases; slots that go unspent are never more than a small part of what
other instances could still use; and a burst on one instance takes the row a few times, not
once per submit.

A window opens at the first submit after the last one ended and lasts `window_seconds`, so
"N per minute" means at most N in any window, counted from the caller's first submit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections import deque
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
LEASE_SHARE = 8  # a lease takes at most 1/LEASE_SHARE of what the window has left
DEMAND_SECONDS = 1.0  # a lease covers about this long of the instance's recent submits
MAX_DEMAND = 4096  # submits remembered per row for sizing leases
RACE_PAUSE_SECONDS = 0.01


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
    count: int  # slots taken in the window, by every instance, as the row last said
    leased: int = 0  # of those, taken by this instance and not spent yet


class RateLimiter:
    def __init__(self, table: TableClient, *, window_seconds: int = 60) -> None:
        self._table = table
        self.window_seconds = window_seconds
        self._known: dict[str, _Window] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._recent: dict[str, deque[float]] = {}

    async def ensure_table(self) -> None:
        await ensure_table(self._table)

    async def acquire(self, owner: str, job_type: JobType, limit: int) -> RateDecision:
        """Count one submit, or raise Throttled when the window is full."""
        partition = _partition(owner, job_type)
        self._note_demand(partition)
        self._waiting[partition] = self._waiting.get(partition, 0) + 1
        waiting = True
        try:
            # One writer per row per instance: concurrent submits of one caller wait for
            # the lease being taken and then mostly spend it, with no write of their own.
            async with self._locks.setdefault(partition, asyncio.Lock()):
                self._waiting[partition] -= 1
                waiting = False
                return await self._take(partition, owner, job_type, limit)
        finally:
            if waiting:  # cancelled while waiting for the lock
                self._waiting[partition] -= 1

    async def _take(
        self, partition: str, owner: str, job_type: JobType, limit: int
    ) -> RateDecision:
        span = timedelta(seconds=self.window_seconds)
        for attempt in range(MAX_ATTEMPTS):
            if attempt:  # lost a race: a short random pause breaks a lock-step with the winner
                await asyncio.sleep(random.uniform(0, RACE_PAUSE_SECONDS * attempt))
            window = self._known.get(partition) or await self._read(partition)
            now = utcnow()
            if window is not None and now < window.opened_at + span:
                if window.leased > 0:  # a slot this instance already holds: no I/O
                    window.leased -= 1
                    return self._decision(window, limit, now)
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
                lease = self._lease_size(partition, limit - window.count)
                proposed = _Window(window.etag, window.opened_at, window.count + lease)
            else:
                lease = self._lease_size(partition, limit)
                proposed = _Window(window.etag if window else None, now, lease)
            written = await self._write(partition, owner, job_type, proposed)
            if written is not None:
                written.leased = lease - 1  # one slot is this submit's
                return self._decision(written, limit, now)
            self._known.pop(partition, None)  # lost a race: reload and decide again
        raise ServiceUnavailable(
            "the rate limit counter is contended; retry shortly",
            retry_after=1,
            code="rate_limit_contended",
        )

    def _decision(self, window: _Window, limit: int, now: datetime) -> RateDecision:
        left = (window.opened_at + timedelta(seconds=self.window_seconds) - now).total_seconds()
        return RateDecision(
            limit=limit,
            # What the window has left as this instance knows it (its unspent lease included).
            remaining=max(0, limit - window.count + window.leased),
            reset_seconds=max(1, math.ceil(left)),
            window_seconds=self.window_seconds,
        )

    def _note_demand(self, partition: str) -> None:
        recent = self._recent.setdefault(partition, deque(maxlen=MAX_DEMAND))
        now = time.monotonic()
        recent.append(now)
        while recent and recent[0] < now - DEMAND_SECONDS:
            recent.popleft()

    def _lease_size(self, partition: str, left: int) -> int:
        recent = len(self._recent.get(partition, ()))
        waiting = self._waiting.get(partition, 0) + 1  # this submit and those behind it
        return max(1, min(recent, left // LEASE_SHARE), min(waiting, left // 2))

    async def _read(self, partition: str) -> _Window | None:
        try:
            entity = await self._table.get_entity(partition, ROW_KEY)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise ServiceUnavailable(f"could not read the rate limit counter: {exc}") from exc
        return _Window(entity.metadata.get("etag"), entity["opened_at"], int(entity["count"]))

    async def _write(
        self, partition: str, owner: str, job_type: JobType, w: _Window
    ) -> _Window | None:
        """The window as written (now the known one), or None when the row changed first."""
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
            return None
        except AzureError as exc:
            raise ServiceUnavailable(f"could not update the rate limit counter: {exc}") from exc
        written = _Window(meta.get("etag"), w.opened_at, w.count)
        self._known[partition] = written
        return written


def _partition(owner: str, job_type: JobType) -> str:
    # Table keys forbid '/', '\\', '#', '?' and control characters: hash the owner.
    return f"{hashlib.sha256(owner.encode()).hexdigest()[:40]}-{job_type.value}"
