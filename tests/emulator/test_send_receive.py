"""Sending, receiving and settling with the sync client."""

from __future__ import annotations

import datetime as dt

from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)

from tests.emulator.helpers import WAIT, client, open_sender, receive


def test_single_message_round_trips_every_field(servicebus_connection_string, queue_name):
    sent = ServiceBusMessage(
        b'{"hello": "world"}',
        message_id="m-1",
        correlation_id="c-1",
        subject="greeting",
        content_type="application/json",
        application_properties={"job_type": "embed", "attempt": 2, "ratio": 0.5, "flag": True},
        time_to_live=dt.timedelta(minutes=5),
    )
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages(sent)
        with sb.get_queue_receiver(queue_name) as receiver:
            (message,) = receive(receiver, 1)
            assert b"".join(message.body) == b'{"hello": "world"}'
            assert message.message_id == "m-1"
            assert message.correlation_id == "c-1"
            assert message.subject == "greeting"
            assert message.content_type == "application/json"
            assert message.application_properties == {
                b"job_type": b"embed",
                b"attempt": 2,
                b"ratio": 0.5,
                b"flag": True,
            }
            assert message.time_to_live == dt.timedelta(minutes=5)
            assert message.delivery_count == 0
            assert message.sequence_number == 1
            assert message.enqueued_time_utc is not None
            assert message.lock_token is not None
            assert message.locked_until_utc > dt.datetime.now(dt.UTC)
            receiver.complete_message(message)
            assert receiver.peek_messages(max_message_count=5) == []


def test_list_and_batch_sends_keep_order_and_sequence(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages([ServiceBusMessage(f"list-{i}") for i in range(3)])
            batch = sender.create_message_batch()
            for i in range(3):
                batch.add_message(ServiceBusMessage(f"batch-{i}", message_id=f"b{i}"))
            sender.send_messages(batch)
        with sb.get_queue_receiver(queue_name, prefetch_count=10) as receiver:
            messages = receive(receiver, 6)
            assert [str(m) for m in messages] == [
                "list-0", "list-1", "list-2", "batch-0", "batch-1", "batch-2"
            ]  # fmt: skip
            assert [m.message_id for m in messages[3:]] == ["b0", "b1", "b2"]
            numbers = [m.sequence_number for m in messages]
            assert numbers == sorted(numbers)
            assert len(set(numbers)) == 6
            for message in messages:
                receiver.complete_message(message)


def test_abandon_redelivers_with_a_higher_delivery_count(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages(ServiceBusMessage("again"))
        with sb.get_queue_receiver(queue_name) as receiver:
            (first,) = receive(receiver, 1)
            receiver.abandon_message(first)
            (second,) = receive(receiver, 1)
            assert second.sequence_number == first.sequence_number
            assert second.delivery_count == first.delivery_count + 1
            receiver.complete_message(second)


def test_dead_letter_keeps_reason_description_and_source(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages(ServiceBusMessage("poison", message_id="p-1"))
        with sb.get_queue_receiver(queue_name) as receiver:
            (message,) = receive(receiver, 1)
            receiver.dead_letter_message(
                message, reason="PermanentFailure", error_description="downstream_400: no"
            )
            assert receiver.peek_messages(max_message_count=5) == []  # gone, not just hidden
        with sb.get_queue_receiver(queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            (dead,) = receive(dlq, 1)
            assert str(dead) == "poison"
            assert dead.message_id == "p-1"
            assert dead.dead_letter_reason == "PermanentFailure"
            assert dead.dead_letter_error_description == "downstream_400: no"
            assert dead.dead_letter_source == queue_name
            dlq.complete_message(dead)


def test_defer_then_receive_deferred_by_sequence_number(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages(ServiceBusMessage("later"))
        with sb.get_queue_receiver(queue_name) as receiver:
            (message,) = receive(receiver, 1)
            receiver.defer_message(message)
            assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
            (deferred,) = receiver.receive_deferred_messages([message.sequence_number])
            assert str(deferred) == "later"
            assert deferred.lock_token is not None
            receiver.complete_message(deferred)
            assert receiver.peek_messages(max_message_count=5) == []


def test_receive_and_delete_takes_messages_for_good(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages([ServiceBusMessage("x"), ServiceBusMessage("y")])
        with sb.get_queue_receiver(
            queue_name, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
        ) as receiver:
            messages = receive(receiver, 2)
            assert [str(m) for m in messages] == ["x", "y"]
        with sb.get_queue_receiver(queue_name) as receiver:
            assert receiver.peek_messages(max_message_count=5) == []


def test_peek_takes_no_lock_and_starts_where_asked(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages([ServiceBusMessage(f"p{i}") for i in range(4)])
        with sb.get_queue_receiver(queue_name) as receiver:
            peeked = receiver.peek_messages(max_message_count=10)
            assert [str(m) for m in peeked] == ["p0", "p1", "p2", "p3"]
            later = receiver.peek_messages(max_message_count=10, sequence_number=3)
            assert [m.sequence_number for m in later] == [3, 4]
            received = receive(receiver, 4)  # nothing was locked by peeking
            assert [m.delivery_count for m in received] == [0, 0, 0, 0]
            for message in received:
                receiver.complete_message(message)


def test_renew_lock_moves_locked_until(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages(ServiceBusMessage("hold"))
        with sb.get_queue_receiver(queue_name) as receiver:
            (message,) = receive(receiver, 1)
            before = message.locked_until_utc
            renewed = receiver.renew_message_lock(message)
            assert renewed >= before
            assert message.locked_until_utc == renewed
            receiver.complete_message(message)


def not_before(moment: dt.datetime) -> bool:
    """Now is at or after `moment` (the wire carries whole milliseconds)."""
    return dt.datetime.now(dt.UTC) >= moment - dt.timedelta(milliseconds=5)


def test_schedule_and_cancel(servicebus_connection_string, queue_name):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            kept, cancelled = sender.schedule_messages(
                [ServiceBusMessage("kept"), ServiceBusMessage("cancelled")], at
            )
            sender.cancel_scheduled_messages(cancelled)
        with sb.get_queue_receiver(queue_name) as receiver:
            peeked = receiver.peek_messages(max_message_count=5)
            assert [m.sequence_number for m in peeked] == [kept]
            assert peeked[0].scheduled_enqueue_time_utc is not None
            assert abs(peeked[0].scheduled_enqueue_time_utc - at) < dt.timedelta(seconds=1)
            (message,) = receive(receiver, 1)
            assert not_before(at)  # it was not handed out before its time
            assert str(message) == "kept"
            assert message.sequence_number == kept
            receiver.complete_message(message)
            assert receiver.peek_messages(max_message_count=5) == []  # gone, not just hidden


def test_scheduled_enqueue_time_on_a_sent_message_delays_it(
    servicebus_connection_string, queue_name
):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    message = ServiceBusMessage("delayed", scheduled_enqueue_time_utc=at)
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages(message)
        with sb.get_queue_receiver(queue_name) as receiver:
            (received,) = receive(receiver, 1)
            assert not_before(at)
            assert str(received) == "delayed"
            receiver.complete_message(received)


def test_many_settlements_never_stall(servicebus_connection_string, queue_name):
    with client(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            for start in range(0, 200, 50):
                sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(start, start + 50)])
        with sb.get_queue_receiver(queue_name, prefetch_count=50) as receiver:
            settled = 0
            while settled < 200:
                batch = receiver.receive_messages(max_message_count=50, max_wait_time=WAIT)
                assert batch, f"stalled after {settled}"
                for message in batch:
                    receiver.complete_message(message)
                settled += len(batch)
            assert receiver.peek_messages(max_message_count=1) == []
