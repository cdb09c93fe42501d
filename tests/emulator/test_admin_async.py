"""The administration endpoint through the real async ServiceBusAdministrationClient."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio.management import ServiceBusAdministrationClient

from devtools.servicebus_emulator.process import RunningEmulator
from tests.emulator.conftest import CONFIGURED_QUEUES
from tests.emulator.helpers import aadmin, aclient, areceive, open_async_sender


async def test_counts_follow_the_async_clients(configured: RunningEmulator):
    name = "admin-counts-async"
    async with aadmin(configured) as management, aclient(configured.connection_string) as sb:

        async def active_scheduled_dead_total() -> tuple[int | None, ...]:
            r = await management.get_queue_runtime_properties(name)
            return (
                r.active_message_count,
                r.scheduled_message_count,
                r.dead_letter_message_count,
                r.total_message_count,
            )

        assert await active_scheduled_dead_total() == (0, 0, 0, 0)
        async with open_async_sender(sb, name) as sender:
            await sender.send_messages([ServiceBusMessage(f"job-{i}") for i in range(3)])
            assert await active_scheduled_dead_total() == (3, 0, 0, 3)
            await sender.schedule_messages(
                ServiceBusMessage("later"), dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
            )
            assert await active_scheduled_dead_total() == (3, 1, 0, 4)
        async with sb.get_queue_receiver(name) as receiver:
            first, second, third = await areceive(receiver, 3)
            assert await active_scheduled_dead_total() == (3, 1, 0, 4)  # locked: still active
            await receiver.complete_message(first)
            await receiver.dead_letter_message(second, reason="bad")
            await receiver.defer_message(third)
            assert await active_scheduled_dead_total() == (1, 1, 1, 3)
        runtime = await management.get_queue_runtime_properties(name)
        assert runtime.size_in_bytes is not None
        assert runtime.size_in_bytes > 0


async def test_async_get_and_list(configured: RunningEmulator):
    async with aadmin(configured) as management:
        queue = await management.get_queue("admin-properties")
        assert queue.max_delivery_count == 7
        assert queue.lock_duration == dt.timedelta(seconds=45)
        names = [q.name async for q in management.list_queues(max_page_size=4)]
        runtime = [q.name async for q in management.list_queues_runtime_properties()]
    assert sorted(names) == sorted(q["Name"] for q in CONFIGURED_QUEUES)
    assert runtime == names


async def test_async_unknown_queue_and_refused_changes(configured: RunningEmulator):
    async with aadmin(configured) as management:
        with pytest.raises(ResourceNotFoundError):
            await management.get_queue_runtime_properties("no-such-queue")
        with pytest.raises(HttpResponseError, match=r"Config\.json"):
            await management.create_queue("made-at-run-time")


async def test_verification_can_be_switched_off_for_the_emulator(configured: RunningEmulator):
    """The simplest app-side setting: no certificate file, verification off for this client."""
    management = ServiceBusAdministrationClient.from_connection_string(
        configured.admin_connection_string, connection_verify=False
    )
    async with management:
        assert (await management.get_queue("parking")).name == "parking"
