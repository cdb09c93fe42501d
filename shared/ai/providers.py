"""Picks and builds the AI providers once per process, from settings.

`openai` is imported only when Azure OpenAI is configured, and the local model loads on its
first job, so neither costs start-up time where it is not used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azure.data.tables.aio import TableServiceClient

from shared.ai.base import Embedder, Summarizer
from shared.ai.cache import NoCache, TableEmbeddingCache, VectorCache
from shared.config import AISettings


@dataclass
class AIProviders:
    summarizer: Summarizer
    embedder: Embedder
    cache: VectorCache
    close: Callable[[], Awaitable[None]]

    async def ensure_resources(self) -> None:
        if isinstance(self.cache, TableEmbeddingCache):
            await self.cache.ensure_table()


def build_ai(
    settings: AISettings, tables: TableServiceClient, credential: Any = None
) -> AIProviders:
    cache: VectorCache = (
        TableEmbeddingCache(tables.get_table_client(settings.embedding_cache_table))
        if settings.embedding_cache
        else NoCache()
    )
    if settings.provider == "azure_openai":
        from shared.ai.azure_openai import (
            AzureOpenAIEmbedder,
            AzureOpenAISummarizer,
            create_client,
        )

        options = azure_openai_options(settings)
        client = create_client(options, credential)
        return AIProviders(
            summarizer=AzureOpenAISummarizer(client, options),
            embedder=AzureOpenAIEmbedder(client, options),
            cache=cache,
            close=client.close,
        )
    from shared.ai.local import LocalEmbedder, LocalSummarizer
    from shared.ai.minilm import MiniLM

    model = MiniLM()

    async def close() -> None:
        model.close()

    return AIProviders(LocalSummarizer(model), LocalEmbedder(model), cache, close)


def azure_openai_options(settings: AISettings) -> Any:
    from shared.ai.azure_openai import AzureOpenAIOptions

    assert settings.endpoint, "AI_PROVIDER=azure_openai needs AZURE_OPENAI_ENDPOINT"
    return AzureOpenAIOptions(
        endpoint=settings.endpoint,
        api_version=settings.api_version,
        chat_deployment=settings.chat_deployment,
        chat_model=settings.chat_model,
        embedding_deployment=settings.embedding_deployment,
        client_id=settings.client_id,
        api_key=settings.api_key,
        timeout_seconds=settings.timeout_seconds,
        max_retries=settings.max_retries,
        chunk_tokens=settings.summary_chunk_tokens,
    )
