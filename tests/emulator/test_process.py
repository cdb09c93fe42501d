"""The emulator as a program: start-up line, bad configuration, busy port, clean shutdown."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from devtools.servicebus_emulator.config import load_config, parse_duration
from devtools.servicebus_emulator.process import REPO_ROOT, start_emulator
from tests.emulator.helpers import open_sender


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The command line; a free admin port unless the test names one (5300 may be taken)."""
    if "--admin-port" not in args:
        args = (*args, "--admin-port", "0")
    return subprocess.run(
        [sys.executable, "-m", "devtools.servicebus_emulator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_json_names_file_line_and_column(tmp_path: Path):
    config = tmp_path / "Config.json"
    config.write_text('{\n  "UserConfig": {\n    "Namespaces": [,]\n  }\n}\n')
    result = run("--port", "0", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:3:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("properties", "complaint"),
    [
        ({"MaxDeliveryCnt": 3}, "Queues[0].Properties.MaxDeliveryCnt: unknown property"),
        ({"LockDuration": "1 minute"}, "Queues[0].Properties.LockDuration"),
        ({"MaxDeliveryCount": 0}, "expected a whole number >= 1"),
        ({"RequiresDuplicateDetection": "yes"}, "expected a bool"),
    ],
)
def test_bad_properties_name_their_json_path(tmp_path: Path, properties, complaint):
    config = tmp_path / "Config.json"
    document = {
        "UserConfig": {
            "Namespaces": [{"Name": "ns", "Queues": [{"Name": "q", "Properties": properties}]}]
        }
    }
    config.write_text(json.dumps(document))
    result = run("--port", "0", "--config", str(config))
    assert result.returncode == 2
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("queues", "complaint"),
    [
        ([{"Name": "a", "Properties": {"ForwardTo": "nowhere"}}], "'nowhere' is not a queue"),
        ([{"Name": "a", "Properties": {"ForwardDeadLetteredMessagesTo": "a"}}], "to itself"),
        (
            [
                {"Name": "a", "Properties": {"ForwardTo": "b"}},
                {"Name": "b", "Properties": {"ForwardTo": "a"}},
            ],
            "loops: a -> b -> a",
        ),
    ],
)
def test_bad_forwarding_is_refused(tmp_path: Path, queues, complaint):
    config = tmp_path / "Config.json"
    config.write_text(
        json.dumps({"UserConfig": {"Namespaces": [{"Name": "ns", "Queues": queues}]}})
    )
    result = run("--port", "0", "--config", str(config))
    assert result.returncode == 2
    assert complaint in result.stderr


def test_busy_port_is_one_clear_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run("--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_admin_port_names_the_port_and_its_flag():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run("--port", "0", "--admin-port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "(--admin-port)" in result.stderr
    assert "Traceback" not in result.stderr


def test_admin_port_is_the_second_line_and_freed_on_stop():
    with start_emulator() as emulator:
        assert emulator.admin_port not in (0, emulator.port)
        assert f"sb://127.0.0.1:{emulator.admin_port};" in emulator.admin_connection_string
        assert emulator.admin_connection_string.endswith("UseDevelopmentEmulator=true")
        emulator.process.send_signal(signal.SIGTERM)
        assert emulator.process.wait(10) == 0
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((emulator.admin_host, emulator.admin_port))


def test_sigterm_stops_it_cleanly_and_frees_the_port():
    with start_emulator() as emulator:
        emulator.process.send_signal(signal.SIGTERM)
        assert emulator.process.wait(10) == 0
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((emulator.host, emulator.port))


def test_shipped_config_declares_the_app_queues():
    queues = load_config(REPO_ROOT / "infra" / "servicebus.config.json")
    names = json.loads((REPO_ROOT / "infra" / "names.json").read_text(encoding="utf-8"))
    assert set(queues) == set(names["queues"].values())
    job_queues = {"summarize", "summarize-high", "embed", "embed-high", "sync", "sync-high"}
    assert job_queues | {"callbacks"} == set(queues)
    for settings in queues.values():
        assert settings.max_delivery_count == 5
        assert settings.lock_duration == 60
        assert settings.dead_letter_on_expiration
        assert settings.requires_duplicate_detection
        assert settings.duplicate_window == 600


def test_the_shipped_config_serves_its_queues():
    with start_emulator(REPO_ROOT / "infra" / "servicebus.config.json") as emulator:
        with ServiceBusClient.from_connection_string(emulator.connection_string) as sb:
            with open_sender(sb, "summarize") as sender:
                sender.send_messages(ServiceBusMessage("job", message_id="job-1"))
                sender.send_messages(ServiceBusMessage("job again", message_id="job-1"))
            with sb.get_queue_receiver("summarize") as receiver:
                assert [str(m) for m in receiver.peek_messages(max_message_count=5)] == ["job"]


def test_topics_are_warned_about_and_ignored(tmp_path: Path):
    config = tmp_path / "Config.json"
    namespace = {
        "Name": "ns",
        "Queues": [{"Name": "q", "Properties": {}}],
        "Topics": [{"Name": "t", "Properties": {}, "Subscriptions": []}],
    }
    config.write_text(json.dumps({"UserConfig": {"Namespaces": [namespace]}}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.servicebus_emulator",
            *("--port", "0", "--admin-port", "0"),
            "--config",
            str(config),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("listening on 127.0.0.1:")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "topics are not supported" in stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1M", 60), ("PT0.5S", 0.5), ("P14D", 14 * 86400), ("PT1H30M", 5400), ("P1DT1S", 86401)],
)
def test_iso_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "1M", "PTM", "PT1X"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_duration(text)
