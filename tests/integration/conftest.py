"""Integration tier: real Azurite, the project's Service Bus emulator, the real SDKs.

The emulator, downstream stub and app settings fixtures live in tests/fixtures/app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from functions.http_api import create_api
from shared.config import Settings
from shared.services import Services, ServicesProvider, build_services


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
