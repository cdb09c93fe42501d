"""Small helpers shared by the worker tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from functions.http_api import create_api
from shared.services import Services, ServicesProvider
from tests.fixtures.app import CALLER_HEADERS

REPO_ROOT = Path(__file__).resolve().parents[2]


async def wait_for_status(
    http: httpx.AsyncClient, job_id: str, statuses: set[str], within: float = 40.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        doc = (await http.get(f"/api/jobs/{job_id}")).json()
        if doc["status"] in statuses:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stayed {doc['status']}: {doc}")
        await asyncio.sleep(0.2)


def script(downstream: Any, record_id: str, responses: list[dict[str, Any]]) -> None:
    url, _ = downstream
    httpx.post(f"{url}/_script", json={"record_id": record_id, "responses": responses})


def calls_for(downstream: Any, record_id: str) -> list[dict[str, Any]]:
    _, state = downstream
    return [c for c in state.calls if c["record_id"] == record_id]


async def submit_sync(http: httpx.AsyncClient, record_id: str) -> str:
    response = await http.post(
        "/api/jobs",
        json={"type": "sync", "input": {"target": "crm", "record": {"id": record_id}}},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def api_client(
    services: Services, headers: dict[str, str] | None = CALLER_HEADERS
) -> httpx.AsyncClient:
    """The app's HTTP API over ASGI (no sockets), with `services` behind it; requests carry
    `headers` (an API key of TEST_API_KEYS by default)."""

    async def ready() -> Services:
        return services

    app = create_api(
        ServicesProvider(ready),
        max_request_bytes=services.settings.max_request_bytes,
        auth=services.settings.auth,
        sync_targets=services.settings.sync_targets,
        callback_hosts=services.settings.callbacks.allowed_hosts,
        max_delay_seconds=services.settings.max_delay_seconds,
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m devtools.cli ARGS` as an operator runs it, with the app's settings."""
    return subprocess.run(
        [sys.executable, "-m", "devtools.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
