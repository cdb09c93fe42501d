"""The callback signature: HMAC-SHA256 over `timestamp + "." + body`, sent as

    Conveyor-Signature: t=<unix seconds>,v1=<hex digest>

A receiver recomputes the digest with the shared secret (CALLBACK_SIGNING_SECRET), compares
in constant time, and refuses timestamps older than a few minutes (replays). docs/api.md
shows the same check for receivers to copy.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Conveyor-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={signature(secret, at, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: True when `header` signs `body` with `secret`, recently."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, fields.get("v1", ""))
