"""Function tier: the decorated functions and the processing core, on real Azurite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from shared.config import Settings
from shared.services import Services, build_services

EMULATOR_STYLE_SB = (
    "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true"
)


@pytest.fixture(scope="module")
async def store_only_services(storage_connection_string: str) -> AsyncIterator[Services]:
    """Services whose Storage is real; Service Bus is never touched by these tests."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": storage_connection_string,
            "ServiceBusConnection": EMULATOR_STYLE_SB,
            "JOBS_TABLE_NAME": f"jobs{suffix}",
            "IDEMPOTENCY_TABLE_NAME": f"idem{suffix}",
            "AUDIT_TABLE_NAME": f"audit{suffix}",
            "PAYLOAD_CONTAINER_NAME": f"payloads{suffix}",
            "RETRY_MAX_ATTEMPTS": "3",
            "JOB_TIMEOUT_SECONDS": "0.5",
        }
    )
    services = await build_services(settings)
    yield services
    await services.aclose()
