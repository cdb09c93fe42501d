"""One stored message and its state; how it goes out on the wire (annotations the SDK reads)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

from devtools.servicebus_emulator.codec import Sections, encode_message, ms_timestamp, sym


class State(Enum):
    AVAILABLE = "available"
    LOCKED = "locked"
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"
    DEFERRED_LOCKED = "deferred-locked"


@dataclass
class StoredMessage:
    sequence_number: int
    sections: Sections
    enqueued_at: float
    expires_at: float
    state: State = State.AVAILABLE
    delivery_count: int = 0
    scheduled_at: float | None = None
    lock_token: uuid.UUID | None = None
    locked_until: float = 0.0
    dead_letter: dict[str, Any] | None = None  # reason, description, source (DLQ copies)

    def wire(self, *, lock: bool) -> bytes:
        annotations: dict[Any, Any] = {
            sym("x-opt-sequence-number"): self.sequence_number,
            sym("x-opt-enqueued-time"): ms_timestamp(self.enqueued_at),
            sym("x-opt-message-state"): 1
            if self.state in (State.DEFERRED, State.DEFERRED_LOCKED)
            else 0,
        }
        if lock:
            annotations[sym("x-opt-locked-until")] = ms_timestamp(self.locked_until)
        if self.scheduled_at is not None:
            annotations[sym("x-opt-scheduled-enqueue-time")] = ms_timestamp(self.scheduled_at)
        app_properties = None
        if self.dead_letter is not None:
            annotations[sym("x-opt-deadletter-source")] = self.dead_letter["source"]
            app_properties = {
                "DeadLetterReason": self.dead_letter["reason"],
                "DeadLetterErrorDescription": self.dead_letter["description"],
            }
        return encode_message(
            self.sections,
            delivery_count=self.delivery_count,
            annotations=annotations,
            application_properties=app_properties,
        )
