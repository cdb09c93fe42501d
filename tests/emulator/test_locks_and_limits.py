"""Locks, redelivery, MaxDeliveryCount, TTL, duplicate detection: queues from a Config.json."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from azure.servicebus import (
    AutoLockRenewer,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessagingEntityNotFoundError,
    ServiceBusError,
)

from tests.emulator.test_send_receive import receive


def client(emulator) -> ServiceBusClient:
    return ServiceBusClient.from_connection_string(emulator.connection_string)


def test_an_expired_lock_makes_the_message_available_again(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("short-lock") as sender:
            sender.send_messages(ServiceBusMessage("slow worker"))
        with sb.get_queue_receiver("short-lock") as receiver:
            (first,) = receive(receiver, 1)
            time.sleep(1.3)  # LockDuration PT1S
            (again,) = receive(receiver, 1)
            assert again.sequence_number == first.sequence_number
            assert again.delivery_count == first.delivery_count + 1
            assert again.lock_token != first.lock_token
            receiver.complete_message(again)


def test_settling_after_the_lock_expired_raises_lock_lost(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("lock-lost") as sender:
            sender.send_messages(ServiceBusMessage("too late"))
        with sb.get_queue_receiver("lock-lost") as receiver:
            (message,) = receive(receiver, 1)
            time.sleep(1.3)
            with pytest.raises(MessageLockLostError):
                receiver.complete_message(message)
            (again,) = receive(receiver, 1)
            receiver.complete_message(again)


CRASHING_RECEIVER = textwrap.dedent(
    """
    import os, sys
    from azure.servicebus import ServiceBusClient
    with ServiceBusClient.from_connection_string(sys.argv[1]) as sb:
        with sb.get_queue_receiver("crash") as receiver:
            messages = receiver.receive_messages(max_message_count=1, max_wait_time=10)
            print(messages[0].sequence_number, messages[0].delivery_count, flush=True)
            os._exit(9)  # die holding the lock: no settlement, no detach, no close
    """
)


def test_a_receiver_killed_mid_lock_gets_its_message_redelivered(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("crash") as sender:
            sender.send_messages(ServiceBusMessage("survives", message_id="crash-1"))
        crashed = subprocess.run(
            [sys.executable, "-c", CRASHING_RECEIVER, configured.connection_string],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == 9, crashed.stderr
        sequence, delivery_count = (int(v) for v in crashed.stdout.split())
        with sb.get_queue_receiver("crash") as receiver:
            (message,) = receive(receiver, 1)  # after LockDuration (PT2S)
            assert message.message_id == "crash-1"
            assert message.sequence_number == sequence
            assert message.delivery_count == delivery_count + 1
            receiver.complete_message(message)


def test_max_delivery_count_dead_letters_the_message(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("max-two") as sender:
            sender.send_messages(ServiceBusMessage("poison", message_id="poison-1"))
        with sb.get_queue_receiver("max-two") as receiver:
            for _ in range(2):  # MaxDeliveryCount = 2
                (message,) = receive(receiver, 1)
                receiver.abandon_message(message)
            assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
        with sb.get_queue_receiver("max-two", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            (dead,) = receive(dlq, 1)
            assert dead.message_id == "poison-1"
            assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
            assert dead.dead_letter_source == "max-two"
            dlq.complete_message(dead)


@pytest.mark.parametrize(
    ("queue", "dead_lettered"), [("ttl-dead-letter", True), ("ttl-drop", False)]
)
def test_expired_messages_are_dead_lettered_or_dropped(configured, queue, dead_lettered):
    with client(configured) as sb:
        with sb.get_queue_sender(queue) as sender:
            sender.send_messages(
                ServiceBusMessage(
                    "stale", message_id=f"ttl-{queue}", time_to_live=dt.timedelta(seconds=1)
                )
            )
        time.sleep(1.5)  # the SDK sends whole seconds of time-to-live
        with sb.get_queue_receiver(queue) as receiver:
            assert receiver.peek_messages(max_message_count=5) == []
        with sb.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            dead = dlq.receive_messages(max_message_count=5, max_wait_time=1)
            if dead_lettered:
                assert [m.message_id for m in dead] == [f"ttl-{queue}"]
                assert dead[0].dead_letter_reason == "TTLExpiredException"
                dlq.complete_message(dead[0])
            else:
                assert dead == []


def test_the_queue_default_time_to_live_applies(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("default-ttl") as sender:
            sender.send_messages(ServiceBusMessage("short-lived"))
        time.sleep(1.3)  # DefaultMessageTimeToLive PT1S
        with sb.get_queue_receiver("default-ttl", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            (dead,) = receive(dlq, 1)
            assert dead.dead_letter_reason == "TTLExpiredException"
            dlq.complete_message(dead)


def test_duplicate_message_ids_are_dropped_within_the_window(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("dedupe") as sender:
            sender.send_messages(ServiceBusMessage("first", message_id="same"))
            sender.send_messages(ServiceBusMessage("second", message_id="same"))
            sender.send_messages(ServiceBusMessage("other", message_id="different"))
        with sb.get_queue_receiver("dedupe") as receiver:
            messages = receive(receiver, 2)
            assert [str(m) for m in messages] == ["first", "other"]
            assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
            for message in messages:
                receiver.complete_message(message)


def test_a_message_id_is_accepted_again_after_the_window(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("dedupe-short") as sender:
            sender.send_messages(ServiceBusMessage("first", message_id="again"))
            time.sleep(1.2)  # DuplicateDetectionHistoryTimeWindow PT1S
            sender.send_messages(ServiceBusMessage("second", message_id="again"))
        with sb.get_queue_receiver("dedupe-short") as receiver:
            messages = receive(receiver, 2)
            assert [str(m) for m in messages] == ["first", "second"]
            for message in messages:
                receiver.complete_message(message)


def test_auto_lock_renewer_keeps_the_lock_past_its_duration(configured):
    with client(configured) as sb:
        with sb.get_queue_sender("renewed") as sender:
            sender.send_messages(ServiceBusMessage("long job"))
        renewer = AutoLockRenewer(max_lock_renewal_duration=10)
        with sb.get_queue_receiver("renewed") as receiver:
            (message,) = receive(receiver, 1)
            renewer.register(receiver, message)
            first_lock = message.locked_until_utc
            time.sleep(2.5)  # LockDuration PT1S: without renewal it would be gone
            assert message.locked_until_utc > first_lock
            receiver.complete_message(message)
            assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
        renewer.close()


def test_unknown_queue_is_refused_when_queues_come_from_config(configured):
    name = f"nope-{uuid.uuid4().hex[:6]}"
    with ServiceBusClient.from_connection_string(configured.connection_string, retry_total=0) as sb:
        with pytest.raises(MessagingEntityNotFoundError, match=name):
            with sb.get_queue_receiver(name) as receiver:
                receiver.receive_messages(max_message_count=1, max_wait_time=1)
        # The SDK's sender reports the refused link as a generic error.
        with pytest.raises(ServiceBusError), sb.get_queue_sender(name) as sender:
            sender.send_messages(ServiceBusMessage("lost"))
