"""Trace context helpers and telemetry configuration (no exporter: OpenTelemetry SDK in memory)."""

from __future__ import annotations

import logging

from azure.servicebus import ServiceBusReceivedMessage
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id, get_current_span

from shared import telemetry
from shared.config import Settings
from shared.queue import traceparent_of

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


BASE = {
    "ServiceBusConnection": "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_no_connection_string_means_no_exporter():
    assert telemetry.configure(Settings.from_env(BASE).telemetry) is False
    blank = {**BASE, telemetry.CONNECTION_STRING: "  "}
    assert telemetry.configure(Settings.from_env(blank).telemetry) is False


def test_the_app_quiets_the_azure_sdk_loggers_itself():
    for name in telemetry.SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    telemetry.configure(Settings.from_env(BASE).telemetry)
    assert all(logging.getLogger(n).level == logging.WARNING for n in telemetry.SDK_LOGGERS)
    telemetry.configure(Settings.from_env({**BASE, "AZURE_SDK_LOG_LEVEL": "info"}).telemetry)
    assert logging.getLogger("azure").level == logging.INFO
    telemetry.quiet_sdk_loggers("WARNING")


def test_current_traceparent_names_the_active_span():
    tracer = TracerProvider().get_tracer("test")
    assert telemetry.current_traceparent() is None
    with tracer.start_as_current_span("submit") as span:
        context = span.get_span_context()
        traceparent = telemetry.current_traceparent()
        assert traceparent is not None
        _, trace_id, span_id, flags = traceparent.split("-")
        assert (trace_id, span_id) == (
            format_trace_id(context.trace_id),
            format_span_id(context.span_id),
        )
        assert int(flags, 16) & 1  # sampled


def test_a_consumer_span_continues_the_trace_it_is_given(monkeypatch):
    monkeypatch.setattr(telemetry, "tracer", TracerProvider().get_tracer("test"))
    with telemetry.consumer_span("sync", "job-1", PARENT) as span:
        assert get_current_span() is span
        context = span.get_span_context()
        assert format_trace_id(context.trace_id) == PARENT.split("-")[1]
        assert span.kind is SpanKind.CONSUMER  # type: ignore[attr-defined]
        assert span.parent.span_id == int(PARENT.split("-")[2], 16)  # type: ignore[attr-defined]
    with telemetry.consumer_span("sync", "job-2", None) as root:
        assert root.parent is None  # type: ignore[attr-defined]


def test_traceparent_is_read_from_str_or_bytes_properties():
    for key, value in (("traceparent", PARENT), (b"traceparent", PARENT.encode())):
        assert traceparent_of(_with_properties({key: value})) == PARENT
    assert traceparent_of(_with_properties({})) is None


def _with_properties(properties: dict) -> ServiceBusReceivedMessage:
    class Received:
        application_properties = properties

    return Received()  # type: ignore[return-value]


def test_aad_authentication_string_gives_a_managed_identity_credential():
    credential = telemetry._credential("ClientId=1234;Authorization=AAD")
    assert type(credential).__name__ == "ManagedIdentityCredential"
    assert telemetry._credential("") is None
    assert telemetry._credential("Authorization=None") is None
