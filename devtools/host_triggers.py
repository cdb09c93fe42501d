"""Running triggers locally: Service Bus queue triggers on SDK receivers, timers on NCRONTAB.

A queue trigger gets up to `maxConcurrentCalls` competing receivers (peek-lock, prefetch,
AutoLockRenewer), opened while its queue has work, each calling the SAME decorated function
with a real received message and a message-actions object backed by its receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import certifi
from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus.aio import AutoLockRenewer, ServiceBusClient, ServiceBusReceiver
from croniter import croniter

from devtools.host_config import QueueTrigger, ServiceBusOptions, TimerTrigger

log = logging.getLogger("devtools.host")

SETTLE_TIMEOUT_SECONDS = 60.0
RECEIVE_WAIT_SECONDS = 1.0


# ---- message actions backed by an SDK receiver -------------------------------------------


class ReceiverMessageActions:
    """The Functions `ServiceBusMessageActions` surface (blocking calls), done by a receiver.

    The real actions are blocking gRPC calls; the workers call them from a thread, so these
    hand the settlement to the host's event loop and wait for it.
    """

    def __init__(self, receiver: ServiceBusReceiver, loop: asyncio.AbstractEventLoop) -> None:
        self._receiver = receiver
        self._loop = loop

    def _run(self, operation: Awaitable[Any]) -> Any:
        future = asyncio.run_coroutine_threadsafe(_awaited(operation), self._loop)
        return future.result(SETTLE_TIMEOUT_SECONDS)

    def complete(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.complete_message(message))

    def abandon(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.abandon_message(message))

    def deadletter(
        self,
        message: ServiceBusReceivedMessage,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self._run(
            self._receiver.dead_letter_message(
                message, reason=deadletter_reason, error_description=deadletter_error_description
            )
        )

    def defer(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.defer_message(message))

    def renew_message_lock(self, message: ServiceBusReceivedMessage) -> None:
        self._run(self._receiver.renew_message_lock(message))

    # Coroutine forms for callers already on the host's loop (functions/workers.py uses
    # them when present): no thread and no hop between loops per settlement.

    async def complete_async(self, message: ServiceBusReceivedMessage) -> None:
        await self._receiver.complete_message(message)

    async def abandon_async(self, message: ServiceBusReceivedMessage) -> None:
        await self._receiver.abandon_message(message)

    async def deadletter_async(
        self,
        message: ServiceBusReceivedMessage,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        await self._receiver.dead_letter_message(
            message, reason=deadletter_reason, error_description=deadletter_error_description
        )


async def _awaited(operation: Awaitable[Any]) -> Any:
    return await operation


# ---- running triggers ---------------------------------------------------------------------


def shared_tls_context() -> ssl.SSLContext:
    """One TLS context for every receiver's connection (`ServiceBusClient(ssl_context=)`).
    Without it the SDK builds a context and loads the CA bundle for each connection it
    opens, ~45 ms of CPU each; this is the same bundle (certifi) it loads by default."""
    return ssl.create_default_context(cafile=certifi.where())


async def run_queue_trigger(
    trigger: QueueTrigger,
    client: ServiceBusClient,
    options: ServiceBusOptions,
    stopping: asyncio.Event,
) -> None:
    renewer = AutoLockRenewer(max_lock_renewal_duration=options.max_auto_lock_renewal_seconds)
    try:
        await _ElasticReceivers(trigger, client, options, renewer, stopping).run()
    finally:
        await renewer.close()


class _ElasticReceivers:
    """Up to `maxConcurrentCalls` competing receivers for one trigger, only while there is work.

    One receiver always listens. Each message received opens one more receiver, until the
    limit; an extra receiver closes after a receive that found nothing. An idle queue thus
    costs one connection, not `maxConcurrentCalls` of them. (One receiver shared by
    concurrent invocations is no option: the SDK serialises a connection's reads and writes
    behind one lock, and settlements then queue behind 0.2 s socket reads.)
    """

    def __init__(
        self,
        trigger: QueueTrigger,
        client: ServiceBusClient,
        options: ServiceBusOptions,
        renewer: AutoLockRenewer,
        stopping: asyncio.Event,
    ) -> None:
        self._trigger = trigger
        self._client = client
        self._options = options
        self._renewer = renewer
        self._stopping = stopping
        self._tasks: set[asyncio.Task[None]] = set()
        self._opened = 0

    async def run(self) -> None:
        self._start(permanent=True)
        try:
            while self._tasks:
                await asyncio.wait(set(self._tasks))
        finally:  # cancelled (the host's drain ran out): the receivers go too
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self, *, permanent: bool) -> None:
        self._opened += 1
        task = asyncio.create_task(self._receive_loop(self._opened, permanent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _scale_out(self) -> None:
        """Called on every received message: open one more receiver if under the limit."""
        if len(self._tasks) < self._options.max_concurrent_calls and not self._stopping.is_set():
            self._start(permanent=False)

    async def _receive_loop(self, slot: int, permanent: bool) -> None:
        """One receiver handling one message at a time; N of them give N concurrent calls."""
        trigger, loop = self._trigger, asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                async with self._client.get_queue_receiver(
                    trigger.queue_name, prefetch_count=self._options.prefetch_count
                ) as receiver:
                    actions = ReceiverMessageActions(receiver, loop)
                    while not self._stopping.is_set():
                        messages = await receiver.receive_messages(
                            max_message_count=1, max_wait_time=RECEIVE_WAIT_SECONDS
                        )
                        if not messages and not permanent:
                            return
                        for message in messages:
                            self._scale_out()
                            self._renewer.register(receiver, message)
                            await _invoke(trigger, message, actions)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not permanent:
                    log.warning("%s receiver %d failed; closing it", trigger.name, slot)
                    return
                log.exception("%s receiver %d failed; reconnecting in 1 s", trigger.name, slot)
                await asyncio.sleep(1.0)


async def _invoke(
    trigger: QueueTrigger, message: ServiceBusReceivedMessage, actions: ReceiverMessageActions
) -> None:
    kwargs: dict[str, Any] = {trigger.message_param: message}
    if trigger.actions_param:
        kwargs[trigger.actions_param] = actions
    try:
        await trigger.function(**kwargs)
    except Exception:
        # As in the real host: the invocation failed and is logged; settlement (if any) was
        # the function's job, and an unsettled message is redelivered when its lock expires.
        log.exception("Executed '%s' (Failed, message %s)", trigger.name, message.message_id)


@dataclass
class _TimerInfo:
    past_due: bool = False


async def run_timer_trigger(trigger: TimerTrigger, stopping: asyncio.Event) -> None:
    schedule = croniter(trigger.schedule, datetime.now(UTC), second_at_beginning=True)
    if trigger.run_on_startup:
        await _fire(trigger)
    while not stopping.is_set():
        due: datetime = schedule.get_next(datetime)
        delay = max(0.0, (due - datetime.now(UTC)).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
            return
        await _fire(trigger)


async def _fire(trigger: TimerTrigger) -> None:
    try:
        await trigger.function(**{trigger.timer_param: _TimerInfo()})
    except Exception:
        log.exception("Executed '%s' (Failed)", trigger.name)
