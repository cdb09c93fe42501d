"""Job handlers: async callables `(input, context) -> result`, with injected clients."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from shared.ai.providers import AIProviders
from shared.handlers.base import Handler
from shared.handlers.embed import EmbedHandler
from shared.handlers.summarize import SummarizeHandler
from shared.handlers.sync import SyncHandler
from shared.jobs import JobType
from shared.payloads import PayloadStore


def default_handlers(
    sync_targets: Mapping[str, str],
    http: httpx.AsyncClient,
    ai: AIProviders,
    payloads: PayloadStore,
) -> dict[JobType, Handler]:
    return {
        JobType.SUMMARIZE: SummarizeHandler(ai.summarizer),
        JobType.EMBED: EmbedHandler(ai.embedder, ai.cache, payloads),
        JobType.SYNC: SyncHandler(sync_targets, http),
    }
