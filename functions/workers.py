"""Service Bus queue triggers, one per job type: receive, hand to shared.consumer, settle.

Messages are peek-locked with auto-complete off; the Outcome decides the settlement. If
processing itself breaks (Storage down, say), the message is abandoned so Service Bus
redelivers it, and MaxDeliveryCount on the queue is the last line before the DLQ.
"""

import asyncio
import logging

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

from shared.config import QUEUE_NAME_SETTINGS, SERVICE_BUS
from shared.consumer import Delivery, handle_delivery
from shared.jobs import JobType
from shared.queue import body_bytes, traceparent_of
from shared.services import ServicesProvider

log = logging.getLogger(__name__)


class FunctionsSettlement:
    """Settlement through the Functions host's message actions (blocking gRPC calls)."""

    def __init__(
        self,
        message: servicebus.ServiceBusReceivedMessage,
        actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        self._message = message
        self._actions = actions

    async def complete(self) -> None:
        await asyncio.to_thread(self._actions.complete, self._message)

    async def dead_letter(self, reason: str, description: str) -> None:
        await asyncio.to_thread(
            self._actions.deadletter,
            self._message,
            deadletter_reason=reason,
            deadletter_error_description=description,
        )

    async def abandon(self) -> None:
        await asyncio.to_thread(self._actions.abandon, self._message)


async def deliver(
    provider: ServicesProvider,
    job_type: JobType,
    message: servicebus.ServiceBusReceivedMessage,
    actions: servicebus.ServiceBusMessageActions,
) -> None:
    settlement = FunctionsSettlement(message, actions)
    try:
        services = await provider.get()
        delivery = Delivery(
            body=body_bytes(message),
            queue=services.queue.queue_names[job_type],
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
        _register_worker(bp, job_type, provider)
    return bp


def _register_worker(bp: func.Blueprint, job_type: JobType, provider: ServicesProvider) -> None:
    async def worker(
        msg: servicebus.ServiceBusReceivedMessage,
        message_actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        await deliver(provider, job_type, msg, message_actions)

    worker.__name__ = worker.__qualname__ = f"{job_type.value}_worker"
    bp.function_name(f"{job_type.value}_worker")(
        bp.service_bus_queue_trigger(
            arg_name="msg",
            queue_name=f"%{QUEUE_NAME_SETTINGS[job_type]}%",
            connection=SERVICE_BUS,
            auto_complete_messages=False,
        )(worker)
    )
