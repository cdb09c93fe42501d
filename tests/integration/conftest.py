"""Integration tier: real Azurite, the project's Service Bus emulator, the real SDKs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from devtools.downstream_stub import StubState, create_stub_app, serve_in_thread
from devtools.servicebus_emulator.process import start_emulator
from functions.http_api import create_api
from shared.config import Settings
from shared.services import Services, ServicesProvider, build_services

APP_QUEUES = ("summarize", "embed", "sync")
QUEUE_PROPERTIES = {
    "MaxDeliveryCount": 5,
    "LockDuration": "PT5S",
    "DefaultMessageTimeToLive": "PT1H",
    "DeadLetteringOnMessageExpiration": True,
    "RequiresDuplicateDetection": True,
    "DuplicateDetectionHistoryTimeWindow": "PT10M",
    "RequiresSession": False,
    "ForwardTo": "",
    "ForwardDeadLetteredMessagesTo": "",
}


def emulator_config(queues: tuple[str, ...] = APP_QUEUES) -> dict[str, Any]:
    """The app's queues as the official emulator's Config.json declares them (short locks)."""
    return {
        "UserConfig": {
            "Namespaces": [
                {
                    "Name": "sbemulatorns",
                    "Queues": [{"Name": q, "Properties": QUEUE_PROPERTIES} for q in queues],
                    "Topics": [],
                }
            ],
            "Logging": {"Type": "Console"},
        }
    }


@pytest.fixture(scope="module")
def app_service_bus() -> Iterator[Any]:
    """An emulator per test module, with the app's queues declared as in Azure."""
    with start_emulator(emulator_config()) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def downstream() -> Iterator[tuple[str, StubState]]:
    state = StubState()
    with serve_in_thread(create_stub_app(state)) as url:
        yield url, state


@pytest.fixture(scope="module")
def app_env(
    storage_connection_string: str, app_service_bus: Any, downstream: tuple[str, StubState]
) -> dict[str, str]:
    """App settings for one test module: its own tables, so modules never see each other."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "AzureWebJobsStorage": storage_connection_string,
        "ServiceBusConnection": app_service_bus.connection_string,
        "JOBS_TABLE_NAME": f"jobs{suffix}",
        "IDEMPOTENCY_TABLE_NAME": f"idem{suffix}",
        "AUDIT_TABLE_NAME": f"audit{suffix}",
        "PAYLOAD_CONTAINER_NAME": f"payloads{suffix}",
        "SYNC_TARGETS": json.dumps({"crm": downstream[0]}),
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "1",
        "RETRY_MAX_ATTEMPTS": "3",
        "JOB_TIMEOUT_SECONDS": "60",
    }


@pytest.fixture(scope="module")
async def services(app_env: dict[str, str]) -> AsyncIterator[Services]:
    built = await build_services(Settings.from_env(app_env))
    yield built
    await built.aclose()


@pytest.fixture(scope="module")
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async def ready() -> Services:
        return services

    app = create_api(
        ServicesProvider(ready),
        max_request_bytes=services.settings.max_request_bytes,
        sync_targets=services.settings.sync_targets,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
