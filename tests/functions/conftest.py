"""Function tier: the decorated functions and the processing core, on real Azurite."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.servicebus_emulator.process import start_emulator
from shared.config import Settings
from shared.services import Services, build_services
from tests.fixtures.app import TEST_API_KEYS, emulator_config, own_storage_names

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SETTINGS = json.loads((REPO_ROOT / "local.settings.sample.json").read_text())["Values"]

EMULATOR_STYLE_SB = (
    "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true"
)


@pytest.fixture(scope="module")
async def store_only_services(storage_connection_string: str) -> AsyncIterator[Services]:
    """Services whose Storage is real; Service Bus is never touched by these tests."""
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": storage_connection_string,
            "ServiceBusConnection": EMULATOR_STYLE_SB,
            **own_storage_names(),
            "RETRY_MAX_ATTEMPTS": "3",
            "JOB_TIMEOUT_SECONDS": "0.5",
        }
    )
    services = await build_services(settings)
    yield services
    await services.aclose()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with start_emulator(emulator_config()) as running:
        yield running


@pytest.fixture(scope="module")
def function_app_extra_env() -> dict[str, str]:
    """Settings a module adds to `function_app_env` (override it in the module)."""
    return {}


@pytest.fixture(scope="module")
async def function_app_env(
    storage_connection_string: str, emulator: Any, function_app_extra_env: dict[str, str]
) -> AsyncIterator[dict[str, str]]:
    """The process environment function_app.py is imported in, as the worker's is: the sample
    settings, Azurite, the emulator, tables of the module's own and the test API keys. The
    module (imported by the test, or by the worker's indexing) is shut down and forgotten
    afterwards, and the environment put back."""
    env = {
        **SAMPLE_SETTINGS,
        "AzureWebJobsStorage": storage_connection_string,
        "ServiceBusConnection": emulator.connection_string,
        **own_storage_names(),
        "API_KEYS": json.dumps(TEST_API_KEYS),
        **function_app_extra_env,
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    sys.modules.pop("function_app", None)
    try:
        yield env
    finally:
        module = sys.modules.pop("function_app", None)
        if module is not None:
            if module.app.startup_task_done:  # shut the ASGI app down here, not in __del__
                await module.app.middleware.notify_shutdown()
                module.app.startup_task_done = False
            await module.provider.aclose()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
