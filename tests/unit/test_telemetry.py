"""Trace context helpers and telemetry configuration (no exporter: OpenTelemetry SDK in memory)."""

from __future__ import annotations

import logging
import sys
from types import ModuleType
from typing import Any

import pytest
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
    assert telemetry.configure(Settings.from_env(BASE).telemetry) is telemetry.Exporter.NONE
    blank = {**BASE, telemetry.CONNECTION_STRING: "  "}
    assert telemetry.configure(Settings.from_env(blank).telemetry) is telemetry.Exporter.NONE


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


# ---- one exporter per process -------------------------------------------------------------

CONNECTED = {
    **BASE,
    telemetry.CONNECTION_STRING: "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=http://127.0.0.1:1/",
}


@pytest.fixture
def distro(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The distro's configure call, recorded instead of made; no configuration yet."""
    import azure.monitor.opentelemetry

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        azure.monitor.opentelemetry, "configure_azure_monitor", lambda **kw: calls.append(kw)
    )
    monkeypatch.setattr(telemetry, "_configured", None)
    return calls


def settings_of(**values: str) -> Any:
    return Settings.from_env({**CONNECTED, **values}).telemetry


def test_the_app_configures_the_exporter_once_per_process(distro):
    assert telemetry.configure(settings_of()) is telemetry.Exporter.APP
    assert telemetry.configure(settings_of()) is telemetry.Exporter.APP
    (options,) = distro
    assert options["instrumentation_options"] == {"azure_sdk": {"enabled": False}}


def test_under_the_worker_with_its_exporter_on_the_app_configures_none(distro):
    on = settings_of(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY="true")
    assert telemetry.configure(on, functions_worker=True) is telemetry.Exporter.WORKER
    assert distro == []


def test_without_the_worker_its_exporter_setting_means_nothing(distro):
    on = settings_of(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY="true")
    assert telemetry.configure(on, functions_worker=False) is telemetry.Exporter.APP
    assert len(distro) == 1


def test_under_the_worker_the_host_records_requests(distro):
    context_only = settings_of(PYTHON_ENABLE_OPENTELEMETRY="true")
    assert telemetry.configure(context_only, functions_worker=True) is telemetry.Exporter.APP
    (options,) = distro
    assert options["instrumentation_options"]["fastapi"] == {"enabled": False}


def test_an_installed_tracer_provider_is_not_configured_again(distro, monkeypatch):
    monkeypatch.setattr(telemetry.trace, "get_tracer_provider", TracerProvider)
    assert telemetry.configure(settings_of(), functions_worker=True) is telemetry.Exporter.WORKER
    assert distro == []


@pytest.mark.parametrize("worker", [False, True])
def test_only_the_local_host_gets_the_apps_own_request_spans(distro, monkeypatch, worker):
    from fastapi import FastAPI

    from functions import runtime

    if worker:
        monkeypatch.setitem(sys.modules, "azure_functions_worker", ModuleType("stand-in"))
    else:
        for name in runtime.WORKER_MODULES:
            monkeypatch.delitem(sys.modules, name, raising=False)
    api = FastAPI()
    exporter = runtime.start_telemetry(api, Settings.from_env(CONNECTED))
    assert exporter is telemetry.Exporter.APP
    assert getattr(api, "_is_instrumented_by_opentelemetry", False) is not worker
