"""Tracing across the queue, exported to Application Insights with OpenTelemetry.

The W3C `traceparent` of the submit rides in each message's application properties (and in
every retry copy), so the HTTP request, the send, and each attempt at running the job share
one trace: one operation id in Application Insights. Without a connection string nothing is
exported and the spans cost next to nothing (OpenTelemetry's no-op tracer).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from shared.config import TelemetrySettings

log = logging.getLogger(__name__)

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
LIVE_METRICS = "APPLICATIONINSIGHTS_LIVE_METRICS"
TRACEPARENT = "traceparent"

_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("conveyor")


def current_traceparent() -> str | None:
    """The active span's context as a W3C traceparent header value, if there is a span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from(traceparent: str | None) -> Context | None:
    """The remote parent a message carries; None starts a new trace."""
    if not traceparent:
        return None
    return _propagator.extract({TRACEPARENT: traceparent})


@contextlib.contextmanager
def producer_span(job_id: str, job_type: str, queue: str, attempt: int) -> Iterator[Span]:
    with tracer.start_as_current_span(
        f"send {queue}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "servicebus",
            "messaging.operation.type": "send",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "conveyor.job.id": job_id,
            "conveyor.job.type": job_type,
            "conveyor.attempt": attempt,
        },
    ) as span:
        yield span


def _consumer_parent(traceparent: str | None) -> tuple[Context | None, list[Link]]:
    """The parent of a delivery's span, and the spans it links to.

    Under the Functions host in OpenTelemetry mode the worker makes the host's span for the
    invocation current before the function runs. When that span continues the message's
    trace it is the parent (host and worker spans, one trace); when it started a trace of
    its own, the job's trace wins (the message's sender is the parent) and the host's span
    is linked. With no current span (the local host) the sender is the parent.
    """
    sent = context_from(traceparent)
    host = trace.get_current_span().get_span_context()
    if not host.is_valid:
        return sent, []
    if sent is None or trace.get_current_span(sent).get_span_context().trace_id == host.trace_id:
        return None, []
    return sent, [Link(host)]


@contextlib.contextmanager
def consumer_span(queue: str, message_id: str | None, traceparent: str | None) -> Iterator[Span]:
    """One delivery's processing, in the trace of the span that sent the job."""
    parent, links = _consumer_parent(traceparent)
    with tracer.start_as_current_span(
        f"process {queue}",
        context=parent,
        links=links,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "servicebus",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": message_id or "",
        },
    ) as span:
        yield span


def record_outcome(
    span: Span, *, job_id: str | None, attempt: int | None, outcome: str, reason: str | None
) -> None:
    """Tag the processing span with the job and what became of it."""
    if job_id is not None:
        span.set_attribute("conveyor.job.id", job_id)
    if attempt is not None:
        span.set_attribute("conveyor.attempt", attempt)
    span.set_attribute("conveyor.outcome", outcome)
    if reason is not None:
        span.set_attribute("conveyor.outcome.reason", reason)


def mark_failed(span: Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description))


# Loggers of the Azure SDKs that log every request or frame at INFO.
SDK_LOGGERS = ("azure", "uamqp", "azure.core.pipeline.policies.http_logging_policy")


def quiet_sdk_loggers(level: str) -> None:
    """Set the Azure SDKs' loggers to `level` (AZURE_SDK_LOG_LEVEL, default WARNING)."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(level)


class Exporter(StrEnum):
    """Who sends this process's telemetry to Application Insights."""

    NONE = "none"  # no connection string: nothing is exported
    APP = "app"  # configure() set up the Azure Monitor distro
    WORKER = "worker"  # the Functions Python worker did, before it imported the app


_configured: Exporter | None = None


def configure(settings: TelemetrySettings, *, functions_worker: bool = False) -> Exporter:
    """Send traces, logs and metrics to Application Insights when a connection string is set,
    through exactly one exporter per process.

    Under the Functions Python worker with `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY` on,
    the worker configured the distro before it imported the app; a second configuration
    would send every span and log twice, so the app leaves it be. So it does when some tracer
    provider is installed already (older workers configured the distro under
    `PYTHON_ENABLE_OPENTELEMETRY`), and on a second call. Under the worker the host records
    each HTTP request itself, so the distro's FastAPI instrumentation stays off there.
    With `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` = `ClientId=<id>;Authorization=AAD` the
    exporter signs in with that managed identity, for resources with local auth off.
    """
    global _configured
    quiet_sdk_loggers(settings.azure_sdk_log_level)
    connection_string = (settings.connection_string or "").strip()
    if not connection_string:
        return Exporter.NONE
    if _configured is not None:
        return _configured
    if functions_worker and settings.worker_exporter:
        log.info("the Python worker exports (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY)")
        _configured = Exporter.WORKER
        return _configured
    if _provider_installed():
        log.warning("a tracer provider is installed already: not configuring a second exporter")
        _configured = Exporter.WORKER
        return _configured
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The Azure SDKs' own spans are off: a receiver's every empty poll would be a trace of
    # its own, crowding out the job traces under the default rate-limited sampler.
    instrumentation: dict[str, Any] = {"azure_sdk": {"enabled": False}}
    if functions_worker:
        instrumentation["fastapi"] = {"enabled": False}
    options: dict[str, Any] = {
        "connection_string": connection_string,
        "logger_name": "",  # the root logger: the app's and the SDKs' records
        "enable_live_metrics": settings.live_metrics,
        "instrumentation_options": instrumentation,
    }
    credential = _credential(settings.authentication_string or "")
    if credential is not None:
        options["credential"] = credential
    configure_azure_monitor(**options)
    _configured = Exporter.APP
    log.info("telemetry goes to Application Insights")
    return _configured


def _provider_installed() -> bool:
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def _credential(authentication: str) -> Any:
    parts = dict(
        part.split("=", 1) for part in authentication.split(";") if "=" in part
    )  # fmt: skip
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=parts.get("ClientId") or None)
