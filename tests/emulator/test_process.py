"""The emulator as a program: start-up line, bad configuration, busy port, clean shutdown."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.servicebus_emulator.config import parse_duration
from devtools.servicebus_emulator.process import REPO_ROOT, start_emulator


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
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


def test_busy_port_is_one_clear_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run("--port", str(port))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_it_cleanly_and_frees_the_port():
    with start_emulator() as emulator:
        emulator.process.send_signal(signal.SIGTERM)
        assert emulator.process.wait(10) == 0
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((emulator.host, emulator.port))


def test_shipped_config_declares_the_app_queues():
    from devtools.servicebus_emulator.config import load_config

    queues = load_config(REPO_ROOT / "devtools" / "servicebus.config.json")
    assert set(queues) == {"summarize", "embed", "sync"}
    assert all(
        q.max_delivery_count == 5 and q.requires_duplicate_detection for q in queues.values()
    )


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
