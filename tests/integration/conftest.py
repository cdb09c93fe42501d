"""Integration tier: real Azurite, the project's Service Bus emulator, the real SDKs.

The emulator, downstream stub and app settings fixtures live in tests/fixtures/app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.config import Settings
from shared.services import Services, build_services
from tests.integration.helpers import api_client


@pytest.fixture(scope="module")
async def services(app_env: dict[str, str]) -> AsyncIterator[Services]:
    built = await build_services(Settings.from_env(app_env))
    yield built
    await built.aclose()


@pytest.fixture(scope="module")
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(services) as client:
        yield client
