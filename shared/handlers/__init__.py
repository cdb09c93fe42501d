"""Job handlers: plain async functions `(input, context) -> result`, with injected clients."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from shared.handlers.embed import embed
from shared.handlers.summarize import summarize
from shared.handlers.sync import SyncHandler
from shared.jobs import JobType
from shared.processing import Handler


def default_handlers(
    sync_targets: Mapping[str, str], http: httpx.AsyncClient
) -> dict[JobType, Handler]:
    return {
        JobType.SUMMARIZE: summarize,
        JobType.EMBED: embed,
        JobType.SYNC: SyncHandler(sync_targets, http),
    }
