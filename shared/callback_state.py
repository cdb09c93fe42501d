"""Where a job's completion callback stands: pending, delivered, or given up (failed).

Kept on the job's row (one JSON column) beside its status, but written only by the callback
path: a callback never changes a job's status or result.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class CallbackStatus(StrEnum):
    PENDING = "pending"  # the job finished; a delivery is queued or being retried
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: attempts used up, or the endpoint was refused


@dataclass(frozen=True)
class CallbackState:
    status: CallbackStatus
    token: str  # one per terminal status reached: tells this round's messages from older ones
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @classmethod
    def pending(cls) -> CallbackState:
        return cls(status=CallbackStatus.PENDING, token=uuid.uuid4().hex[:12])

    def attempted(
        self,
        status: CallbackStatus,
        at: datetime,
        *,
        code: int | None,
        error: str | None,
        next_at: datetime | None = None,
    ) -> CallbackState:
        return replace(
            self,
            status=status,
            attempts=self.attempts + 1,
            last_status_code=code,
            last_error=None if error is None else error[:500],
            last_attempt_at=at,
            next_attempt_at=next_at,
            delivered_at=at if status is CallbackStatus.DELIVERED else None,
        )

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CallbackState:
        data = json.loads(text)
        for name in ("last_attempt_at", "next_attempt_at", "delivered_at"):
            if data.get(name):
                data[name] = datetime.fromisoformat(data[name])
        data["status"] = CallbackStatus(data["status"])
        return cls(**data)
