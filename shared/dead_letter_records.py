"""What the dead-letter tools show and take: an entry, a selection, an action's report; and
the row a dead letter names, before anything is sent again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import NotFound
from shared.jobs import Job
from shared.store import JobStore


@dataclass(frozen=True)
class DeadLetterEntry:
    queue: str
    sequence_number: int
    message_id: str | None
    job_id: str | None
    attempt: int | None
    reason: str | None
    description: str | None
    enqueued_at: datetime | None
    delivery_count: int | None
    body: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "body" or v is not None}
        if self.enqueued_at is not None:
            data["enqueued_at"] = self.enqueued_at.isoformat()
        return data


@dataclass
class ActionReport:
    queue: str
    action: str
    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "action": self.action,
            "done": self.done,
            "skipped": {str(k): v for k, v in self.skipped.items()},
            "failed": {str(k): v for k, v in self.failed.items()},
        }


@dataclass(frozen=True)
class Selection:
    """Which dead letters an action applies to: all, some sequence numbers, or one reason."""

    sequence_numbers: frozenset[int] | None = None
    reason: str | None = None
    limit: int = 100

    def matches(self, entry: DeadLetterEntry) -> bool:
        if self.sequence_numbers is not None and entry.sequence_number not in self.sequence_numbers:
            return False
        return self.reason is None or entry.reason == self.reason


async def live_row(store: JobStore, job_id: str) -> Job | str:
    """The job row a dead letter names, or why there is none to send it again for."""
    try:
        job = await store.get(job_id)
    except NotFound:
        return f"job {job_id} has no status row; purge it"
    if job.deleted_at is not None:
        return f"job {job.id} was deleted; purge it"
    return job
