"""The emulator suite: every behaviour through the real azure-servicebus SDK over a socket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.servicebus_emulator.process import RunningEmulator, start_emulator


def queue(name: str, **properties: Any) -> dict[str, Any]:
    return {"Name": name, "Properties": properties}


# Queues with the properties the tests need; each test owns its queue.
CONFIGURED_QUEUES = [
    queue("short-lock", LockDuration="PT1S", MaxDeliveryCount=10),
    queue("crash", LockDuration="PT2S", MaxDeliveryCount=10),
    queue("renewed", LockDuration="PT1S"),
    queue("renewed-async", LockDuration="PT3S"),
    queue("lock-lost", LockDuration="PT1S"),
    queue("lock-lost-async", LockDuration="PT1S"),
    queue("max-two", LockDuration="PT5S", MaxDeliveryCount=2),
    queue("max-two-async", LockDuration="PT5S", MaxDeliveryCount=2),
    queue("ttl-dead-letter", DeadLetteringOnMessageExpiration=True),
    queue("ttl-drop", DeadLetteringOnMessageExpiration=False, DefaultMessageTimeToLive="PT1S"),
    queue("dedupe", RequiresDuplicateDetection=True, DuplicateDetectionHistoryTimeWindow="PT1M"),
    queue("dedupe-async", RequiresDuplicateDetection=True),
    queue(
        "dedupe-short", RequiresDuplicateDetection=True, DuplicateDetectionHistoryTimeWindow="PT1S"
    ),
    queue("forwarding", ForwardTo="forwarded-hop"),
    queue("forwarded-hop", ForwardTo="forwarded"),
    queue("forwarded"),
    queue("dead-letters-forwarded", MaxDeliveryCount=1, ForwardDeadLetteredMessagesTo="parking"),
    queue("parking"),
    queue("admin-counts", LockDuration="PT30S", MaxDeliveryCount=10),
    queue("admin-counts-async", LockDuration="PT30S", MaxDeliveryCount=10),
    queue("admin-traffic"),
    queue(
        "admin-properties",
        LockDuration="PT45S",
        MaxDeliveryCount=7,
        RequiresDuplicateDetection=True,
        DuplicateDetectionHistoryTimeWindow="PT2M",
        DeadLetteringOnMessageExpiration=True,
        DefaultMessageTimeToLive="P2D",
        ForwardDeadLetteredMessagesTo="parking",
    ),
]
CONFIG = {
    "UserConfig": {
        "Namespaces": [{"Name": "sbemulatorns", "Queues": CONFIGURED_QUEUES, "Topics": []}],
        "Logging": {"Type": "Console"},
    }
}


@pytest.fixture(scope="session")
def configured() -> Iterator[RunningEmulator]:
    """An emulator started with a Config.json (unknown queues are refused)."""
    with start_emulator(CONFIG) as emulator:
        yield emulator


@pytest.fixture
def queue_name() -> str:
    """A fresh queue on the auto-creating session emulator."""
    return f"q-{uuid.uuid4().hex[:10]}"
