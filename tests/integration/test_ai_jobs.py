"""Summarize and embed jobs end to end through devtools/host.py, with each provider:
the packaged local model (offline) and Azure OpenAI (the real SDK against the local stub)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from devtools.host_process import HostProcess, run_host
from devtools.openai_stub import OpenAIStub
from tests.fixtures.app import CALLER_HEADERS
from tests.integration.helpers import wait_for_status

pytestmark = [pytest.mark.integration, pytest.mark.long_running]

TERMINAL = {"succeeded", "failed", "dead_lettered", "cancelled"}
TEXT = (
    "Service Bus queues decouple producers from consumers. "
    "Consumers settle each message when the work is done. "
    "A message that keeps failing goes to the dead-letter queue."
)


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(dimensions=96) as running:
        yield running


@pytest.fixture(scope="module", params=["local", "azure_openai"])
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def host(
    provider: str,
    app_env: dict[str, str],
    stub: OpenAIStub,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostProcess]:
    env = {**app_env, "AI_PROVIDER": provider}
    if provider == "azure_openai":
        env |= {"AZURE_OPENAI_ENDPOINT": stub.endpoint, "AZURE_OPENAI_API_KEY": "test-key"}
    log_path = tmp_path_factory.mktemp("host") / f"host-{provider}.log"
    with run_host(env, log_path) as running:
        yield running


@pytest.fixture
async def http(host: HostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=host.base_url, timeout=30, headers=CALLER_HEADERS
    ) as client:
        yield client


async def run_job(http: httpx.AsyncClient, job: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/api/jobs", json=job)
    assert response.status_code == 202, response.text
    doc = await wait_for_status(http, response.json()["id"], TERMINAL, within=90)
    assert doc["status"] == "succeeded", doc
    return doc


async def test_summarize_job(http, provider):
    doc = await run_job(
        http,
        {"type": "summarize", "input": {"text": TEXT, "max_sentences": 2, "style": "bullets"}},
    )
    result = doc["result"]
    assert result["provider"] == provider
    assert result["summary"].startswith("- ")
    assert result["usage"]["total_tokens"] > 0


async def test_embed_job_small_result_inline(http, provider):
    texts = ["first text", "second text"]
    doc = await run_job(http, {"type": "embed", "input": {"texts": texts}})
    result = doc["result"]
    assert result["provider"] == provider
    assert result["normalized"] is True
    assert len(result["vectors"]) == 2
    assert len(result["vectors"][0]) == result["dimensions"]


async def test_embed_job_large_result_goes_to_a_blob_and_reads_back(http, provider):
    texts = [f"document {i} about invoices {uuid.uuid4().hex[:8]}" for i in range(40)]
    doc = await run_job(http, {"type": "embed", "input": {"texts": texts}})
    result = doc["result"]
    assert "vectors" not in result
    assert result["encoding"] == "float32-le"
    assert result["count"] == 40
    assert doc["links"]["result"].endswith(f"/api/jobs/{doc['id']}/result")
    full = (await http.get(f"/api/jobs/{doc['id']}/result")).json()["result"]
    assert len(full["vectors"]) == 40
    assert {len(v) for v in full["vectors"]} == {result["dimensions"]}
