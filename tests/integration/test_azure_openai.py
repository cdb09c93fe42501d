"""Azure OpenAI through the real `openai` SDK against the local stub, and the content cache
on real Azurite: chunked summaries, batched embeddings, error classes, retry delays."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from azure.core.credentials import AccessToken

from devtools.openai_stub import Fault, OpenAIStub
from shared.ai.azure_openai import (
    AzureOpenAIEmbedder,
    AzureOpenAIOptions,
    AzureOpenAISummarizer,
    create_client,
)
from shared.ai.base import SummaryRequest
from shared.config import Settings
from shared.errors import PermanentError, TransientError
from shared.handlers.base import Handler, JobContext
from shared.handlers.embed import EmbedHandler
from shared.handlers.summarize import SummarizeHandler
from shared.jobs import (
    EmbedInput,
    EmbedRequest,
    JobStatus,
    JobType,
    SummarizeInput,
    SummarizeRequest,
)
from shared.outcomes import DeadLetter, RetryLater
from shared.processing import Processor
from shared.queue import JobMessage
from shared.retry import RetryPolicy
from shared.services import Services, build_services
from tests.fixtures.app import own_storage_names

pytestmark = pytest.mark.integration

DIMENSIONS = 64
LONG_DOCUMENT = " ".join(
    f"Paragraph {i} explains how queue {i} keeps work safe when a worker crashes mid-job."
    for i in range(120)
)


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(dimensions=DIMENSIONS) as running:
        yield running


@pytest.fixture
def aoai(stub: OpenAIStub) -> Iterator[AzureOpenAIOptions]:
    stub.reset()
    yield AzureOpenAIOptions(endpoint=stub.endpoint, api_key="test-key")
    stub.reset()


@pytest.fixture
async def client(aoai: AzureOpenAIOptions) -> AsyncIterator[Any]:
    sdk = create_client(aoai)
    yield sdk
    await sdk.close()


def of_kind(stub: OpenAIStub, kind: str) -> list[Any]:
    return [r for r in stub.requests if r.kind == kind]


async def test_a_summary_carries_the_model_and_token_usage(stub, aoai, client):
    summary = await AzureOpenAISummarizer(client, aoai).summarize(
        SummaryRequest("Queues decouple producers from consumers. Workers drain them.")
    )
    assert summary.provider == "azure_openai"
    assert summary.model == "gpt-4o-mini"
    assert summary.text
    assert summary.usage.prompt_tokens > 0
    assert summary.usage.completion_tokens > 0
    assert summary.chunks == 1
    (call,) = of_kind(stub, "chat")
    assert call.deployment == aoai.chat_deployment
    assert call.auth == "api-key"


async def test_a_long_document_is_summarized_in_chunks_then_merged(stub, aoai, client):
    options = replace(aoai, chunk_tokens=300)
    summary = await AzureOpenAISummarizer(client, options).summarize(
        SummaryRequest(LONG_DOCUMENT, max_sentences=2)
    )
    calls = of_kind(stub, "chat")
    assert summary.chunks > 3
    assert len(calls) > summary.chunks  # one call per chunk, then the merge
    assert all("Paragraph" in c.body["messages"][-1]["content"] for c in calls[: summary.chunks])
    assert "partial summaries" in calls[-1].body["messages"][0]["content"]
    # The chunks are sent in parallel, so they arrive in any order: put them in document
    # order by where their first paragraph's worth of words (14, one number at least) is.
    per_call = sorted(
        (c.body["messages"][-1]["content"] for c in calls[: summary.chunks]),
        key=lambda text: LONG_DOCUMENT.index(" ".join(text.split()[:14])),
    )
    assert " ".join(per_call).split() == LONG_DOCUMENT.split()  # nothing lost, nothing doubled
    assert summary.usage.prompt_tokens > 0


async def test_embeddings_are_batched_and_keep_input_order(stub, aoai, client):
    texts = [f"text {i} {uuid.uuid4().hex[:6]}" for i in range(100)]
    batched = AzureOpenAIEmbedder(client, replace(aoai, embedding_batch_size=40))
    result = await batched.embed(texts)
    calls = of_kind(stub, "embeddings")
    # The batches are sent in parallel, so they arrive in any order: put them in input order.
    batches = sorted((c.body["input"] for c in calls), key=lambda batch: texts.index(batch[0]))
    assert [len(batch) for batch in batches] == [40, 40, 20]
    assert [text for batch in batches for text in batch] == texts
    assert result.vectors.shape == (100, DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    alone = await batched.embed([texts[57]])
    np.testing.assert_allclose(alone.vectors[0], result.vectors[57], atol=1e-6)
    assert result.usage.prompt_tokens > 0


async def test_entra_id_tokens_are_used_when_no_key_is_set(stub, aoai):
    class Credential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            assert scopes == ("https://cognitiveservices.azure.com/.default",)
            return AccessToken("entra-token", 2**31)

        async def close(self) -> None:
            pass

    sdk = create_client(replace(aoai, api_key=None), credential=Credential())
    try:
        await AzureOpenAIEmbedder(sdk, aoai).embed(["hello"])
    finally:
        await sdk.close()
    assert [r.auth for r in stub.requests] == ["bearer"]


async def test_a_rate_limit_is_transient_and_carries_the_services_wait(stub, aoai, client):
    stub.script(Fault.rate_limited(retry_after_ms=1250))
    with pytest.raises(TransientError) as caught:
        await AzureOpenAIEmbedder(client, aoai).embed(["a"])
    assert caught.value.code == "ai_rate_limited"
    assert caught.value.retry_after == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (Fault.server_error(500), TransientError, "ai_500"),
        (Fault.server_error(503), TransientError, "ai_503"),
        (Fault.content_filter(), PermanentError, "ai_content_filtered"),
        (Fault.context_length(), PermanentError, "ai_context_length_exceeded"),
    ],
)
async def test_errors_are_classified(stub, aoai, client, fault, error, code):
    stub.script(fault)
    with pytest.raises(error) as caught:
        await AzureOpenAISummarizer(client, aoai).summarize(SummaryRequest("Some text."))
    assert caught.value.code == code


# ---- through the processor and the store (real Azurite) -----------------------------------


@pytest.fixture(scope="module")
async def services(storage_connection_string: str, stub: OpenAIStub) -> AsyncIterator[Services]:
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": storage_connection_string,
            "ServiceBusConnection": "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;"
            "SharedAccessKey=v;UseDevelopmentEmulator=true",
            **own_storage_names(),
            "AI_PROVIDER": "azure_openai",
            "AZURE_OPENAI_ENDPOINT": stub.endpoint,
            "AZURE_OPENAI_API_KEY": "test-key",
        }
    )
    built = await build_services(settings)
    yield built
    await built.aclose()


async def queued(services: Services, request: Any) -> JobMessage:
    """A job row as submit writes it, and the message submit would send."""
    from shared.jobs import Job, new_job_id, utcnow

    now = utcnow()
    input_data = request.input.model_dump(mode="json")
    job = Job(
        id=new_job_id(),
        type=request.type,
        status=JobStatus.QUEUED,
        owner="tests",
        created_at=now,
        updated_at=now,
        input=input_data,
    )
    await services.store.create(job)
    return JobMessage(job_id=job.id, job_type=job.type, input=input_data, submitted_at=now)


def body_of(message: JobMessage) -> bytes:
    return b"".join(message.to_service_bus().body)


def processor(services: Services) -> Processor:
    """The service's handlers, with jitter fixed at zero so the delay is the floor."""
    handlers: dict[JobType, Handler] = {
        JobType.SUMMARIZE: SummarizeHandler(services.ai.summarizer),
        JobType.EMBED: EmbedHandler(
            services.ai.embedder, services.ai.cache, services.store.payloads
        ),
    }
    policy = RetryPolicy(base_seconds=0.01, max_seconds=30, max_attempts=3)
    timeouts = dict.fromkeys(JobType, 30.0)
    return Processor(services.store, handlers, policy, timeouts, rng=lambda: 0.0)


async def test_the_retry_delay_honours_retry_after_ms(services, stub):
    stub.reset()
    stub.script(Fault.rate_limited(retry_after_ms=2500))
    message = await queued(
        services, EmbedRequest(type=JobType.EMBED, input=EmbedInput(texts=["x1"]))
    )
    outcome, _ = await processor(services).process(body_of(message))
    assert isinstance(outcome, RetryLater)
    assert outcome.delay >= 2.5  # the backoff alone would be 0 (jitter fixed at zero)
    job = await services.store.get(message.job_id)
    assert job.status is JobStatus.RETRYING
    assert job.error_code == "ai_rate_limited"


async def test_a_content_filter_refusal_is_dead_lettered_at_once(services, stub):
    stub.reset()
    stub.script(Fault.content_filter())
    request = SummarizeRequest(
        type=JobType.SUMMARIZE, input=SummarizeInput(text="Something filtered.")
    )
    message = await queued(services, request)
    outcome, _ = await processor(services).process(body_of(message))
    assert isinstance(outcome, DeadLetter)
    job = await services.store.get(message.job_id)
    assert job.status is JobStatus.DEAD_LETTERED
    assert job.error_code == "ai_content_filtered"


async def test_the_cache_spares_the_provider_a_second_identical_job(services, stub):
    stub.reset()
    texts = [f"cached text {i} {uuid.uuid4().hex}" for i in range(6)]
    handler = EmbedHandler(services.ai.embedder, services.ai.cache, services.store.payloads)
    context = JobContext(job_id=str(uuid.uuid4()), job_type=JobType.EMBED, attempt=1)
    first = await handler({"texts": texts}, context)
    assert (first["cache_hits"], first["computed"]) == (0, 6)
    assert len(of_kind(stub, "embeddings")) == 1

    second = await handler({"texts": texts}, replace(context, job_id=str(uuid.uuid4())))
    assert len(of_kind(stub, "embeddings")) == 1  # no provider call at all
    assert (second["cache_hits"], second["computed"]) == (6, 0)
    assert second["usage"]["total_tokens"] == 0
    first_vectors = await services.store.payloads.expand_vectors(first)
    second_vectors = await services.store.payloads.expand_vectors(second)
    np.testing.assert_allclose(first_vectors["vectors"], second_vectors["vectors"], atol=1e-6)

    mixed = await handler({"texts": [texts[0], "a brand new text " + uuid.uuid4().hex]}, context)
    assert (mixed["cache_hits"], mixed["computed"]) == (1, 1)
    assert of_kind(stub, "embeddings")[-1].body["input"][0].startswith("a brand new text")


async def test_a_failure_mid_batch_stores_no_partial_result(services, stub):
    stub.reset()
    options = replace(azure_options(services), embedding_batch_size=3)
    sdk = create_client(options)
    handler = EmbedHandler(
        AzureOpenAIEmbedder(sdk, options), services.ai.cache, services.store.payloads
    )
    texts = [f"batch text {i} {uuid.uuid4().hex}" for i in range(9)]
    stub.script(Fault.server_error(500), kind="embeddings")
    context = JobContext(job_id=str(uuid.uuid4()), job_type=JobType.EMBED, attempt=1)
    try:
        with pytest.raises(TransientError):
            await handler({"texts": texts}, context)
        retried = await handler({"texts": texts}, replace(context, attempt=2))
    finally:
        await sdk.close()
    assert retried["count"] == 9
    assert retried["cache_hits"] + retried["computed"] == 9
    expanded = await services.store.payloads.expand_vectors(retried)
    assert np.asarray(expanded["vectors"]).shape == (9, DIMENSIONS)


def azure_options(services: Services) -> AzureOpenAIOptions:
    ai = services.settings.ai
    assert ai.endpoint
    return AzureOpenAIOptions(endpoint=ai.endpoint, api_key=ai.api_key)
