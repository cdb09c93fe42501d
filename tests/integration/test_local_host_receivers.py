"""The local host's queue trigger: receivers follow the work (devtools/host_triggers.py).

An idle trigger holds one connection to Service Bus; a backlog opens receivers up to
`maxConcurrentCalls` concurrent invocations, never more; they close again when the queue is
empty, and the trigger stops when asked. Real emulator, real SDK; connections are counted
from the kernel's socket table (established sockets to the emulator's port).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient

from devtools.host_config import QueueTrigger, ServiceBusOptions
from devtools.host_triggers import ReceiverMessageActions, run_queue_trigger
from devtools.servicebus_emulator.process import RunningEmulator, start_emulator

pytestmark = pytest.mark.integration

QUEUE = "elastic"
LIMIT = 4
JOBS = 24
CONFIG = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "local-host",
                "Queues": [
                    {"Name": QUEUE, "Properties": {"LockDuration": "PT30S", "MaxDeliveryCount": 10}}
                ],
            }
        ],
        "Logging": {"Type": "Console"},
    }
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_emulator(CONFIG) as running:
        yield running


def connections_to(port: int) -> int:
    """Established TCP connections whose remote end is `port` (the client side of each)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


async def eventually(condition: Callable[[], bool], within: float = 20.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_receivers_follow_the_work(emulator: RunningEmulator) -> None:
    running = peak = done = 0

    async def function(msg: ServiceBusReceivedMessage, actions: ReceiverMessageActions) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.2)
        finally:
            running -= 1
        await actions.complete_async(msg)
        done += 1

    trigger = QueueTrigger("elastic_worker", function, QUEUE, "Conn", "msg", "actions")
    options = ServiceBusOptions(max_concurrent_calls=LIMIT, max_auto_lock_renewal_seconds=60)
    stopping = asyncio.Event()
    port = emulator.port
    async with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        task = asyncio.create_task(run_queue_trigger(trigger, client, options, stopping))
        try:
            assert await eventually(lambda: connections_to(port) >= 1)
            # Idle: one receiver, sampled over a few receive rounds (each waits 1 s).
            idle = []
            for _ in range(12):
                idle.append(connections_to(port))
                await asyncio.sleep(0.25)
            assert max(idle) == 1, idle

            async with ServiceBusClient.from_connection_string(
                emulator.connection_string
            ) as producer:
                async with producer.get_queue_sender(QUEUE) as sender:
                    await sender.send_messages([ServiceBusMessage(b"x") for _ in range(JOBS)])
            assert await eventually(lambda: done == JOBS), f"{done}/{JOBS} handled"
            assert peak == LIMIT

            # The backlog is gone: the extra receivers close, one stays.
            assert await eventually(lambda: connections_to(port) == 1), connections_to(port)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 15)
    assert await eventually(lambda: connections_to(port) == 0)
