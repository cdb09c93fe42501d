"""The administration endpoint through the real sync ServiceBusAdministrationClient."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.management import QueueRuntimeProperties, ServiceBusAdministrationClient

from devtools.servicebus_emulator.process import RunningEmulator
from tests.emulator.conftest import CONFIGURED_QUEUES
from tests.emulator.helpers import admin, client, open_sender, receive


def counts(runtime: QueueRuntimeProperties) -> dict[str, Any]:
    return {
        "active": runtime.active_message_count,
        "scheduled": runtime.scheduled_message_count,
        "dead": runtime.dead_letter_message_count,
        "total": runtime.total_message_count,
        "transfer": (runtime.transfer_message_count, runtime.transfer_dead_letter_message_count),
    }


def test_counts_follow_send_lock_settle_schedule_and_defer(configured: RunningEmulator):
    name = "admin-counts"
    with admin(configured) as management, client(configured.connection_string) as sb:
        runtime = management.get_queue_runtime_properties
        fresh = runtime(name)
        assert counts(fresh) == {"active": 0, "scheduled": 0, "dead": 0, "total": 0,
                                 "transfer": (0, 0)}  # fmt: skip
        assert fresh.size_in_bytes == 0
        with open_sender(sb, name) as sender:
            sender.send_messages([ServiceBusMessage(f"job-{i}") for i in range(4)])
            sent = runtime(name)
            assert counts(sent)["active"] == 4
            assert counts(sent)["total"] == 4
            assert (sent.size_in_bytes or 0) > 0
            assert sent.created_at_utc is not None
            assert sent.accessed_at_utc is not None
            assert sent.accessed_at_utc >= sent.created_at_utc
            (sequence,) = sender.schedule_messages(
                ServiceBusMessage("later"), dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
            )
            scheduled = counts(runtime(name))
            assert (scheduled["active"], scheduled["scheduled"], scheduled["total"]) == (4, 1, 5)
            sender.cancel_scheduled_messages(sequence)
            assert counts(runtime(name))["scheduled"] == 0
        with sb.get_queue_receiver(name) as receiver:
            first, second, third = receive(receiver, 3)
            # Locked messages are still active messages, as in Azure.
            assert counts(runtime(name))["active"] == 4
            receiver.complete_message(first)
            assert counts(runtime(name))["active"] == 3
            receiver.dead_letter_message(second, reason="bad", error_description="test")
            after_dead_letter = counts(runtime(name))
            assert (after_dead_letter["active"], after_dead_letter["dead"]) == (2, 1)
            assert after_dead_letter["total"] == 3
            # A deferred message stays in the queue and is counted as active.
            receiver.defer_message(third)
            assert counts(runtime(name)) == {"active": 2, "scheduled": 0, "dead": 1, "total": 3,
                                             "transfer": (0, 0)}  # fmt: skip
            (deferred,) = receiver.receive_deferred_messages([third.sequence_number])
            receiver.complete_message(deferred)
            (last,) = receive(receiver, 1)
            receiver.complete_message(last)
        with sb.get_queue_receiver(name, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dead:
            (dead_letter,) = receive(dead, 1)
            dead.complete_message(dead_letter)
        drained = runtime(name)
        assert counts(drained)["total"] == 0
        assert drained.size_in_bytes == 0


def test_get_queue_shows_the_configured_properties(configured: RunningEmulator):
    with admin(configured) as management:
        queue = management.get_queue("admin-properties")
        runtime = management.get_queue_runtime_properties("admin-properties")
    assert queue.name == "admin-properties"
    assert queue.lock_duration == dt.timedelta(seconds=45)
    assert queue.max_delivery_count == 7
    assert queue.requires_duplicate_detection is True
    assert queue.duplicate_detection_history_time_window == dt.timedelta(minutes=2)
    assert queue.dead_lettering_on_message_expiration is True
    assert queue.default_message_time_to_live == dt.timedelta(days=2)
    assert queue.requires_session is False
    assert queue.forward_to is None
    # Azure names a forwarding target by its full address.
    assert queue.forward_dead_lettered_messages_to is not None
    assert queue.forward_dead_lettered_messages_to.endswith("/parking")
    assert queue.max_message_size_in_kilobytes == 256
    assert queue.status == "Active"
    # Nothing sent to nor read from it: Azure's "never" (0001-01-01).
    assert runtime.accessed_at_utc is not None
    assert runtime.accessed_at_utc.year == 1


def test_defaults_of_a_queue_that_leaves_properties_out(configured: RunningEmulator):
    with admin(configured) as management:
        queue = management.get_queue("parking")
    assert queue.lock_duration == dt.timedelta(minutes=1)
    assert queue.max_delivery_count == 10
    assert queue.requires_duplicate_detection is False
    ttl = queue.default_message_time_to_live
    assert isinstance(ttl, dt.timedelta)
    assert ttl > dt.timedelta(days=3650)  # never expires


def test_list_queues_returns_the_configured_queues(configured: RunningEmulator):
    expected = sorted(q["Name"] for q in CONFIGURED_QUEUES)
    with admin(configured) as management:
        listed = [q.name for q in management.list_queues()]
        paged = [q.name for q in management.list_queues(max_page_size=5)]
        runtime = {q.name: q for q in management.list_queues_runtime_properties()}
        assert [q.max_delivery_count for q in management.list_queues() if q.name == "max-two"] == [
            2
        ]
    assert sorted(listed) == expected
    assert paged == listed  # followed the feed's next links, page by page
    assert sorted(runtime) == expected
    assert all(r.total_message_count is not None for r in runtime.values())


def test_unknown_queue_is_resource_not_found(configured: RunningEmulator):
    with admin(configured) as management:
        with pytest.raises(ResourceNotFoundError):
            management.get_queue("no-such-queue")
        with pytest.raises(ResourceNotFoundError):
            management.get_queue_runtime_properties("no-such-queue")
        with pytest.raises(ResourceNotFoundError):
            management.get_subscription("no-topic", "no-subscription")
        assert list(management.list_topics()) == []


def test_changes_are_refused_with_a_clear_405(configured: RunningEmulator):
    with admin(configured) as management:
        with pytest.raises(HttpResponseError, match=r"Config\.json") as created:
            management.create_queue("made-at-run-time")
        assert created.value.status_code == 405
        with pytest.raises(HttpResponseError, match="read-only") as deleted:
            management.delete_queue("parking")
        assert deleted.value.status_code == 405
        queue = management.get_queue("parking")
        with pytest.raises(HttpResponseError, match=r"Config\.json"):
            management.update_queue(queue, max_delivery_count=3)
        assert management.get_queue("parking").max_delivery_count == 10


class StaticToken:
    """A TokenCredential: the endpoint accepts Bearer tokens without checking them."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("not-checked", 2**31)


def test_bearer_tokens_are_accepted(configured: RunningEmulator):
    management = ServiceBusAdministrationClient(
        f"{configured.admin_host}:{configured.admin_port}",
        StaticToken(),
        connection_verify=str(configured.admin_certificate),
    )
    with management:
        assert management.get_queue("parking").name == "parking"


def test_plain_http_is_served_too(configured: RunningEmulator):
    """Clients that honour UseDevelopmentEmulator (as .NET's does) use http on the port."""
    base = f"http://{configured.admin_host}:{configured.admin_port}"
    with urllib.request.urlopen(f"{base}/$Resources/queues?api-version=2021-05") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/atom+xml")
        assert b'<title type="text">parking</title>' in response.read()
    request = urllib.request.Request(f"{base}/parking", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 405
    assert b"<Code>405</Code>" in refused.value.read()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base}/parking/subscriptions")
    assert missing.value.code == 404


def test_counts_are_consistent_while_traffic_flows(configured: RunningEmulator):
    """Readers on other threads see whole sends only, never more than were acknowledged."""
    name, batches, size = "admin-traffic", 20, 10
    acknowledged = 0
    seen: list[tuple[int, int]] = []  # (acknowledged before the read, count read)
    done = threading.Event()

    def watch() -> None:
        with admin(configured) as management:
            while not done.is_set():
                before = acknowledged
                active = management.get_queue_runtime_properties(name).active_message_count
                seen.append((before, active or 0))

    watchers = [threading.Thread(target=watch) for _ in range(3)]
    for watcher in watchers:
        watcher.start()
    try:
        with client(configured.connection_string) as sb, open_sender(sb, name) as sender:
            for _ in range(batches):
                sender.send_messages([ServiceBusMessage("x") for _ in range(size)])
                acknowledged += size
    finally:
        done.set()
        for watcher in watchers:
            watcher.join(30)
    assert seen
    for before, active in seen:
        assert before <= active <= batches * size
        assert active % size == 0  # a batch is enqueued whole, between two reactor events
    with admin(configured) as management:
        assert management.get_queue_runtime_properties(name).active_message_count == 200
