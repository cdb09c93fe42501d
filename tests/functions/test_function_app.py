"""function_app.py as the Functions host indexes it: bindings, settings they name, and the
decorated functions called directly with real requests and real Service Bus messages."""

from __future__ import annotations

import importlib
import json
import uuid
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient

from shared.auth.caller import Caller
from shared.config import HIGH_QUEUE_NAME_SETTINGS, QUEUE_NAME_SETTINGS, SERVICE_BUS
from shared.jobs import JobType, SummarizeRequest
from tests.fixtures.app import CALLER_HEADERS
from tests.functions.conftest import REPO_ROOT, SAMPLE_SETTINGS

HOST_JSON = json.loads((REPO_ROOT / "host.json").read_text())


@pytest.fixture(scope="module")
def function_app(function_app_env: dict[str, str]) -> ModuleType:
    """Import function_app.py the way the worker does: settings in the environment first."""
    return importlib.import_module("function_app")


@pytest.fixture(scope="module")
def functions(function_app: ModuleType) -> dict[str, Any]:
    """The app's function list, read once as the host does (a second read is refused)."""
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def metadata(functions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: json.loads(f.get_function_json()) for name, f in functions.items()}


def test_every_job_type_has_a_settling_queue_trigger(functions):
    described = metadata(functions)
    for job_type in JobType:
        for name, setting in [
            (f"{job_type.value}_worker", QUEUE_NAME_SETTINGS[job_type]),
            (f"{job_type.value}_high_worker", HIGH_QUEUE_NAME_SETTINGS[job_type]),
        ]:
            trigger = described[name]["bindings"][0]
            assert trigger["type"] == "serviceBusTrigger"
            assert trigger["queueName"] == f"%{setting}%"
            assert trigger["connection"] == SERVICE_BUS
            assert trigger["autoCompleteMessages"] is False


def test_every_setting_a_binding_names_is_in_the_sample_settings(functions):
    for name, function in metadata(functions).items():
        for binding in function["bindings"]:
            for key in ("connection", "queueName", "schedule"):
                value = binding.get(key)
                if value is None:
                    continue
                if value.startswith("%"):
                    assert value.strip("%") in SAMPLE_SETTINGS, (name, value)
                elif key == "connection":
                    assert value in SAMPLE_SETTINGS, (name, value)


def test_http_app_and_maintenance_timer_are_registered(functions):
    described = metadata(functions)
    http = described["http_app_func"]["bindings"][0]
    assert http["type"] == "httpTrigger"
    assert http["authLevel"] == "FUNCTION"
    timer = described["maintenance"]["bindings"][0]
    assert timer["type"] == "timerTrigger"
    assert len(timer["schedule"].split()) == 6  # NCRONTAB with seconds


def test_host_json_lets_locks_outlive_the_job_timeout():
    service_bus = HOST_JSON["extensions"]["serviceBus"]
    assert service_bus["autoCompleteMessages"] is False
    renewal = service_bus["maxAutoLockRenewalDuration"]
    hours, minutes, seconds = (float(p) for p in renewal.split(":"))
    assert hours * 3600 + minutes * 60 + seconds >= float(SAMPLE_SETTINGS["JOB_TIMEOUT_SECONDS"])
    assert HOST_JSON["extensionBundle"]["version"].startswith("[4.")


async def test_http_function_accepts_a_job(functions):
    http_function = functions["http_app_func"].get_user_function()
    request = func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/jobs",
        headers={"content-type": "application/json", **CALLER_HEADERS},
        body=json.dumps({"type": "summarize", "input": {"text": "Hi. There."}}).encode(),
    )
    response = await http_function(request, _context())
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert body["status"] == "queued"
    assert response.headers["Location"].endswith(f"/api/jobs/{body['id']}")


async def test_http_function_refuses_a_job_without_a_key(functions):
    http_function = functions["http_app_func"].get_user_function()
    request = func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/jobs",
        headers={"content-type": "application/json"},
        body=json.dumps({"type": "summarize", "input": {"text": "Hi. There."}}).encode(),
    )
    response = await http_function(request, _context())
    assert response.status_code == 401
    assert "ApiKey" in response.headers["WWW-Authenticate"]


class RecordingActions:
    """Stands where the host's gRPC message actions stand, settling through a real receiver."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def complete(self, message: Any) -> None:
        self.calls.append(("complete", message.message_id))

    def deadletter(self, message: Any, deadletter_reason: Any = None, **kw: Any) -> None:
        self.calls.append(("deadletter", deadletter_reason))

    def abandon(self, message: Any) -> None:
        self.calls.append(("abandon", message.message_id))


async def test_queue_function_runs_a_real_message_and_completes_it(
    function_app, functions, emulator
):
    services = await function_app.provider.get()

    submitted = await services.jobs.submit(
        SummarizeRequest.model_validate(
            {"type": "summarize", "input": {"text": "Alpha beta. Gamma."}}
        ),
        caller=Caller(owner="test"),
    )
    worker = functions["summarize_worker"].get_user_function()
    actions = RecordingActions()
    async with (
        ServiceBusClient.from_connection_string(emulator.connection_string) as client,
        client.get_queue_receiver("summarize") as receiver,
    ):
        received = None
        for _ in range(10):
            for message in await receiver.receive_messages(max_message_count=10, max_wait_time=1):
                if message.message_id == submitted.job.id:
                    received = message
                else:
                    await receiver.abandon_message(message)
            if received:
                break
        assert received is not None
        await worker(msg=received, message_actions=actions)
        await receiver.complete_message(received)
    assert actions.calls == [("complete", submitted.job.id)]
    assert (await services.store.get(submitted.job.id)).status.value == "succeeded"


async def test_queue_function_dead_letters_an_unreadable_message(functions, emulator):
    worker = functions["embed_worker"].get_user_function()
    async with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        async with client.get_queue_sender("embed") as sender:
            await sender.send_messages(ServiceBusMessage("not json", message_id="junk-1"))
        async with client.get_queue_receiver("embed") as receiver:
            messages = await receiver.receive_messages(max_message_count=1, max_wait_time=5)
            actions = RecordingActions()
            await worker(msg=messages[0], message_actions=actions)
            await receiver.complete_message(messages[0])
    assert actions.calls == [("deadletter", "BadMessage")]


def _context() -> Any:
    class Context:
        invocation_id = str(uuid.uuid4())
        function_name = "http_app_func"
        function_directory = str(REPO_ROOT)
        trace_context = None
        retry_context = None
        thread_local_storage = None

    return Context()
