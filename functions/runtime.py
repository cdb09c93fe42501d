"""Process-wide wiring for the Functions entry points: settings read once, clients built once."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from shared import telemetry
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


def start_telemetry(api: FastAPI, settings: Settings) -> bool:
    """Quiet the Azure SDKs' loggers; export to Application Insights when configured, with a
    server span per HTTP request (the parent of each job's trace). The health probe is left
    out: it is polled often."""
    if not telemetry.configure(settings.telemetry):
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(api, excluded_urls="api/health")
    return True
