"""The AMQP side: a proton reactor handler that maps links onto queues.

Addresses: `<queue>` (send and receive), `<queue>/$DeadLetterQueue` (receive),
`<entity>/$management` (request/response), `$cbs` (claims-based auth: every token accepted).
All on the reactor thread; a 50 ms tick expires locks and releases scheduled messages.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from proton import Condition, Connection, Delivery, Disposition, Endpoint, Handler, Link, symbol

from devtools.servicebus_emulator.codec import CodecError, parse, split_batch
from devtools.servicebus_emulator.config import QueueSettings
from devtools.servicebus_emulator.entities import LockLost, Queue
from devtools.servicebus_emulator.links import (
    Consumer,
    ReplyLink,
    dead_letter_details,
    new_delivery,
    norm,
    wants_session,
)
from devtools.servicebus_emulator.replies import answer_request
from devtools.servicebus_emulator.snapshot import SnapshotBridge, settlement_kind, snapshot

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05
INCOMING_CREDIT = 500
LOCK_LOST = "com.microsoft:message-lock-lost"
DEAD_LETTER_CONDITION = "com.microsoft:dead-letter"


class NotFound(Exception):
    pass


class Broker(Handler):
    def __init__(
        self,
        queues: dict[str, QueueSettings] | None,
        *,
        default_settings: QueueSettings | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__()
        self._auto_create = queues is None
        self._defaults = default_settings or QueueSettings()
        self.queues: dict[str, Queue] = {}
        for name, settings in (queues or {}).items():
            self._create(name, settings)
        self._consumers: dict[str, list[Consumer]] = {}  # entity path -> consumers
        self._consumer_by_link: dict[Link, Consumer] = {}
        self._replies: dict[tuple[Connection, str], ReplyLink] = {}
        self._reply_by_link: dict[Link, ReplyLink] = {}
        self._should_stop = should_stop
        self._round_robin: dict[str, int] = {}
        self.acceptor: Any = None

    # ---- entities -----------------------------------------------------------------------

    def _create(self, name: str, settings: QueueSettings) -> Queue:
        queue = Queue(name, settings, on_available=self._dispatch, lookup=self._lookup)
        self.queues[name.lower()] = queue
        log.info("queue %s ready (lock %ss, max delivery %d)", name, settings.lock_duration,
                 settings.max_delivery_count)  # fmt: skip
        return queue

    def _lookup(self, name: str) -> Queue | None:
        return self.queues.get(name.lower())

    def resolve(self, address: str | None) -> tuple[Queue, str]:
        """Address -> (queue or its DLQ, kind) where kind is 'entity', 'management' or 'cbs'."""
        path = address or ""
        if "://" in path:
            path = urlparse(path).path
        path = path.strip("/")
        lowered = path.lower()
        if lowered == "$cbs":
            raise LookupError("cbs")
        kind = "entity"
        if lowered.endswith("/$management"):
            kind, path, lowered = (
                "management",
                path[: -len("/$management")],
                lowered[: -len("/$management")],
            )
        dead_letter = lowered.endswith("/$deadletterqueue")
        if dead_letter:
            path, lowered = path[: -len("/$deadletterqueue")], lowered[: -len("/$deadletterqueue")]
        queue = self.queues.get(lowered)
        if queue is None:
            if not self._auto_create or not path or "/" in path:
                raise NotFound(f"The messaging entity '{path}' could not be found.")
            queue = self._create(path, self._defaults)
        if dead_letter:
            assert queue.dead_letters is not None
            queue = queue.dead_letters
        return queue, kind

    # ---- connection lifecycle -----------------------------------------------------------

    def on_reactor_init(self, event: Any) -> None:
        event.reactor.schedule(TICK_SECONDS, self)

    def on_timer_task(self, event: Any) -> None:
        if self._should_stop():
            log.info("stopping")
            if self.acceptor is not None:
                self.acceptor.close()
            event.reactor.stop()
            return
        now = time.time()
        for queue in list(self.queues.values()):
            queue.tick(now)
            if queue.dead_letters is not None:
                queue.dead_letters.tick(now)
        event.reactor.schedule(TICK_SECONDS, self)

    def on_admin_snapshot(self, event: Any) -> None:
        """The administration endpoint asks for counts (an event injected from its thread)."""
        SnapshotBridge.answer(event.subject, lambda: snapshot(self.queues.values()))

    def on_connection_remote_open(self, event: Any) -> None:
        if event.connection.state & Endpoint.LOCAL_UNINIT:
            event.connection.open()

    def on_session_remote_open(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_UNINIT:
            event.session.open()

    def on_link_remote_open(self, event: Any) -> None:
        link: Link = event.link
        if not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        address = link.remote_source.address if link.is_sender else link.remote_target.address
        try:
            queue, kind = self.resolve(address)
        except LookupError:
            link.open()  # $cbs
            if link.is_sender:
                self._register_reply_link(link, "$cbs")
            else:
                link.flow(INCOMING_CREDIT)
            return
        except NotFound as exc:
            log.warning("attach refused: %s", exc)
            link.open()
            link.condition = Condition("amqp:not-found", str(exc))
            link.close()
            return
        if link.is_sender and wants_session(link):
            log.warning("attach refused: session receiver on %s", queue.name)
            link.open()
            link.condition = Condition(
                "amqp:not-implemented", "sessions are not supported by this emulator"
            )
            link.close()
            return
        if kind == "entity" and not link.is_sender:
            # The tier's size limit, advertised as Service Bus does: the SDK checks it at send.
            link.max_message_size = queue.settings.max_message_bytes
        link.open()
        if kind == "management":
            if link.is_sender:
                self._register_reply_link(link, address or "")
            else:
                link.flow(INCOMING_CREDIT)
        elif link.is_sender:
            presettled = link.remote_snd_settle_mode == Link.SND_SETTLED
            consumer = Consumer(link, queue, presettled)
            self._consumers.setdefault(queue.name, []).append(consumer)
            self._consumer_by_link[link] = consumer
            log.info("receiver attached to %s (%s)", queue.name,
                     "receive-and-delete" if presettled else "peek-lock")  # fmt: skip
        else:
            if queue.is_dead_letter:
                link.condition = Condition("amqp:not-allowed", "cannot send to a dead-letter queue")
                link.close()
                return
            link.flow(INCOMING_CREDIT)
            log.info("sender attached to %s", queue.name)

    def _register_reply_link(self, link: Link, address: str) -> None:
        reply = ReplyLink(link)
        for name in {address, link.remote_target.address or ""}:
            self._replies[(link.connection, norm(name))] = reply
        self._reply_by_link[link] = reply

    def on_link_remote_close(self, event: Any) -> None:
        self._forget_link(event.link)
        if event.link.state & Endpoint.LOCAL_ACTIVE:
            event.link.close()

    def on_session_remote_close(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_ACTIVE:
            event.session.close()

    def on_connection_remote_close(self, event: Any) -> None:
        self._forget_connection(event.connection)
        if event.connection.state & Endpoint.LOCAL_ACTIVE:
            event.connection.close()

    def on_transport_closed(self, event: Any) -> None:
        if event.connection is not None:
            self._forget_connection(event.connection)

    def _forget_connection(self, connection: Connection) -> None:
        link = connection.link_head(0)
        while link is not None:
            self._forget_link(link)
            link = link.next(0)

    def _forget_link(self, link: Link) -> None:
        # Locks taken through this link stay until they expire, as in the real service.
        consumer = self._consumer_by_link.pop(link, None)
        if consumer is not None:
            consumers = self._consumers.get(consumer.queue.name, [])
            if consumer in consumers:
                consumers.remove(consumer)
        reply = self._reply_by_link.pop(link, None)
        if reply is not None:
            for key in [k for k, v in self._replies.items() if v is reply]:
                del self._replies[key]

    # ---- flow and dispatch ---------------------------------------------------------------

    def on_link_flow(self, event: Any) -> None:
        link = event.link
        consumer = self._consumer_by_link.get(link)
        if consumer is not None:
            self._dispatch(consumer.queue)
        reply = self._reply_by_link.get(link)
        if reply is not None:
            self._flush(reply)

    def _dispatch(self, queue: Queue) -> None:
        consumers = [c for c in self._consumers.get(queue.name, []) if c.link.credit > 0]
        start = self._round_robin.get(queue.name, 0)
        while consumers and queue.has_available():
            start = (start + 1) % len(consumers)
            consumer = consumers[start]
            message = queue.next_available()
            if message is None:
                break
            self._deliver(consumer, message)
            if consumer.link.credit <= 0:
                consumers.remove(consumer)
        self._round_robin[queue.name] = start
        for consumer in self._consumers.get(queue.name, []):
            if consumer.link.drain_mode and consumer.link.credit > 0:
                consumer.link.drained()

    def _deliver(self, consumer: Consumer, message: Any) -> None:
        link = consumer.link
        consumer.queue.operations["receive"] += 1
        if consumer.presettled:
            wire = message.wire(lock=False)
            consumer.queue.remove(message)
            delivery = new_delivery(link, uuid.uuid4().bytes_le)
            link.send(wire)
            link.advance()
            delivery.settle()
            return
        token = consumer.queue.lock(message)
        delivery = new_delivery(link, token.bytes_le)
        delivery.lock_token = token  # proton's tag getter insists on text; keep it here
        link.send(message.wire(lock=True))
        link.advance()

    # ---- deliveries ----------------------------------------------------------------------

    def on_delivery(self, event: Any) -> None:
        delivery: Delivery = event.delivery
        link = delivery.link
        if link.is_receiver:
            if delivery.readable and not delivery.partial:
                raw = link.recv(delivery.pending)
                link.advance()
                self._on_incoming(link, delivery, bytes(raw or b""))
                if link.credit < INCOMING_CREDIT // 2:
                    link.flow(INCOMING_CREDIT - link.credit)
        elif delivery.updated:
            # Unsettled dispositions (complete, abandon, ...) wait for the outcome to be echoed;
            # pre-settled ones (the SDK releases prefetched messages that way on close) do not.
            self._on_settlement(link, delivery)

    def _on_incoming(self, link: Link, delivery: Delivery, raw: bytes) -> None:
        address = link.remote_target.address
        try:
            queue, kind = self.resolve(address)
        except LookupError:
            self._on_request(link, raw, None, cbs=True)
            delivery.update(Disposition.ACCEPTED)
            delivery.settle()
            return
        except NotFound as exc:
            delivery.local.condition = Condition("amqp:not-found", str(exc))
            delivery.update(Disposition.REJECTED)
            delivery.settle()
            return
        if kind == "management":
            self._on_request(link, raw, queue, cbs=False)
            delivery.update(Disposition.ACCEPTED)
            delivery.settle()
            return
        try:
            sections = parse(raw)
        except CodecError as exc:
            delivery.local.condition = Condition("amqp:decode-error", str(exc))
            delivery.update(Disposition.REJECTED)
            delivery.settle()
            return
        if len(raw) > queue.settings.max_message_bytes:
            limit = queue.settings.max_message_bytes
            delivery.local.condition = Condition(
                "amqp:link:message-size-exceeded",
                f"The received message ({len(raw)} bytes) exceeds the limit ({limit} bytes) "
                f"of queue '{queue.name}'.",
                {symbol("max-message-size"): limit},  # the SDK reads an info map, even empty
            )
            delivery.update(Disposition.REJECTED)
            delivery.settle()
            return
        queue.operations["send"] += 1
        batch = split_batch(sections)
        for message in batch if batch is not None else [sections]:
            sequence = queue.enqueue(message)
            log.debug("%s: enqueued %s as %s", queue.name, message.message_id, sequence)
        delivery.update(Disposition.ACCEPTED)
        delivery.settle()

    def _on_settlement(self, link: Link, delivery: Delivery) -> None:
        consumer = self._consumer_by_link.get(link)
        queue = consumer.queue if consumer is not None else None
        state = delivery.remote_state
        token = getattr(delivery, "lock_token", None)
        try:
            if queue is None or token is None:
                raise LockLost("the receiving link is gone")
            if state == Disposition.ACCEPTED:
                queue.complete(token)
            elif state == Disposition.REJECTED:
                reason, description = dead_letter_details(delivery.remote.condition)
                queue.dead_letter(token, reason, description)
            elif state == Disposition.MODIFIED:
                if delivery.remote.undeliverable:
                    queue.defer(token)
                else:
                    queue.abandon(token, count_delivery=delivery.remote.failed)
            elif state == Disposition.RELEASED:
                queue.abandon(token, count_delivery=False)
            else:
                return  # RECEIVED or unknown: not a settlement
            queue.operations[settlement_kind(state, delivery)] += 1
            if not delivery.settled:
                delivery.update(state)
        except LockLost as exc:
            if not delivery.settled:
                delivery.local.condition = Condition(LOCK_LOST, str(exc))
                delivery.update(Disposition.REJECTED)
            else:
                log.info("pre-settled disposition ignored: %s", exc)
        delivery.settle()

    # ---- request/response (management and cbs) -------------------------------------------

    def _on_request(self, link: Link, raw: bytes, queue: Queue | None, *, cbs: bool) -> None:
        answered = answer_request(raw, queue, cbs=cbs)
        if answered is None:
            log.warning("undecodable management request on %s", link.remote_target.address)
            return
        reply_to, response = answered
        reply = self._replies.get((link.connection, norm(reply_to))) or self._replies.get(
            (link.connection, norm(link.remote_target.address or ""))
        )
        if reply is None:
            log.warning("no reply link for %s on this connection", reply_to)
            return
        reply.pending.append(response)
        self._flush(reply)

    def _flush(self, reply: ReplyLink) -> None:
        link = reply.link
        while reply.pending and link.credit > 0:
            delivery = new_delivery(link, uuid.uuid4().bytes)
            link.send(reply.pending.popleft())
            link.advance()
            delivery.settle()
