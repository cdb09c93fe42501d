"""Request/response operations on `<entity>/$management`, as the Service Bus SDK sends them.

Each handler takes the entity and the request body (an AMQP map) and returns
(status code, description, response body). Errors are raised as ManagementError.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from proton import Data

from devtools.servicebus_emulator.codec import CodecError, array_of, ms_timestamp, parse
from devtools.servicebus_emulator.entities import LockLost, MessageNotFound, Queue

log = logging.getLogger(__name__)

Reply = tuple[int, str, Any]

LOCK_LOST = "com.microsoft:message-lock-lost"
NOT_FOUND = "com.microsoft:message-not-found"


class ManagementError(Exception):
    def __init__(self, status: int, condition: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.condition = condition
        self.description = description


def _elements(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(getattr(value, "elements", value))


def _tokens(body: dict[str, Any]) -> list[uuid.UUID]:
    return [
        t if isinstance(t, uuid.UUID) else uuid.UUID(str(t))
        for t in _elements(body.get("lock-tokens"))
    ]


def renew_lock(queue: Queue, body: dict[str, Any]) -> Reply:
    try:
        expirations = [ms_timestamp(queue.renew(token)) for token in _tokens(body)]
    except LockLost as exc:
        raise ManagementError(410, LOCK_LOST, str(exc)) from exc
    return 200, "OK", {"expirations": array_of(Data.TIMESTAMP, expirations)}


def peek_message(queue: Queue, body: dict[str, Any]) -> Reply:
    start = int(body.get("from-sequence-number") or 0)
    count = int(body.get("message-count") or 1)
    found = queue.peek(start, count)
    if not found:
        return 204, "No messages", None
    return 200, "OK", {"messages": [{"message": m.wire(lock=False)} for m in found]}


def schedule_message(queue: Queue, body: dict[str, Any]) -> Reply:
    numbers = []
    for entry in _elements(body.get("messages")):
        try:
            sections = parse(bytes(entry["message"]))
        except (CodecError, KeyError, TypeError) as exc:
            raise ManagementError(
                400, "amqp:decode-error", f"bad scheduled message: {exc}"
            ) from exc
        numbers.append(queue.schedule(sections))
    log.info("%s: scheduled %d message(s)", queue.name, len(numbers))
    return 200, "OK", {"sequence-numbers": array_of(Data.LONG, numbers)}


def cancel_scheduled_message(queue: Queue, body: dict[str, Any]) -> Reply:
    for sequence in _elements(body.get("sequence-numbers")):
        queue.cancel_scheduled(int(sequence))
    return 200, "OK", {}


def receive_by_sequence_number(queue: Queue, body: dict[str, Any]) -> Reply:
    messages: list[dict[str, Any]] = []
    for sequence in _elements(body.get("sequence-numbers")):
        try:
            message = queue.take_deferred(int(sequence))
        except MessageNotFound as exc:
            raise ManagementError(404, NOT_FOUND, str(exc)) from exc
        settle_mode = int(body.get("receiver-settle-mode") or 1)
        if settle_mode == 0:  # receive and delete
            wire = message.wire(lock=False)
            queue.remove(message)
            messages.append({"message": wire})
        else:
            token = queue.lock(message)
            messages.append({"lock-token": token, "message": message.wire(lock=True)})
    return 200, "OK", {"messages": messages}


def update_disposition(queue: Queue, body: dict[str, Any]) -> Reply:
    status = str(body.get("disposition-status"))
    try:
        for token in _tokens(body):
            queue.settle_by_token(
                token, status, body.get("deadletter-reason"), body.get("deadletter-description")
            )
    except LockLost as exc:
        raise ManagementError(410, LOCK_LOST, str(exc)) from exc
    except ValueError as exc:
        raise ManagementError(400, "amqp:invalid-field", str(exc)) from exc
    return 200, "OK", {}


OPERATIONS: dict[str, Callable[[Queue, dict[str, Any]], Reply]] = {
    "com.microsoft:renew-lock": renew_lock,
    "com.microsoft:peek-message": peek_message,
    "com.microsoft:schedule-message": schedule_message,
    "com.microsoft:cancel-scheduled-message": cancel_scheduled_message,
    "com.microsoft:receive-by-sequence-number": receive_by_sequence_number,
    "com.microsoft:update-disposition": update_disposition,
}


def handle(queue: Queue, operation: str, body: Any) -> Reply:
    handler = OPERATIONS.get(operation)
    queue.operations[operation.removeprefix("com.microsoft:")] += 1
    if handler is None:
        raise ManagementError(
            501, "amqp:not-implemented", f"operation {operation} is not supported"
        )
    return handler(queue, body if isinstance(body, dict) else {})
