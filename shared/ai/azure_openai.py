"""Azure OpenAI through the `openai` SDK (`AsyncAzureOpenAI`), one client per process.

The SDK's own retries stay low (setting AZURE_OPENAI_MAX_RETRIES, default 0): a failed call
becomes a TransientError carrying the service's `retry-after-ms`, and the job's retry policy
schedules the next attempt through the queue, so no worker sits holding a lock while it waits.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import openai

from shared.ai.base import Embeddings, Summary, SummaryRequest, Usage, Vectors
from shared.ai.text import chunk_by_tokens, split_sentences, trim_words
from shared.ai.tokens import token_counter
from shared.errors import ConveyorError, PermanentError, TransientError
from shared.retry_after import retry_after_seconds

PROVIDER = "azure_openai"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
MAX_PARALLEL_CALLS = 4  # per job: map steps and embedding batches in flight at once
MAX_REDUCE_ROUNDS = 4  # map-reduce rounds before giving up (each shrinks the text ~10x)
WORDS_PER_SENTENCE = 30  # to size the answer when only max_sentences is given

T = TypeVar("T")


@dataclass(frozen=True)
class AzureOpenAIOptions:
    endpoint: str
    api_version: str = "2024-10-21"
    chat_deployment: str = "gpt-4o-mini"
    chat_model: str = "gpt-4o-mini"
    embedding_deployment: str = "text-embedding-3-small"
    client_id: str | None = None  # user-assigned identity; None = the default credential
    api_key: str | None = None  # fallback only; Entra ID is the default
    timeout_seconds: float = 60.0
    max_retries: int = 0
    chunk_tokens: int = 3000  # input tokens per summarize call before map-reduce kicks in
    embedding_batch_size: int = 256
    embedding_batch_tokens: int = 100_000


def create_client(options: AzureOpenAIOptions, credential: Any = None) -> openai.AsyncAzureOpenAI:
    """An AsyncAzureOpenAI with an API key when one is set, else Entra ID tokens from
    `credential` (default: DefaultAzureCredential for the configured identity)."""
    common: dict[str, Any] = {
        "azure_endpoint": options.endpoint,
        "api_version": options.api_version,
        "timeout": options.timeout_seconds,
        "max_retries": options.max_retries,
    }
    if options.api_key:
        return openai.AsyncAzureOpenAI(api_key=options.api_key, **common)
    from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

    if credential is None:
        credential = DefaultAzureCredential(managed_identity_client_id=options.client_id)
    provider = get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)
    return openai.AsyncAzureOpenAI(azure_ad_token_provider=provider, **common)


def classify_openai_error(exc: openai.OpenAIError) -> ConveyorError:
    """Transient: 429 (with the service's wait), 5xx, 408, timeouts, connection failures and
    401/403 (role assignments take minutes to reach a new deployment). Permanent: content
    filtered, context too long, unknown deployment, other 4xx."""
    if isinstance(exc, openai.APITimeoutError):
        return TransientError("Azure OpenAI timed out", code="ai_timeout")
    if isinstance(exc, openai.APIConnectionError):
        return TransientError(f"Azure OpenAI unreachable: {exc}", code="ai_unreachable")
    if not isinstance(exc, openai.APIStatusError):
        return PermanentError(f"Azure OpenAI client error: {exc}", code="ai_client_error")
    status = exc.status_code
    code = str(getattr(exc, "code", None) or "")
    detail = f"Azure OpenAI answered {status}{f' ({code})' if code else ''}: {_message(exc)}"
    if status == 429:
        wait = retry_after_seconds(exc.response.headers)
        return TransientError(detail, retry_after=wait, code="ai_rate_limited")
    if status >= 500 or status == 408:
        return TransientError(detail, code=f"ai_{status}")
    if code == "content_filter" or "ResponsibleAIPolicyViolation" in str(exc.body):
        return PermanentError(detail, code="ai_content_filtered")
    if code == "context_length_exceeded":
        return PermanentError(detail, code="ai_context_length_exceeded")
    if status in (401, 403):
        return TransientError(detail, code="ai_not_authorized")
    if status == 404:
        return PermanentError(detail + " (check AZURE_OPENAI_*_DEPLOYMENT)", code="ai_not_found")
    return PermanentError(detail, code=f"ai_{status}")


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
    return str(exc.message)[:500]


async def _call(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except openai.OpenAIError as exc:
        raise classify_openai_error(exc) from exc


async def _bounded(calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run calls with at most MAX_PARALLEL_CALLS in flight; results in call order. The first
    failure cancels the rest and is raised."""
    gate = asyncio.Semaphore(MAX_PARALLEL_CALLS)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(call)) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure, with its own cause chain
    return [task.result() for task in tasks]


class AzureOpenAISummarizer:
    """Chat-completion summaries; long inputs are summarized in chunks, then merged."""

    provider = PROVIDER

    def __init__(self, client: openai.AsyncAzureOpenAI, options: AzureOpenAIOptions) -> None:
        self._client = client
        self._options = options
        self.model = options.chat_model

    async def summarize(self, request: SummaryRequest) -> Summary:
        count = token_counter()
        budget = self._options.chunk_tokens
        chunks = chunk_by_tokens(split_sentences(request.text), budget, count)
        if not chunks:
            chunks = [request.text.strip()]
        usage = Usage()
        pieces, merging = chunks, False
        rounds = 0
        while len(pieces) > 1:
            rounds += 1
            if rounds > MAX_REDUCE_ROUNDS:
                raise PermanentError(
                    f"the partial summaries did not fit {budget} tokens after "
                    f"{MAX_REDUCE_ROUNDS} rounds; raise SUMMARY_CHUNK_TOKENS",
                    code="ai_summary_too_long",
                )
            # Map: summarize each piece; then reduce the partial summaries, re-chunking them
            # if they still do not fit in one call together.
            partial = functools.partial(self._complete, request=request, partial=True)
            answers = await _bounded([functools.partial(partial, piece) for piece in pieces])
            usage = sum((used for _, used in answers), usage)
            pieces, merging = chunk_by_tokens([text for text, _ in answers], budget, count), True
        summary, used = await self._complete(pieces[0], request=request, merge=merging)
        usage = usage + used
        if request.style == "paragraph":
            summary = trim_words(summary, request.max_words)
        return Summary(
            text=summary, provider=PROVIDER, model=self.model, usage=usage, chunks=len(chunks)
        )

    async def _complete(
        self, text: str, request: SummaryRequest, *, partial: bool = False, merge: bool = False
    ) -> tuple[str, Usage]:
        words = request.max_words or request.max_sentences * WORDS_PER_SENTENCE
        if partial:
            instruction = (
                "Summarize this part of a longer document in at most "
                f"{max(words, 60)} words, keeping every key fact."
            )
        else:
            shape = (
                "as a bulleted list, one '- ' line per point"
                if request.style == "bullets"
                else "as one paragraph"
            )
            limit = f"at most {request.max_sentences} sentences"
            if request.max_words:
                limit += f" and at most {request.max_words} words"
            source = "these partial summaries of one document" if merge else "this text"
            instruction = f"Summarize {source} {shape}, in {limit}."
        messages: list[Any] = [
            {
                "role": "system",
                "content": "You write faithful summaries. Use only facts stated in the text. "
                + instruction,
            },
            {"role": "user", "content": text},
        ]
        response = await _call(
            lambda: self._client.chat.completions.create(
                model=self._options.chat_deployment,
                messages=messages,
                temperature=0,
                max_completion_tokens=int(max(words, 60) * 2 + 32),
            )
        )
        choice = response.choices[0]
        if choice.finish_reason == "content_filter":
            raise PermanentError(
                "Azure OpenAI filtered the summary (content filter)", code="ai_content_filtered"
            )
        used = Usage()
        if response.usage is not None:
            used = Usage(response.usage.prompt_tokens, response.usage.completion_tokens)
        return (choice.message.content or "").strip(), used


class AzureOpenAIEmbedder:
    """Embeddings in as few calls as the deployment's limits allow, batches in parallel."""

    provider = PROVIDER

    def __init__(self, client: openai.AsyncAzureOpenAI, options: AzureOpenAIOptions) -> None:
        self._client = client
        self._options = options
        self.model = options.embedding_deployment
        self.dimensions: int | None = None

    def batches(self, texts: list[str]) -> list[list[str]]:
        """Split by count and by tokens, keeping order."""
        count = token_counter()
        batches: list[list[str]] = [[]]
        tokens = 0
        for text in texts:
            size = count(text)
            current = batches[-1]
            if current and (
                len(current) >= self._options.embedding_batch_size
                or tokens + size > self._options.embedding_batch_tokens
            ):
                batches.append([])
                tokens = 0
            batches[-1].append(text)
            tokens += size
        return [batch for batch in batches if batch]

    async def embed(self, texts: list[str]) -> Embeddings:
        calls = [functools.partial(self._embed_batch, batch) for batch in self.batches(texts)]
        results = await _bounded(calls)
        vectors = np.concatenate([r.vectors for r in results], axis=0)
        usage = sum((result.usage for result in results), Usage())
        self.dimensions = int(vectors.shape[1])
        return Embeddings(vectors=vectors, usage=usage)

    async def _embed_batch(self, batch: list[str]) -> Embeddings:
        response = await _call(
            lambda: self._client.embeddings.create(
                model=self._options.embedding_deployment, input=batch
            )
        )
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(batch):
            raise TransientError(
                f"Azure OpenAI returned {len(rows)} embeddings for {len(batch)} texts",
                code="ai_incomplete_answer",
            )
        vectors: Vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        tokens = response.usage.prompt_tokens if response.usage is not None else 0
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=tokens))
