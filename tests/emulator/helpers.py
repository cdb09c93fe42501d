"""Shared helpers for the emulator suite: bounded receive loops and quick-closing senders."""

from __future__ import annotations

from typing import Any

from azure.servicebus import ServiceBusClient, ServiceBusSender
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.aio import ServiceBusSender as AsyncServiceBusSender
from azure.servicebus.aio.management import (
    ServiceBusAdministrationClient as AsyncServiceBusAdministrationClient,
)
from azure.servicebus.management import ServiceBusAdministrationClient

from devtools.servicebus_emulator.process import RunningEmulator

WAIT = 5  # seconds one receive call may wait; loops below make at most 20 calls


def client(connection: str, **kwargs: Any) -> ServiceBusClient:
    return ServiceBusClient.from_connection_string(connection, **kwargs)


def aclient(connection: str, **kwargs: Any) -> AsyncServiceBusClient:
    return AsyncServiceBusClient.from_connection_string(connection, **kwargs)


def admin(emulator: RunningEmulator) -> ServiceBusAdministrationClient:
    """The real administration client on the emulator's admin endpoint.

    azure-servicebus 7.15.0 sends https there even with UseDevelopmentEmulator=true, so it
    is told to trust the emulator's throw-away certificate.
    """
    return ServiceBusAdministrationClient.from_connection_string(
        emulator.admin_connection_string, connection_verify=str(emulator.admin_certificate)
    )


def aadmin(emulator: RunningEmulator) -> AsyncServiceBusAdministrationClient:
    return AsyncServiceBusAdministrationClient.from_connection_string(
        emulator.admin_connection_string, connection_verify=str(emulator.admin_certificate)
    )


def open_sender(sb: ServiceBusClient, queue: str) -> ServiceBusSender:
    """A queue sender without the SDK's keep-alive thread.

    The sender's close joins that thread, which sleeps in one-second steps (about half a
    second per close); switching it off keeps the suite quick and changes nothing on the wire.
    """
    return sb.get_queue_sender(queue, keep_alive=0)


def open_async_sender(sb: AsyncServiceBusClient, queue: str) -> AsyncServiceBusSender:
    return sb.get_queue_sender(queue, keep_alive=0)


def receive(receiver: Any, count: int) -> list[Any]:
    """Receive until `count` messages arrived (bounded)."""
    got: list[Any] = []
    for _ in range(20):
        got += receiver.receive_messages(max_message_count=count - len(got), max_wait_time=WAIT)
        if len(got) >= count:
            break
    return got


async def areceive(receiver: Any, count: int) -> list[Any]:
    """The async twin of `receive`."""
    got: list[Any] = []
    for _ in range(20):
        got += await receiver.receive_messages(
            max_message_count=count - len(got), max_wait_time=WAIT
        )
        if len(got) >= count:
            break
    return got
