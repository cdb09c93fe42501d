"""Competing consumers, prefetch and many connections at once."""

from __future__ import annotations

import threading
from collections import Counter

from azure.servicebus import ServiceBusClient, ServiceBusMessage

from tests.emulator.helpers import open_sender

MESSAGES = 200
RECEIVERS = 4


def test_competing_consumers_get_each_message_once(servicebus_connection_string, queue_name):
    with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            for start in range(0, MESSAGES, 50):
                sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(start, start + 50)])
    seen: Counter[int] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
                with sb.get_queue_receiver(queue_name, prefetch_count=5) as receiver:
                    idle = 0
                    while idle < 2 and len(seen) < MESSAGES:
                        batch = receiver.receive_messages(max_message_count=5, max_wait_time=1)
                        idle = 0 if batch else idle + 1
                        for message in batch:
                            with lock:
                                seen[message.sequence_number or 0] += 1
                            receiver.complete_message(message)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(RECEIVERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert len(seen) == MESSAGES  # none lost
    assert set(seen.values()) == {1}  # none twice


def test_prefetch_delivers_up_to_the_credit(servicebus_connection_string, queue_name):
    with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages([ServiceBusMessage(f"p{i}") for i in range(30)])
        with sb.get_queue_receiver(queue_name, prefetch_count=20) as receiver:
            first = receiver.receive_messages(max_message_count=1, max_wait_time=5)
            assert len(first) == 1
            # The rest of the prefetched credit is already locked for this receiver.
            rest = receiver.receive_messages(max_message_count=29, max_wait_time=5)
            received = first + rest
            while len(received) < 30:
                more = receiver.receive_messages(max_message_count=30, max_wait_time=5)
                assert more
                received += more
            assert sorted(str(m) for m in received) == sorted(f"p{i}" for i in range(30))
            for message in received:
                receiver.complete_message(message)


def test_many_connections_send_at_once(servicebus_connection_string, queue_name):
    def send(worker: int) -> None:
        with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
            with open_sender(sb, queue_name) as sender:
                sender.send_messages([ServiceBusMessage(f"w{worker}-{i}") for i in range(10)])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
        with sb.get_queue_receiver(queue_name) as receiver:
            peeked = receiver.peek_messages(max_message_count=100)
            assert len(peeked) == 80
            assert len({m.sequence_number for m in peeked}) == 80


def test_prefetched_messages_are_released_when_a_receiver_closes(
    servicebus_connection_string, queue_name
):
    """The SDK releases its unread prefetched messages on close; nobody waits for a lock."""
    with ServiceBusClient.from_connection_string(servicebus_connection_string) as sb:
        with open_sender(sb, queue_name) as sender:
            sender.send_messages([ServiceBusMessage(f"r{i}") for i in range(5)])
        with sb.get_queue_receiver(queue_name, prefetch_count=10) as first:
            (taken,) = first.receive_messages(max_message_count=1, max_wait_time=5)
            first.complete_message(taken)
        # The default LockDuration is 60 s: these arrive now only if they were released.
        with sb.get_queue_receiver(queue_name) as second:
            rest = []
            for _ in range(5):
                rest += second.receive_messages(max_message_count=4, max_wait_time=2)
                if len(rest) >= 4:
                    break
            assert sorted(str(m) for m in rest) == sorted(
                f"r{i}" for i in range(5) if f"r{i}" != str(taken)
            )
            assert [m.delivery_count for m in rest] == [0, 0, 0, 0]  # a release is no attempt
            for message in rest:
                second.complete_message(message)
