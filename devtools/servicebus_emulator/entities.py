"""Queue state: messages, sequence numbers, locks, scheduled and deferred messages, the
dead-letter sub-queue and duplicate detection. In memory; no I/O, no AMQP."""

from __future__ import annotations

import heapq
import logging
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from devtools.servicebus_emulator.codec import APPLICATION_PROPERTIES, Sections, encode_section, sym
from devtools.servicebus_emulator.config import QueueSettings
from devtools.servicebus_emulator.messages import State, StoredMessage

__all__ = ["LockLost", "MessageNotFound", "Queue", "State", "StoredMessage"]

log = logging.getLogger(__name__)

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
TTL_EXPIRED = "TTLExpiredException"
DLQ_SUFFIX = "/$deadletterqueue"


class LockLost(Exception):
    """The lock token is unknown or its lock expired (Service Bus: message-lock-lost)."""


class MessageNotFound(Exception):
    pass


@dataclass
class Queue:
    """One queue, or (with `is_dead_letter`) one queue's dead-letter sub-queue."""

    name: str
    settings: QueueSettings
    is_dead_letter: bool = False
    on_available: Callable[[Queue], None] = lambda queue: None
    # Finds a forwarding target (ForwardTo, ForwardDeadLetteredMessagesTo) by name.
    lookup: Callable[[str], Queue | None] = lambda name: None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    _available: list[int] = field(default_factory=list)  # heap of sequence numbers
    _scheduled: list[tuple[float, int]] = field(default_factory=list)
    _expiring: list[tuple[float, int]] = field(default_factory=list)
    _locks: dict[uuid.UUID, int] = field(default_factory=dict)
    _lock_deadlines: list[tuple[float, uuid.UUID]] = field(default_factory=list)
    _seen_ids: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _next_sequence: int = 1
    dead_letters: Queue | None = None
    # For the administration endpoint: when the queue was made, and last sent to or read from.
    created_at: float = field(default_factory=time.time)
    accessed_at: float = 0.0
    # Operations clients made on this entity, by kind (send, receive, complete, ...): what
    # Service Bus would bill. Counted by the broker; read through the admin endpoint.
    operations: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not self.is_dead_letter:
            self.dead_letters = Queue(
                self.name + DLQ_SUFFIX, self.settings, is_dead_letter=True,
                on_available=self.on_available,
            )  # fmt: skip

    # ---- arrival ------------------------------------------------------------------------

    def enqueue(self, sections: Sections, now: float | None = None) -> int | None:
        """Store a message; returns its sequence number, or None if dropped as a duplicate.

        With ForwardTo the message goes on to the target queue (after this queue's duplicate
        detection) and the number is the target's."""
        now = time.time() if now is None else now
        self.accessed_at = now
        if self.settings.requires_duplicate_detection and not self.is_dead_letter:
            self._forget_old_ids(now)
            message_id = sections.message_id
            if message_id is not None:
                if message_id in self._seen_ids:
                    log.info("%s: duplicate message id %s dropped", self.name, message_id)
                    return None
                self._seen_ids[message_id] = now
        target = self._forward_target(self.settings.forward_to)
        if target is not None:
            log.debug("%s: forwarding %s to %s", self.name, sections.message_id, target.name)
            return target.enqueue(sections, now)
        ttl = self.settings.default_ttl
        if sections.ttl_ms:
            ttl = min(ttl, sections.ttl_ms / 1000)
        scheduled = sections.annotations.get(sym("x-opt-scheduled-enqueue-time"))
        message = StoredMessage(
            sequence_number=self._take_sequence(),
            sections=sections,
            enqueued_at=now,
            expires_at=now + ttl,
        )
        self.messages[message.sequence_number] = message
        if scheduled is not None and int(scheduled) / 1000 > now:
            message.state = State.SCHEDULED
            message.scheduled_at = int(scheduled) / 1000
            heapq.heappush(self._scheduled, (message.scheduled_at, message.sequence_number))
        else:
            self._make_available(message)
        if not self.is_dead_letter:
            heapq.heappush(self._expiring, (message.expires_at, message.sequence_number))
        return message.sequence_number

    def add_dead_letter(
        self, message: StoredMessage, reason: str, description: str, source: str
    ) -> None:
        assert self.is_dead_letter
        copy = StoredMessage(
            sequence_number=self._take_sequence(),
            sections=message.sections,
            enqueued_at=message.enqueued_at,
            expires_at=float("inf"),
            delivery_count=message.delivery_count,
            dead_letter={"reason": reason, "description": description, "source": source},
        )
        self.messages[copy.sequence_number] = copy
        self._make_available(copy)
        log.info("%s: message %d dead-lettered (%s)", source, message.sequence_number, reason)

    def _take_sequence(self) -> int:
        sequence = self._next_sequence
        self._next_sequence += 1
        return sequence

    def _forget_old_ids(self, now: float) -> None:
        window = self.settings.duplicate_window
        while self._seen_ids:
            _, seen = next(iter(self._seen_ids.items()))
            if now - seen <= window:
                break
            self._seen_ids.popitem(last=False)

    def _make_available(self, message: StoredMessage) -> None:
        message.state = State.AVAILABLE
        message.lock_token = None
        heapq.heappush(self._available, message.sequence_number)
        self.on_available(self)

    # ---- delivery and settlement -------------------------------------------------------

    def next_available(self, now: float | None = None) -> StoredMessage | None:
        now = time.time() if now is None else now
        while self._available:
            sequence = heapq.heappop(self._available)
            message = self.messages.get(sequence)
            if message is None or message.state is not State.AVAILABLE:
                continue
            if message.expires_at <= now and not self.is_dead_letter:
                self._expire(message)
                continue
            return message
        return None

    def has_available(self) -> bool:
        """Whether a message is waiting (stale heap entries are dropped on the way)."""
        return self._prune_available()

    def _prune_available(self) -> bool:
        while self._available:
            message = self.messages.get(self._available[0])
            if message is not None and message.state is State.AVAILABLE:
                return True
            heapq.heappop(self._available)
        return False

    def lock(self, message: StoredMessage, now: float | None = None) -> uuid.UUID:
        now = time.time() if now is None else now
        self.accessed_at = now
        token = uuid.uuid4()
        message.lock_token = token
        message.locked_until = now + self.settings.lock_duration
        message.state = State.DEFERRED_LOCKED if message.state is State.DEFERRED else State.LOCKED
        self._locks[token] = message.sequence_number
        heapq.heappush(self._lock_deadlines, (message.locked_until, token))
        return token

    def remove(self, message: StoredMessage) -> None:
        """Take a message out for good (received in RECEIVE_AND_DELETE mode)."""
        self.accessed_at = time.time()
        self.messages.pop(message.sequence_number, None)

    def _locked(self, token: uuid.UUID, now: float | None = None) -> StoredMessage:
        now = time.time() if now is None else now
        self.accessed_at = now
        sequence = self._locks.get(token)
        message = self.messages.get(sequence) if sequence is not None else None
        if message is None or message.lock_token != token or message.locked_until <= now:
            raise LockLost(f"the lock {token} on a message in {self.name} is lost or expired")
        return message

    def _unlock(self, message: StoredMessage) -> None:
        if message.lock_token is not None:
            self._locks.pop(message.lock_token, None)
        message.lock_token = None

    def complete(self, token: uuid.UUID) -> None:
        message = self._locked(token)
        self._unlock(message)
        del self.messages[message.sequence_number]

    def abandon(self, token: uuid.UUID, *, count_delivery: bool = True) -> None:
        message = self._locked(token)
        self._unlock(message)
        self._return(message, count_delivery=count_delivery)

    def defer(self, token: uuid.UUID) -> None:
        message = self._locked(token)
        self._unlock(message)
        message.state = State.DEFERRED

    def dead_letter(self, token: uuid.UUID, reason: str, description: str) -> None:
        message = self._locked(token)
        self._unlock(message)
        self._move_to_dead_letters(message, reason, description)

    def renew(self, token: uuid.UUID, now: float | None = None) -> float:
        now = time.time() if now is None else now
        message = self._locked(token, now)
        message.locked_until = now + self.settings.lock_duration
        heapq.heappush(self._lock_deadlines, (message.locked_until, token))
        return message.locked_until

    def _return(self, message: StoredMessage, *, count_delivery: bool) -> None:
        """A delivery ended without completion: make it available again, or dead-letter it."""
        was_deferred = message.state is State.DEFERRED_LOCKED
        if count_delivery:
            message.delivery_count += 1
        if (
            not self.is_dead_letter
            and count_delivery
            and message.delivery_count >= self.settings.max_delivery_count
        ):
            self._move_to_dead_letters(
                message,
                MAX_DELIVERY_COUNT_EXCEEDED,
                f"Message could not be consumed after {self.settings.max_delivery_count} "
                "delivery attempts.",
            )
        elif was_deferred:
            message.state = State.DEFERRED
        else:
            self._make_available(message)

    def _move_to_dead_letters(self, message: StoredMessage, reason: str, description: str) -> None:
        self.messages.pop(message.sequence_number, None)
        target = self._forward_target(self.settings.forward_dead_lettered_to)
        if target is not None:
            target.enqueue(
                _as_forwarded_dead_letter(message.sections, reason, description, self.name)
            )
            log.info("%s: message %d dead-lettered (%s) and forwarded to %s", self.name,
                     message.sequence_number, reason, target.name)  # fmt: skip
        elif self.dead_letters is not None:
            self.dead_letters.add_dead_letter(message, reason, description, self.name)

    def _forward_target(self, name: str) -> Queue | None:
        """The queue `name` forwards to; never from a dead-letter sub-queue."""
        return self.lookup(name) if name and not self.is_dead_letter else None

    def _expire(self, message: StoredMessage) -> None:
        if self.settings.dead_letter_on_expiration:
            self._move_to_dead_letters(
                message, TTL_EXPIRED, "The message expired and was dead lettered."
            )
        else:
            self.messages.pop(message.sequence_number, None)
            log.info("%s: message %d expired and was dropped", self.name, message.sequence_number)

    # ---- time ---------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Expire locks, release scheduled messages and expire messages whose time is up."""
        now = time.time() if now is None else now
        while self._lock_deadlines and self._lock_deadlines[0][0] <= now:
            _, token = heapq.heappop(self._lock_deadlines)
            sequence = self._locks.get(token)
            message = self.messages.get(sequence) if sequence is not None else None
            if message is None or message.lock_token != token or message.locked_until > now:
                continue  # settled, or renewed (a later deadline is queued)
            log.info("%s: lock on message %d expired", self.name, message.sequence_number)
            self._unlock(message)
            self._return(message, count_delivery=True)
        while self._scheduled and self._scheduled[0][0] <= now:
            _, sequence = heapq.heappop(self._scheduled)
            message = self.messages.get(sequence)
            if message is not None and message.state is State.SCHEDULED:
                self._make_available(message)
        while self._expiring and self._expiring[0][0] <= now:
            _, sequence = heapq.heappop(self._expiring)
            message = self.messages.get(sequence)
            if message is not None and message.state in (State.AVAILABLE, State.SCHEDULED):
                self._expire(message)

    # ---- management ---------------------------------------------------------------------

    def peek(self, from_sequence: int, count: int) -> list[StoredMessage]:
        found = sorted(s for s in self.messages if s >= from_sequence)[:count]
        return [self.messages[s] for s in found]

    def schedule(self, sections: Sections) -> int:
        sequence = self.enqueue(sections)
        if sequence is None:  # a duplicate: the real service still answers with a number
            return self._next_sequence - 1
        return sequence

    def cancel_scheduled(self, sequence: int) -> None:
        message = self.messages.get(sequence)
        if message is not None and message.state is State.SCHEDULED:
            del self.messages[sequence]

    def take_deferred(self, sequence: int) -> StoredMessage:
        message = self.messages.get(sequence)
        if message is None or message.state is not State.DEFERRED:
            raise MessageNotFound(f"no deferred message {sequence} in {self.name}")
        return message

    def settle_by_token(
        self, token: uuid.UUID, status: str, reason: str | None, description: str | None
    ) -> None:
        if status == "completed":
            self.complete(token)
        elif status == "abandoned":
            self.abandon(token)
        elif status == "suspended":
            self.dead_letter(token, reason or "", description or "")
        elif status == "defered":
            self.defer(token)
        else:
            raise ValueError(f"unknown disposition-status {status!r}")

    def owns_lock(self, token: uuid.UUID) -> bool:
        return token in self._locks


def _as_forwarded_dead_letter(
    sections: Sections, reason: str, description: str, source: str
) -> Sections:
    """A dead letter as it arrives in a ForwardDeadLetteredMessagesTo queue: a new message
    that keeps the reason, description and source queue where a receiver can read them."""
    properties = dict(sections.application_properties or {})
    properties.update({"DeadLetterReason": reason, "DeadLetterErrorDescription": description})
    annotations = dict(sections.annotations)
    annotations[sym("x-opt-deadletter-source")] = source
    annotations.pop(sym("x-opt-scheduled-enqueue-time"), None)
    return replace(
        sections,
        annotations=annotations,
        application_properties=properties,
        raw_application_properties=encode_section(APPLICATION_PROPERTIES, properties),
    )
