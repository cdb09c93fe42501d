"""Process-wide wiring for the Functions entry points: settings read once, clients built once."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from shared import telemetry
from shared.config import Settings
from shared.services import Services, ServicesProvider, build_services

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)


def load_settings() -> Settings:
    """Read settings at start-up so a missing one fails loudly, naming it."""
    return Settings.from_env()


def make_provider(settings: Settings) -> ServicesProvider:
    async def factory() -> Services:
        log.info("creating Storage and Service Bus clients")
        return await build_services(settings)

    return ServicesProvider(factory)


# The Functions host's Python worker: the 3.11 worker, the library of newer ones, their proxy.
WORKER_MODULES = ("azure_functions_worker", "azure_functions_runtime", "proxy_worker")


def under_functions_worker() -> bool:
    """Whether the Functions host's Python worker imported the app. devtools/host.py is not
    the Functions host: there the app records its own HTTP requests."""
    return any(name in sys.modules for name in WORKER_MODULES)


def start_telemetry(api: FastAPI | None, settings: Settings) -> telemetry.Exporter:
    """Quiet the Azure SDKs' loggers and export to Application Insights when configured,
    once per process (shared/telemetry.py). Under the Functions host, the host's span for
    each invocation is the parent of the app's spans (the worker hands it over with
    PYTHON_ENABLE_OPENTELEMETRY) and the host records each request. Elsewhere the app adds
    a server span per HTTP request, the parent of each job's trace; the health probe is left
    out: it is polled often."""
    worker = under_functions_worker()
    exporter = telemetry.configure(settings.telemetry, functions_worker=worker)
    if exporter is telemetry.Exporter.NONE:
        return exporter
    if worker:
        if api is None and not (
            settings.telemetry.worker_context or settings.telemetry.worker_exporter
        ):
            log.warning(
                "PYTHON_ENABLE_OPENTELEMETRY is off: the worker does not hand over the host's "
                "trace context, so the app's spans start traces of their own"
            )
        return exporter
    if api is None:  # the HTTP app is built later and calls this again (`configure` is once)
        return exporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(api, excluded_urls="api/health")
    return exporter
