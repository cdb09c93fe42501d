"""The same behaviours through the async client (azure.servicebus.aio)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.aio import AutoLockRenewer
from azure.servicebus.exceptions import MessageLockLostError

from tests.emulator.helpers import aclient, areceive, open_async_sender


async def test_async_send_receive_settle(servicebus_connection_string, queue_name):
    async with aclient(servicebus_connection_string) as sb:
        async with open_async_sender(sb, queue_name) as sender:
            await sender.send_messages(
                ServiceBusMessage(
                    "one",
                    message_id="a1",
                    correlation_id="c1",
                    subject="s",
                    content_type="text/plain",
                    application_properties={"k": "v"},
                    time_to_live=dt.timedelta(minutes=1),
                )
            )
            await sender.send_messages([ServiceBusMessage("two"), ServiceBusMessage("three")])
            batch = await sender.create_message_batch()
            batch.add_message(ServiceBusMessage("four"))
            await sender.send_messages(batch)
        async with sb.get_queue_receiver(queue_name) as receiver:
            one, two, three, four = await areceive(receiver, 4)
            assert [str(m) for m in (one, two, three, four)] == ["one", "two", "three", "four"]
            assert (one.message_id, one.correlation_id, one.subject) == ("a1", "c1", "s")
            assert one.content_type == "text/plain"
            assert one.application_properties == {b"k": b"v"}
            assert one.time_to_live == dt.timedelta(minutes=1)
            assert one.lock_token is not None
            assert one.locked_until_utc > dt.datetime.now(dt.UTC)
            assert one.sequence_number < two.sequence_number < three.sequence_number
            await receiver.complete_message(one)
            await receiver.abandon_message(two)
            await receiver.dead_letter_message(three, reason="Bad", error_description="why")
            await receiver.defer_message(four)
            (again,) = await areceive(receiver, 1)
            assert str(again) == "two"
            assert again.delivery_count == 1
            await receiver.complete_message(again)
            (deferred,) = await receiver.receive_deferred_messages([four.sequence_number])
            assert str(deferred) == "four"
            await receiver.complete_message(deferred)
            assert await receiver.peek_messages(max_message_count=5) == []
        async with sb.get_queue_receiver(
            queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            (dead,) = await areceive(dlq, 1)
            assert (dead.dead_letter_reason, dead.dead_letter_error_description) == ("Bad", "why")
            assert dead.dead_letter_source == queue_name
            await dlq.complete_message(dead)


async def test_async_peek_then_receive_and_delete(servicebus_connection_string, queue_name):
    async with aclient(servicebus_connection_string) as sb:
        async with open_async_sender(sb, queue_name) as sender:
            await sender.send_messages([ServiceBusMessage(f"d{i}") for i in range(3)])
        async with sb.get_queue_receiver(
            queue_name, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
        ) as receiver:
            peeked: list[Any] = await receiver.peek_messages(max_message_count=10)
            assert [m.delivery_count for m in peeked] == [0, 0, 0]
            later = await receiver.peek_messages(
                max_message_count=10, sequence_number=peeked[1].sequence_number
            )
            assert [str(m) for m in later] == ["d1", "d2"]
            taken = await areceive(receiver, 3)
            assert [str(m) for m in taken] == ["d0", "d1", "d2"]
            assert await receiver.peek_messages(max_message_count=10) == []


async def test_async_schedule_cancel_peek_and_renew(servicebus_connection_string, queue_name):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    async with aclient(servicebus_connection_string) as sb:
        async with open_async_sender(sb, queue_name) as sender:
            scheduled, cancelled = await sender.schedule_messages(
                [ServiceBusMessage("soon"), ServiceBusMessage("never")], at
            )
            await sender.cancel_scheduled_messages(cancelled)
        async with sb.get_queue_receiver(queue_name) as receiver:
            (peeked,) = await receiver.peek_messages(max_message_count=5)
            assert peeked.sequence_number == scheduled
            assert peeked.scheduled_enqueue_time_utc is not None
            (message,) = await areceive(receiver, 1)
            assert dt.datetime.now(dt.UTC) >= at - dt.timedelta(milliseconds=5)
            assert str(message) == "soon"
            before = message.locked_until_utc
            await asyncio.sleep(0.05)
            assert await receiver.renew_message_lock(message) >= before
            await receiver.complete_message(message)


async def test_async_lock_expiry_redelivers_and_late_settlement_fails(configured):
    async with aclient(configured.connection_string) as sb:
        async with open_async_sender(sb, "lock-lost-async") as sender:
            await sender.send_messages(ServiceBusMessage("slow"))
        async with sb.get_queue_receiver("lock-lost-async") as receiver:
            (first,) = await areceive(receiver, 1)
            await asyncio.sleep(1.3)  # LockDuration PT1S
            with pytest.raises(MessageLockLostError):
                await receiver.complete_message(first)
            (again,) = await areceive(receiver, 1)
            assert again.sequence_number == first.sequence_number
            assert again.delivery_count == first.delivery_count + 1
            await receiver.complete_message(again)


async def test_async_max_delivery_count_and_duplicates(configured):
    async with aclient(configured.connection_string) as sb:
        async with open_async_sender(sb, "max-two-async") as sender:
            await sender.send_messages(ServiceBusMessage("poison", message_id="p"))
        async with open_async_sender(sb, "dedupe-async") as sender:
            await sender.send_messages(ServiceBusMessage("first", message_id="same"))
            await sender.send_messages(ServiceBusMessage("second", message_id="same"))
        async with sb.get_queue_receiver("max-two-async") as receiver:
            for _ in range(2):  # MaxDeliveryCount 2
                (message,) = await areceive(receiver, 1)
                await receiver.abandon_message(message)
        async with sb.get_queue_receiver(
            "max-two-async", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            (dead,) = await areceive(dlq, 1)
            assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
            await dlq.complete_message(dead)
        async with sb.get_queue_receiver("dedupe-async") as receiver:
            assert [str(m) for m in await receiver.peek_messages(max_message_count=5)] == ["first"]


async def test_async_competing_consumers(servicebus_connection_string, queue_name):
    total = 120
    async with aclient(servicebus_connection_string) as sb:
        async with open_async_sender(sb, queue_name) as sender:
            await sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(total)])
    seen: Counter[Any] = Counter()

    async def consume() -> None:
        async with aclient(servicebus_connection_string) as sb:
            async with sb.get_queue_receiver(queue_name, prefetch_count=10) as receiver:
                idle = 0
                while idle < 2 and len(seen) < total:
                    batch = await receiver.receive_messages(max_message_count=10, max_wait_time=1)
                    idle = 0 if batch else idle + 1
                    for message in batch:
                        seen[message.sequence_number] += 1
                        await receiver.complete_message(message)

    await asyncio.wait_for(asyncio.gather(*(consume() for _ in range(4))), timeout=90)
    assert len(seen) == total
    assert set(seen.values()) == {1}


async def test_async_auto_lock_renewer(configured):
    async with aclient(configured.connection_string) as sb:
        async with open_async_sender(sb, "renewed-async") as sender:
            await sender.send_messages(ServiceBusMessage("async long job"))
        renewer = AutoLockRenewer(max_lock_renewal_duration=10)
        async with sb.get_queue_receiver("renewed-async") as receiver:
            (message,) = await areceive(receiver, 1)
            renewer.register(receiver, message)
            first = message.locked_until_utc
            # LockDuration PT3S. The async renewer wakes once a second and renews when less
            # than 75% of the lock's whole seconds remain: it cannot keep a lock under 3 s.
            await asyncio.sleep(3.5)
            assert message.locked_until_utc > first
            await receiver.complete_message(message)
        await renewer.close()
