"""Process-wide wiring for the Functions entry points: settings read once, clients built once."""

from __future__ import annotations

import logging

from shared.config import Settings
from shared.services import Services, ServicesProvider, build_services

log = logging.getLogger(__name__)


def load_settings() -> Settings:
    """Read settings at start-up so a missing one fails loudly, naming it."""
    return Settings.from_env()


def make_provider(settings: Settings) -> ServicesProvider:
    async def factory() -> Services:
        log.info("creating Storage and Service Bus clients")
        return await build_services(settings)

    return ServicesProvider(factory)
