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

from devtools.servicebus_emulator.process import RunningEmulator
from tests.emulator.helpers import open_sender, receive


def client(emulator: RunningEmulator) -> ServiceBusClient:
    return ServiceBusClient.from_connection_string(emulator.connection_string)


def test_an_expired_lock_makes_the_message_available_again(configured):
    with client(configured) as sb:
        with open_sender(sb, "short-lock") as sender:
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
        with open_sender(sb, "lock-lost") as sender:
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
        with open_sender(sb, "crash") as sender:
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
        with open_sender(sb, "max-two") as sender:
            sender.send_messages(ServiceBusMessage("poison", message_id="poison-1"))
        with sb.get_queue_receiver("max-two") as receiver:
            for _ in range(2):  # MaxDeliveryCount = 2
                (message,) = receive(receiver, 1)
                receiver.abandon_message(message)
            assert receiver.peek_messages(max_message_count=5) == []  # gone, not just hidden
        with sb.get_queue_receiver("max-two", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            (dead,) = receive(dlq, 1)
            assert dead.message_id == "poison-1"
            assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
            assert dead.dead_letter_source == "max-two"
            dlq.complete_message(dead)


def test_expired_messages_are_dead_lettered_or_dropped(configured):
    """A message's own time-to-live and the queue's DefaultMessageTimeToLive, both outcomes."""
    with client(configured) as sb:
        with open_sender(sb, "ttl-dead-letter") as sender:
            sender.send_messages(
                ServiceBusMessage("stale", message_id="ttl-1", time_to_live=dt.timedelta(seconds=1))
            )
        with open_sender(sb, "ttl-drop") as sender:  # DefaultMessageTimeToLive PT1S
            sender.send_messages(ServiceBusMessage("short-lived", message_id="ttl-2"))
        time.sleep(1.5)  # the SDK sends whole seconds of time-to-live
        with sb.get_queue_receiver("ttl-drop") as receiver:
            assert receiver.peek_messages(max_message_count=5) == []
        with sb.get_queue_receiver("ttl-drop", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            assert dlq.peek_messages(max_message_count=5) == []
        with sb.get_queue_receiver(
            "ttl-dead-letter", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            (dead,) = receive(dlq, 1)
            assert dead.message_id == "ttl-1"
            assert dead.dead_letter_reason == "TTLExpiredException"
            assert dead.dead_letter_source == "ttl-dead-letter"
            dlq.complete_message(dead)


def test_forward_to_moves_messages_along_the_chain(configured):
    with client(configured) as sb:
        with open_sender(sb, "forwarding") as sender:
            sender.send_messages(
                ServiceBusMessage("onward", message_id="fwd-1", application_properties={"k": "v"})
            )
        with sb.get_queue_receiver("forwarding") as receiver:
            assert receiver.peek_messages(max_message_count=5) == []
        with sb.get_queue_receiver("forwarded") as receiver:
            (message,) = receive(receiver, 1)
            assert message.message_id == "fwd-1"
            assert str(message) == "onward"
            assert message.application_properties == {b"k": b"v"}
            receiver.complete_message(message)


def test_dead_letters_are_forwarded_with_their_reason(configured):
    with client(configured) as sb:
        with open_sender(sb, "dead-letters-forwarded") as sender:
            sender.send_messages(ServiceBusMessage("poison", message_id="fwd-dl-1"))
            sender.send_messages(ServiceBusMessage("bad input", message_id="fwd-dl-2"))
        with sb.get_queue_receiver("dead-letters-forwarded") as receiver:
            first, second = receive(receiver, 2)
            receiver.abandon_message(first)  # MaxDeliveryCount = 1
            receiver.dead_letter_message(second, reason="Invalid", error_description="no id")
        with sb.get_queue_receiver(
            "dead-letters-forwarded", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            assert dlq.peek_messages(max_message_count=5) == []
        with sb.get_queue_receiver("parking") as parking:
            messages = sorted(receive(parking, 2), key=lambda m: str(m.message_id))
            assert [m.message_id for m in messages] == ["fwd-dl-1", "fwd-dl-2"]
            assert [m.dead_letter_reason for m in messages] == [
                "MaxDeliveryCountExceeded",
                "Invalid",
            ]
            assert messages[1].dead_letter_error_description == "no id"
            assert {m.dead_letter_source for m in messages} == {"dead-letters-forwarded"}
            assert [m.delivery_count for m in messages] == [0, 0]
            for message in messages:
                parking.complete_message(message)


def test_duplicate_message_ids_are_dropped_within_the_window(configured):
    with client(configured) as sb:
        with open_sender(sb, "dedupe") as sender:
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
        with open_sender(sb, "dedupe-short") as sender:
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
        with open_sender(sb, "renewed") as sender:
            sender.send_messages(ServiceBusMessage("long job"))
        renewer = AutoLockRenewer(max_lock_renewal_duration=10)
        with sb.get_queue_receiver("renewed") as receiver:
            (message,) = receive(receiver, 1)
            renewer.register(receiver, message)
            first_lock = message.locked_until_utc
            time.sleep(1.6)  # LockDuration PT1S: without renewal it would be gone
            assert message.locked_until_utc > first_lock
            receiver.complete_message(message)
            assert receiver.peek_messages(max_message_count=5) == []  # gone, not just hidden
        renewer.close()


def test_unknown_queue_is_refused_when_queues_come_from_config(configured):
    name = f"nope-{uuid.uuid4().hex[:6]}"
    with ServiceBusClient.from_connection_string(configured.connection_string, retry_total=0) as sb:
        with pytest.raises(MessagingEntityNotFoundError, match=name):
            with sb.get_queue_receiver(name) as receiver:
                receiver.receive_messages(max_message_count=1, max_wait_time=1)
        # The SDK's sender reports the refused link as a generic error.
        with pytest.raises(ServiceBusError), open_sender(sb, name) as sender:
            sender.send_messages(ServiceBusMessage("lost"))


def test_session_receivers_are_refused_with_a_clear_error(servicebus_connection_string, queue_name):
    with ServiceBusClient.from_connection_string(servicebus_connection_string, retry_total=0) as sb:
        with open_sender(sb, queue_name) as sender:  # a session id on a message is just kept
            sender.send_messages(ServiceBusMessage("in a session", session_id="s-1"))
        with pytest.raises(ServiceBusError, match="sessions are not supported"):
            with sb.get_queue_receiver(queue_name, session_id="s-1") as receiver:
                receiver.receive_messages(max_message_count=1, max_wait_time=1)
        with sb.get_queue_receiver(queue_name) as receiver:
            (message,) = receive(receiver, 1)
            assert message.session_id == "s-1"
            receiver.complete_message(message)


def _namespace(sku: str | None) -> dict[str, object]:
    namespace: dict[str, object] = {"Name": "ns", "Queues": [{"Name": "sized"}], "Topics": []}
    if sku:
        namespace["Sku"] = sku
    return {"UserConfig": {"Namespaces": [namespace]}}


@pytest.mark.parametrize(
    ("sku", "allowed"), [(None, False), ("Standard", False), ("Premium", True)]
)
def test_the_tiers_message_size_limit_is_enforced_at_send(sku, allowed):
    """Standard takes 256 KB per message, as in Azure: a 300 KB job fails locally too."""
    from azure.servicebus.exceptions import MessageSizeExceededError

    from devtools.servicebus_emulator.process import start_emulator

    with start_emulator(_namespace(sku)) as emulator, client(emulator) as sb:
        with open_sender(sb, "sized") as sender:
            sender.send_messages(ServiceBusMessage(b"x" * 200_000))  # fits every tier
            if allowed:
                sender.send_messages(ServiceBusMessage(b"x" * 300_000))
            else:
                with pytest.raises(MessageSizeExceededError):
                    sender.send_messages(ServiceBusMessage(b"x" * 300_000))
        with sb.get_queue_receiver("sized") as receiver:
            got = receive(receiver, 2 if allowed else 1)
            assert len(got) == (2 if allowed else 1)
