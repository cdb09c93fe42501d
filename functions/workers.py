"""Service Bus queue triggers, two per job type: receive, hand to shared.consumer, settle.

`<type>_worker` takes the type's queue and `<type>_high_worker` its high-priority queue. Each
trigger has concurrency slots of its own in the Functions host (and scales on its own queue's
length on Flex Consumption), so a high job never waits behind a backlog of normal ones
(docs/architecture.md#priorities). One more trigger delivers completion callbacks from the
callbacks queue (shared/callbacks).

Messages are peek-locked with auto-complete off; the Outcome decides the settlement. If
processing itself breaks (Storage down, say), the message is abandoned so Service Bus
redelivers it, and MaxDeliveryCount on the queue is the last line before the DLQ.
"""

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

from shared.config import (
    CALLBACKS_QUEUE_SETTING,
    HIGH_QUEUE_NAME_SETTINGS,
    QUEUE_NAME_SETTINGS,
    SERVICE_BUS,
)
from shared.consumer import Delivery, handle_delivery
from shared.jobs import JobType, Priority
from shared.queue import body_bytes, traceparent_of
from shared.services import ServicesProvider

log = logging.getLogger(__name__)


# Blocking settlement calls get threads of their own: on the default pool (a few threads on
# a small instance) each would hold a thread for a whole round trip and starve the rest.
_SETTLEMENT_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="settlement")


class FunctionsSettlement:
    """Settlement through the Functions host's message actions (blocking gRPC calls). An
    actions object that also offers coroutines (`complete_async`, ...; the local host's
    does) is awaited directly, with no thread at all."""

    def __init__(
        self,
        message: servicebus.ServiceBusReceivedMessage,
        actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        self._message = message
        self._actions = actions

    async def _settle(self, name: str, **kwargs: Any) -> None:
        native = getattr(self._actions, f"{name}_async", None)
        if native is not None:
            await native(self._message, **kwargs)
            return
        call = functools.partial(getattr(self._actions, name), self._message, **kwargs)
        await asyncio.get_running_loop().run_in_executor(_SETTLEMENT_THREADS, call)

    async def complete(self) -> None:
        await self._settle("complete")

    async def dead_letter(self, reason: str, description: str) -> None:
        await self._settle(
            "deadletter", deadletter_reason=reason, deadletter_error_description=description
        )

    async def abandon(self) -> None:
        await self._settle("abandon")


async def deliver(
    provider: ServicesProvider,
    job_type: JobType,
    message: servicebus.ServiceBusReceivedMessage,
    actions: servicebus.ServiceBusMessageActions,
    priority: Priority = Priority.NORMAL,
) -> None:
    settlement = FunctionsSettlement(message, actions)
    try:
        services = await provider.get()
        delivery = Delivery(
            body=body_bytes(message),
            queue=services.queue.name_for(job_type, priority),
            message_id=message.message_id,
            traceparent=traceparent_of(message),
        )
        await handle_delivery(delivery, services.processor, services.queue, settlement)
    except Exception:
        log.exception(
            "processing message %s (delivery %s) failed; abandoning it for redelivery",
            message.message_id,
            message.delivery_count,
        )
        try:
            await settlement.abandon()
        except Exception:
            log.exception("abandon failed too; the lock will expire and Service Bus redeliver")
        raise


def create_blueprint(provider: ServicesProvider) -> func.Blueprint:
    bp = func.Blueprint()
    for job_type in JobType:
        for priority in Priority:
            _register_worker(bp, job_type, priority, provider)
    _register_callback_worker(bp, provider)
    return bp


def worker_name(job_type: JobType, priority: Priority = Priority.NORMAL) -> str:
    """`sync_worker`, `sync_high_worker`: the function names (AzureWebJobs.<name>.Disabled)."""
    infix = "" if priority is Priority.NORMAL else f"_{priority.value}"
    return f"{job_type.value}{infix}_worker"


async def deliver_callback(
    provider: ServicesProvider,
    message: servicebus.ServiceBusReceivedMessage,
    actions: servicebus.ServiceBusMessageActions,
) -> None:
    """One callback attempt. It runs apart from the job's own trigger: a slow or failing
    endpoint holds only this message, never a job's."""
    from functions.http_api import job_document_bytes  # FastAPI: imported on first use

    settlement = FunctionsSettlement(message, actions)
    try:
        services = await provider.get()
        base = services.settings.callbacks.public_base_url
        await services.callbacks.handle(
            body_bytes(message), lambda job: job_document_bytes(job, base), settlement
        )
    except Exception:
        log.exception("callback message %s failed; abandoning it", message.message_id)
        try:
            await settlement.abandon()
        except Exception:
            log.exception("abandon failed too; the lock will expire and Service Bus redeliver")
        raise


def _register_callback_worker(bp: func.Blueprint, provider: ServicesProvider) -> None:
    async def callback_worker(
        msg: servicebus.ServiceBusReceivedMessage,
        message_actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        await deliver_callback(provider, msg, message_actions)

    bp.function_name("callback_worker")(
        bp.service_bus_queue_trigger(
            arg_name="msg",
            queue_name=f"%{CALLBACKS_QUEUE_SETTING}%",
            connection=SERVICE_BUS,
            auto_complete_messages=False,
        )(callback_worker)
    )


def _register_worker(
    bp: func.Blueprint, job_type: JobType, priority: Priority, provider: ServicesProvider
) -> None:
    async def worker(
        msg: servicebus.ServiceBusReceivedMessage,
        message_actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        await deliver(provider, job_type, msg, message_actions, priority)

    name = worker_name(job_type, priority)
    settings = HIGH_QUEUE_NAME_SETTINGS if priority is Priority.HIGH else QUEUE_NAME_SETTINGS
    worker.__name__ = worker.__qualname__ = name
    bp.function_name(name)(
        bp.service_bus_queue_trigger(
            arg_name="msg",
            queue_name=f"%{settings[job_type]}%",
            connection=SERVICE_BUS,
            auto_complete_messages=False,
        )(worker)
    )
