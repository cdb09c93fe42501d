"""A local stand-in for Application Insights' ingestion endpoint: it accepts what the Azure
Monitor exporter posts (`/v2.1/track`, JSON, gzip or not) and keeps the envelopes. Also the
host (devtools/host.py) exporting to it, with short export intervals."""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devtools.host_process import HostProcess, run_host


class Ingestion:
    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self.envelopes.extend(items)

    def spans(self) -> list[dict[str, Any]]:
        """Requests and dependencies (what spans become), flattened for assertions."""
        with self._lock:
            envelopes = list(self.envelopes)
        found = []
        for envelope in envelopes:
            data = envelope.get("data", {})
            if data.get("baseType") not in ("RequestData", "RemoteDependencyData"):
                continue
            base = data["baseData"]
            found.append(
                {
                    "kind": data["baseType"],
                    "name": base.get("name"),
                    "id": base.get("id"),
                    "success": base.get("success"),
                    "operation_id": envelope["tags"].get("ai.operation.id"),
                    "parent_id": envelope["tags"].get("ai.operation.parentId"),
                    "properties": base.get("properties", {}),
                }
            )
        return found


@contextlib.contextmanager
def serve_ingestion() -> Iterator[tuple[str, Ingestion]]:
    ingestion = Ingestion()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                raw = gzip.decompress(raw)
            items = json.loads(raw or b"[]")
            items = items if isinstance(items, list) else [items]
            ingestion.add(items)
            reply = json.dumps(
                {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ingestion
    finally:
        server.shutdown()
        server.server_close()


def exporting_env(url: str) -> dict[str, str]:
    """Settings that send traces, logs and metrics to the stub at `url`, soon after each is
    made, and keep every byte on loopback: no live metrics, statsbeat, control plane or VM
    probes."""
    return {
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint={url}/;LiveEndpoint={url}/"
        ),
        "APPLICATIONINSIGHTS_LIVE_METRICS": "false",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_app_service",
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
    }


@contextlib.contextmanager
def monitored_host(
    app_env: dict[str, str], log_path: Path
) -> Iterator[tuple[HostProcess, Ingestion]]:
    """devtools/host.py on `app_env`, exporting with the real Azure Monitor exporter to a
    fresh ingestion stub: the host and what the stub received."""
    with (
        serve_ingestion() as (url, sink),
        run_host({**app_env, **exporting_env(url)}, log_path) as host,
    ):
        yield host, sink
