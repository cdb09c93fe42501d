"""devtools/host_config.py reads bindings and host.json as the Functions host does."""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus
import pytest

from devtools.host_config import discover, resolve_setting, timespan_seconds
from shared.errors import ConfigError


def test_setting_references_resolve_anywhere_in_a_binding_value():
    env = {"PREFIX": "team-a", "KIND": "jobs"}
    assert resolve_setting("%PREFIX%-%KIND%-queue", env) == "team-a-jobs-queue"
    assert resolve_setting("plain", env) == "plain"
    with pytest.raises(ConfigError, match="MISSING"):
        resolve_setting("x-%MISSING%", env)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:05:00", 300), ("1.02:00:00", 93600), ("00:00:00.80", 0.8), ("10:00:30.5", 36030.5)],
)
def test_host_json_durations_are_dotnet_timespans(value, seconds):
    assert timespan_seconds(value) == pytest.approx(seconds)


def test_a_malformed_duration_names_itself():
    with pytest.raises(ConfigError, match="5 minutes"):
        timespan_seconds("5 minutes")


def two_functions() -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name("good")
    @app.service_bus_queue_trigger(
        arg_name="msg",
        queue_name="%PREFIX%-jobs",
        connection="ServiceBusConnection",
        auto_complete_messages=False,
    )
    async def good(
        msg: servicebus.ServiceBusReceivedMessage, actions: servicebus.ServiceBusMessageActions
    ) -> None:
        return None

    @app.function_name("broken")
    @app.timer_trigger(arg_name="timer", schedule="%NOT_SET%")
    async def broken(timer: func.TimerRequest) -> None:
        return None

    return app


def test_a_missing_setting_fails_only_the_function_that_names_it():
    found = discover(two_functions(), {"PREFIX": "team-a"})
    assert [q.queue_name for q in found.queues] == ["team-a-jobs"]
    assert found.queues[0].actions_param == "actions"
    assert found.timers == []
    assert "NOT_SET" in found.failed["broken"]


def test_a_disabled_function_is_not_run_and_the_rest_are():
    settings = {
        "PREFIX": "team-a",
        "NOT_SET": "0 */5 * * * *",
        "AzureWebJobs.good.Disabled": "true",
    }
    paused = discover(two_functions(), settings)
    assert paused.queues == []
    assert paused.disabled == ["good"]
    assert [t.name for t in paused.timers] == ["broken"]
