"""Job handlers: async callables `(input, context) -> result`, with injected clients.

The handler modules (and the AI stack, numpy and httpx behind them) are imported when the
handlers are built, not when this package is: a cold start that only serves HTTP or
settles a message does not pay for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.jobs import JobType

if TYPE_CHECKING:
    import httpx

    from shared.ai.providers import AIProviders
    from shared.handlers.base import Handler
    from shared.payloads import PayloadStore


def default_handlers(
    sync_targets: Mapping[str, str],
    http: httpx.AsyncClient,
    ai: AIProviders,
    payloads: PayloadStore,
) -> dict[JobType, Handler]:
    from shared.handlers.embed import EmbedHandler
    from shared.handlers.summarize import SummarizeHandler
    from shared.handlers.sync import SyncHandler

    return {
        JobType.SUMMARIZE: SummarizeHandler(ai.summarizer),
        JobType.EMBED: EmbedHandler(ai.embedder, ai.cache, payloads),
        JobType.SYNC: SyncHandler(sync_targets, http),
    }
