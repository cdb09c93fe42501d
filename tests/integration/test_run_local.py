"""`make run` as a user runs it: everything starts, a job completes, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.azurite import ACCOUNT, ACCOUNT_KEY
from devtools.processes import port_is_free

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((REPO_ROOT / "local.settings.sample.json").read_text())


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def settings_file(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    blob, queue, table, bus, admin, http = free_ports(6)
    values = dict(SAMPLE["Values"])
    values["AzureWebJobsStorage"] = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob}/{ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{queue}/{ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{table}/{ACCOUNT};"
    )
    values["ServiceBusConnection"] = values["ServiceBusConnection"].replace("5672", str(bus))
    values["ServiceBusAdminConnection"] = values["ServiceBusAdminConnection"].replace(
        "5300", str(admin)
    )
    path = tmp_path / "local.settings.json"
    path.write_text(
        json.dumps({"IsEncrypted": False, "Values": values, "Host": {"LocalHttpPort": http}})
    )
    ports = {"blob": blob, "queue": queue, "table": table, "bus": bus, "admin": admin}
    return path, {**ports, "http": http}


def start(path: Path, log: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in SAMPLE["Values"]}
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.run_local", "--settings", str(path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_run_local_serves_runs_a_job_and_stops_cleanly(tmp_path: Path):
    path, ports = settings_file(tmp_path)
    log = tmp_path / "run.log"
    process = start(path, log)
    try:
        deadline = time.monotonic() + 90
        while "Conveyor is running" not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        base = f"http://127.0.0.1:{ports['http']}/api"
        output = log.read_text()
        key = re.search(r"development key: (\S+)", output)
        assert key, output[-3000:]
        assert re.search(r"admin key: +cvy_", output)
        headers = {"x-api-key": key[1]}
        job = {"type": "summarize", "input": {"text": "No key, no job."}}
        assert httpx.post(f"{base}/jobs", json=job, timeout=30).status_code == 401
        health = httpx.get(f"{base}/health", timeout=30).json()
        assert health["queues"]["summarize"]["active"] >= 0, health  # the management API
        jobs = {
            "summarize": {"text": "Queues decouple work. Workers drain queues. Cats nap."},
            "embed": {"texts": ["a queue of work", "a line of tasks"]},
        }
        for job_type, job_input in jobs.items():
            submitted = httpx.post(
                f"{base}/jobs",
                json={"type": job_type, "input": job_input},
                headers=headers,
                timeout=30,
            )
            assert submitted.status_code == 202
            doc: dict[str, Any] = {"status": "queued"}
            while doc["status"] not in ("succeeded", "failed", "dead_lettered"):
                assert time.monotonic() < deadline + 60, doc
                time.sleep(0.2)
                doc = httpx.get(submitted.headers["location"], headers=headers, timeout=10).json()
            assert doc["status"] == "succeeded", doc
            assert doc["result"]["provider"] == "local"  # the offline model, by default
    finally:
        os.killpg(os.getpgid(process.pid), signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(60) == 0, log.read_text()[-3000:]
    for port in ports.values():
        assert port_is_free("127.0.0.1", port), f"port {port} still in use"


def test_run_local_names_a_busy_port(tmp_path: Path):
    path, ports = settings_file(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports["bus"]))
        holder.listen()
        log = tmp_path / "run.log"
        process = start(path, log)
        assert process.wait(60) == 2
    output = log.read_text()
    assert f"port {ports['bus']} (Service Bus emulator) is in use" in output
    assert "ServiceBusConnection" in output
    assert "Traceback" not in output
