"""Integration tier: real Azurite, the project's Service Bus emulator, the real SDKs.

The emulator, downstream stub and app settings fixtures live in tests/fixtures/app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.host_process import HostProcess, run_host
from shared.config import Settings
from shared.services import Services, build_services
from tests.fixtures.app import CALLER_HEADERS
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


@pytest.fixture(scope="module")
def host(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    """devtools/host.py (the API and every trigger) as a child process, on the module's
    settings (a module changes them by overriding `app_env`)."""
    log_path = tmp_path_factory.mktemp("host") / "host.log"
    with run_host(app_env, log_path) as running:
        yield running


@pytest.fixture
async def http(host: HostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=host.base_url, timeout=10, headers=CALLER_HEADERS
    ) as client:
        yield client
