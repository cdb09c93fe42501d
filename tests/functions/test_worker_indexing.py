"""function_app.py indexed and invoked by the Python worker's own code, as `func start` would.

The handlers of `azure-functions-runtime` (the worker's indexing and invocation code) get the
host's messages: WorkerInit (which imports function_app.py and indexes it), FunctionsMetadata,
FunctionLoad for every function, then invocations of the HTTP function (through the ASGI
app) and of Service Bus functions, whose settlement goes over gRPC to a stand-in of the
host's Settlement service. Storage is Azurite, Service Bus the emulator.

With PYTHON_ENABLE_OPENTELEMETRY on, the worker makes each invocation's trace context (the
host's span) current before the function runs: the app's spans must join that trace.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from azure.servicebus import ServiceBusReceiveMode
from azure.servicebus.aio import ServiceBusClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id

from shared import telemetry
from shared.config import (
    CALLBACKS_QUEUE_SETTING,
    HIGH_QUEUE_NAME_SETTINGS,
    QUEUE_NAME_SETTINGS,
    SERVICE_BUS,
)
from shared.jobs import JobType
from tests.fixtures.app import CALLER_HEADERS
from tests.functions.conftest import REPO_ROOT
from tests.functions.worker_host import (
    host_request,
    load_protos,
    service_bus_binding,
    service_bus_content,
    settlement_server,
)

if importlib.util.find_spec("azure_functions_runtime") is None:
    pytest.skip(
        "azure-functions-runtime is not installed (make install puts it in the venv)",
        allow_module_level=True,
    )
import azure_functions_runtime as runtime  # type: ignore[import-untyped]
from azure_functions_runtime.otel import otel_manager  # type: ignore[import-untyped]
from azurefunctions.extensions.bindings.servicebus import ServiceBusMessageActions

HOST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_SPAN = "00f067aa0ba902b7"
MAX_MESSAGE = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def settlement() -> Iterator[Any]:
    with settlement_server() as (port, recorder):
        saved = sys.argv
        # The message actions read the host's gRPC address from the worker's command line.
        sys.argv = [saved[0], "--host", "127.0.0.1", "--port", str(port),
                    "--functions-grpc-max-message-length", str(MAX_MESSAGE)]  # fmt: skip
        ServiceBusMessageActions._instance = None
        try:
            yield recorder
        finally:
            sys.argv = saved
            ServiceBusMessageActions._instance = None


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = telemetry.tracer
    telemetry.tracer = provider.get_tracer("conveyor")
    yield exporter
    telemetry.tracer = saved


@pytest.fixture(scope="module")
def function_app_extra_env() -> dict[str, str]:
    return {"PYTHON_ENABLE_OPENTELEMETRY": "true"}


@pytest.fixture(scope="module")
async def worker(
    function_app_env: dict[str, str], settlement: Any, spans: Any
) -> AsyncIterator[dict[str, Any]]:
    """The worker after WorkerInit, FunctionsMetadata and FunctionLoad: {name: metadata}."""
    protos = load_protos()
    try:
        init = await runtime.worker_init_request(host_request(protos, worker_init_request=
            protos.WorkerInitRequest(function_app_directory=str(REPO_ROOT), host_version="4")
        ))  # fmt: skip
        assert init.result.status == protos.StatusResult.Success, init.result.exception.message
        assert init.capabilities["WorkerOpenTelemetryEnabled"] == "true"
        listed = await runtime.functions_metadata_request(host_request(protos,
            functions_metadata_request=protos.FunctionsMetadataRequest(
                function_app_directory=str(REPO_ROOT)
            )
        ))  # fmt: skip
        assert listed.result.status == protos.StatusResult.Success
        indexed = {m.name: m for m in listed.function_metadata_results}
        for metadata in indexed.values():
            loaded = await runtime.function_load_request(host_request(protos,
                function_load_request=protos.FunctionLoadRequest(
                    function_id=metadata.function_id, metadata=metadata
                )
            ))  # fmt: skip
            assert loaded.result.status == protos.StatusResult.Success, metadata.name
        yield indexed
    finally:
        otel_manager.set_otel_libs_available(False)


def bindings(metadata: Any) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in metadata.raw_bindings]


def test_the_worker_indexes_every_function_with_its_bindings(worker):
    workers = {f"{t.value}_worker" for t in JobType} | {f"{t.value}_high_worker" for t in JobType}
    workers |= {"callback_worker"}
    assert set(worker) == workers | {"http_app_func", "maintenance"}
    http = bindings(worker["http_app_func"])
    trigger = next(b for b in http if b["type"] == "httpTrigger")
    assert trigger["route"] == "/{*route}"
    assert trigger["authLevel"] == "FUNCTION"
    assert {"GET", "POST", "DELETE"} <= set(trigger["methods"])
    assert any(b["type"] == "http" and b["name"] == "$return" for b in http)
    for job_type in JobType:
        for name, setting in [
            (f"{job_type.value}_worker", QUEUE_NAME_SETTINGS[job_type]),
            (f"{job_type.value}_high_worker", HIGH_QUEUE_NAME_SETTINGS[job_type]),
        ]:
            (queue,) = bindings(worker[name])
            assert queue["type"] == "serviceBusTrigger"
            assert queue["queueName"] == f"%{setting}%"
            assert queue["connection"] == SERVICE_BUS
            assert queue["autoCompleteMessages"] is False
            # The SDK-typed message: the host sends model binding data, settlement over gRPC.
            assert queue["properties"] == {"SupportsDeferredBinding": True}
    (callbacks,) = bindings(worker["callback_worker"])
    assert callbacks["queueName"] == f"%{CALLBACKS_QUEUE_SETTING}%"
    assert callbacks["autoCompleteMessages"] is False
    (timer,) = bindings(worker["maintenance"])
    assert timer["type"] == "timerTrigger"
    assert len(timer["schedule"].split()) == 6
    assert all(m.properties["worker_indexed"] == "True" for m in worker.values())


async def invoke(metadata: Any, *, trace_parent: str, **binding: Any) -> Any:
    protos = load_protos()
    ((name, data),) = binding.items()
    response = await runtime.invocation_request(host_request(protos,
        invocation_request=protos.InvocationRequest(
            invocation_id=str(uuid.uuid4()),
            function_id=metadata.function_id,
            input_data=[protos.ParameterBinding(name=name, data=data)],
            trace_context=protos.FunctionRpc_pb2.RpcTraceContext(trace_parent=trace_parent),
        )
    ))  # fmt: skip
    assert response.result.status == protos.StatusResult.Success, response.result.exception.message
    return response


def http(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    protos = load_protos()
    request = protos.RpcHttp(
        method=method,
        url=f"http://localhost:7071{path}",
        headers={"host": "localhost:7071", "content-type": "application/json", **CALLER_HEADERS},
    )
    if body is not None:
        request.body.CopyFrom(protos.TypedData(bytes=json.dumps(body).encode()))
    return protos.TypedData(http=request)


def traceparent(trace_id: str, span_id: str) -> str:
    return f"00-{trace_id}-{span_id}-01"


async def test_get_health_runs_through_the_asgi_function(worker):
    response = await invoke(
        worker["http_app_func"],
        trace_parent=traceparent(HOST_TRACE, HOST_SPAN),
        req=http("GET", "/api/health"),
    )
    answer = response.return_value.http
    assert answer.status_code == "200"
    document = json.loads(answer.body.bytes)
    assert document["status"] == "healthy"
    assert set(document["dependencies"]) == {"storage", "service_bus"}


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_of(span: ReadableSpan) -> str | None:
    return format_span_id(span.parent.span_id) if span.parent else None


async def test_a_job_is_one_trace_with_the_hosts_spans_and_settles_over_grpc(
    worker, emulator, settlement, spans
):
    """POST /api/jobs under the host's request span, then the job's message delivered by
    the host in the same trace: the send is the child of the host's request span, the
    processing the child of the host's invocation span; the message completes over gRPC."""
    created = await invoke(
        worker["http_app_func"],
        trace_parent=traceparent(HOST_TRACE, HOST_SPAN),
        req=http("POST", "/api/jobs", {"type": "summarize", "input": {"text": "Alpha. Beta."}}),
    )
    assert created.return_value.http.status_code == "202"
    job_id = json.loads(created.return_value.http.body.bytes)["id"]
    (send,) = [
        s for s in named(spans, "send summarize") if attrs(s).get("conveyor.job.id") == job_id
    ]
    assert format_trace_id(send.context.trace_id) == HOST_TRACE
    assert parent_of(send) == HOST_SPAN

    message = await take(emulator.connection_string, "summarize", job_id)
    sent_with = message.application_properties[b"traceparent"].decode()
    assert sent_with == traceparent(HOST_TRACE, format_span_id(send.context.span_id))
    lock_token = uuid.uuid4()
    invocation_span = "b7ad6b7169203331"  # the host's span for this delivery, same trace
    await invoke(
        worker["summarize_worker"],
        trace_parent=traceparent(HOST_TRACE, invocation_span),
        msg=service_bus_binding(load_protos(), service_bus_content(
            lock_token, b"".join(message.body), message_id=job_id,
            application_properties={"traceparent": sent_with},
        )),
    )  # fmt: skip
    assert ("complete", str(lock_token), None) in settlement.calls
    (process,) = [s for s in named(spans, "process summarize")
                  if attrs(s).get("conveyor.job.id") == job_id]  # fmt: skip
    assert format_trace_id(process.context.trace_id) == HOST_TRACE
    assert parent_of(process) == invocation_span
    assert attrs(process)["conveyor.outcome"] == "Complete"

    status = await invoke(
        worker["http_app_func"],
        trace_parent=traceparent(HOST_TRACE, HOST_SPAN),
        req=http("GET", f"/api/jobs/{job_id}"),
    )
    assert json.loads(status.return_value.http.body.bytes)["status"] == "succeeded"


async def test_an_unreadable_message_is_dead_lettered_over_grpc(worker, settlement, spans):
    """The host's span in a trace of its own: the processing stays in the message's trace
    and links the host's span."""
    lock_token = uuid.uuid4()
    job_trace, host_trace = uuid.uuid4().hex, uuid.uuid4().hex
    await invoke(
        worker["embed_worker"],
        trace_parent=traceparent(host_trace, HOST_SPAN),
        msg=service_bus_binding(load_protos(), service_bus_content(
            lock_token, b"not json", message_id="junk-1",
            application_properties={"traceparent": traceparent(job_trace, HOST_SPAN)},
        )),
    )  # fmt: skip
    assert ("deadletter", str(lock_token), "BadMessage") in settlement.calls
    (process,) = [s for s in named(spans, "process embed")
                  if attrs(s).get("messaging.message.id") == "junk-1"]  # fmt: skip
    assert format_trace_id(process.context.trace_id) == job_trace
    assert [format_trace_id(link.context.trace_id) for link in process.links] == [host_trace]
    assert attrs(process)["conveyor.outcome"] == "DeadLetter"


async def take(connection_string: str, queue: str, message_id: str) -> Any:
    """The job's message off the emulator's queue, as the host's trigger would receive it."""
    async with (
        ServiceBusClient.from_connection_string(connection_string) as client,
        client.get_queue_receiver(
            queue, receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
        ) as receiver,
    ):
        for _ in range(10):
            for message in await receiver.receive_messages(max_message_count=10, max_wait_time=1):
                if message.message_id == message_id:
                    return message
    raise AssertionError(f"message {message_id} never reached {queue}")
