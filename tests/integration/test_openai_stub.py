"""The Azure OpenAI stub speaks what the real `openai` SDK expects (so provider tests mean
something): routes, auth, usage, both embedding encodings, Azure's error bodies."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from devtools.openai_stub import Fault, OpenAIStub

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(dimensions=32, deployments={"chat", "embed"}) as running:
        yield running


@pytest.fixture
async def sdk(stub: OpenAIStub) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    stub.reset()
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=stub.endpoint, api_key="k", api_version="2024-10-21", max_retries=0
    )
    yield client
    await client.close()
    stub.latency_seconds = 0.0


async def test_chat_answers_with_usage(sdk):
    response = await sdk.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "One. Two. Three. Four."}]
    )
    assert response.choices[0].message.content == "One. Two. Three."
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.prompt_tokens + 6


def decoded(embedding: Any) -> Any:
    """Asked for base64 explicitly, the SDK hands the string back as the service sent it."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return embedding


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_embeddings_in_order_unit_norm_both_encodings(sdk, encoding):
    texts = ["alpha", "beta", "gamma"]
    response = await sdk.embeddings.create(model="embed", input=texts, encoding_format=encoding)
    vectors = np.asarray([decoded(d.embedding) for d in response.data], dtype=np.float32)
    assert [d.index for d in response.data] == [0, 1, 2]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = await sdk.embeddings.create(model="embed", input="beta", encoding_format="float")
    np.testing.assert_allclose(single.data[0].embedding, vectors[1], atol=1e-6)


async def test_faults_raise_the_sdks_own_errors(stub, sdk):
    stub.script(Fault.rate_limited(1500), Fault.server_error(500), Fault.content_filter())
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.embeddings.create(model="embed", input="x")
    assert limited.value.response.headers["retry-after-ms"] == "1500"
    with pytest.raises(openai.InternalServerError):
        await sdk.embeddings.create(model="embed", input="x")
    with pytest.raises(openai.BadRequestError) as filtered:
        await sdk.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert filtered.value.code == "content_filter"


async def test_unknown_deployment_and_missing_auth(stub):
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=stub.endpoint, api_key="k", api_version="2024-10-21", max_retries=0
    ) as client:
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="nope", input="x")
    async with httpx.AsyncClient(base_url=stub.endpoint) as anonymous:
        response = await anonymous.post(
            "/openai/deployments/embed/embeddings?api-version=2024-10-21", json={"input": "x"}
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "401"


async def test_latency_is_applied_to_overlapping_requests(stub, sdk):
    stub.latency_seconds = 0.2
    await asyncio.gather(*(sdk.embeddings.create(model="embed", input="x") for _ in range(4)))
    assert stub.max_in_flight == 4  # the requests waited side by side, not one after another
