"""The same behaviours through the async client (azure.servicebus.aio)."""

from __future__ import annotations

import asyncio
import datetime as dt

from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient


async def receive(receiver, count: int):
    got: list = []
    for _ in range(20):
        got += await receiver.receive_messages(max_message_count=count - len(got), max_wait_time=5)
        if len(got) >= count:
            break
    return got


async def test_async_send_receive_settle(servicebus_connection_string, queue_name):
    async with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
        async with sb.get_queue_sender(queue_name) as sender:
            await sender.send_messages(ServiceBusMessage("one", message_id="a1"))
            await sender.send_messages([ServiceBusMessage("two"), ServiceBusMessage("three")])
            batch = await sender.create_message_batch()
            batch.add_message(ServiceBusMessage("four"))
            await sender.send_messages(batch)
        async with sb.get_queue_receiver(queue_name) as receiver:
            one, two, three, four = await receive(receiver, 4)
            assert [str(m) for m in (one, two, three, four)] == ["one", "two", "three", "four"]
            assert one.message_id == "a1"
            await receiver.complete_message(one)
            await receiver.abandon_message(two)
            await receiver.dead_letter_message(three, reason="Bad", error_description="why")
            await receiver.defer_message(four)
            (again,) = await receive(receiver, 1)
            assert str(again) == "two"
            assert again.delivery_count == 1
            await receiver.complete_message(again)
            (deferred,) = await receiver.receive_deferred_messages([four.sequence_number])
            await receiver.complete_message(deferred)
        async with sb.get_queue_receiver(
            queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            (dead,) = await receive(dlq, 1)
            assert (dead.dead_letter_reason, dead.dead_letter_error_description) == ("Bad", "why")
            await dlq.complete_message(dead)


async def test_async_schedule_peek_and_renew(servicebus_connection_string, queue_name):
    async with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
        async with sb.get_queue_sender(queue_name) as sender:
            (scheduled,) = await sender.schedule_messages(
                ServiceBusMessage("soon"), dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
            )
        async with sb.get_queue_receiver(queue_name) as receiver:
            (peeked,) = await receiver.peek_messages(max_message_count=5)
            assert peeked.sequence_number == scheduled
            (message,) = await receive(receiver, 1)
            before = message.locked_until_utc
            await asyncio.sleep(0.05)
            assert await receiver.renew_message_lock(message) >= before
            await receiver.complete_message(message)


async def test_async_auto_lock_renewer(configured):
    async with ServiceBusClient.from_connection_string(configured.connection_string) as sb:
        async with sb.get_queue_sender("renewed-async") as sender:
            await sender.send_messages(ServiceBusMessage("async long job"))
        renewer = AutoLockRenewer(max_lock_renewal_duration=10)
        async with sb.get_queue_receiver("renewed-async") as receiver:
            (message,) = await receive(receiver, 1)
            renewer.register(receiver, message)
            first = message.locked_until_utc
            await asyncio.sleep(4)  # LockDuration PT3S (the async renewer wakes once a second)
            assert message.locked_until_utc > first
            await receiver.complete_message(message)
        await renewer.close()
