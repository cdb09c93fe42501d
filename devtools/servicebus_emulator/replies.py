"""Request/response on `$cbs` and `<entity>/$management`: decode, answer, encode."""

from __future__ import annotations

import logging
from typing import Any

from devtools.servicebus_emulator import management
from devtools.servicebus_emulator.codec import decode_request, encode_response
from devtools.servicebus_emulator.entities import Queue

log = logging.getLogger(__name__)


def answer_request(raw: bytes, queue: Queue | None, *, cbs: bool) -> tuple[str, bytes] | None:
    """(reply-to address, encoded response) for one request; None if it cannot be read.

    `$cbs` accepts every token (status-code 202); management replies use the camel-case
    statusCode / statusDescription Service Bus uses there.
    """
    try:
        request = decode_request(raw)
    except Exception:
        return None
    status_field, description_field = (
        ("status-code", "status-description") if cbs else ("statusCode", "statusDescription")
    )
    properties: dict[Any, Any] = dict(request.properties or {})
    operation = str(properties.get("operation", ""))
    condition = None
    if cbs:
        status, description, body = 202, "Accepted", None
    else:
        assert queue is not None
        try:
            status, description, body = management.handle(queue, operation, request.body)
        except management.ManagementError as exc:
            status, description, body, condition = (
                exc.status,
                exc.description,
                None,
                exc.condition,
            )
        log.info("%s: %s -> %d", queue.name, operation, status)
    response = encode_response(
        request.id,
        status,
        description,
        body,
        status_field=status_field,
        description_field=description_field,
        error_condition=condition,
    )
    return str(request.reply_to or ""), response
