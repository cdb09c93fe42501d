"""What the Functions host hands the Python worker, built here so the worker's own code can run.

`azure-functions-runtime` is the Python worker's indexing and invocation code; its handlers
take the host's gRPC messages (the `FunctionRpc` protobuf module, passed in as "protos"), and
a Service Bus function settles through the host's Settlement gRPC service. This module gives
the protobuf module (the generated one `azure-functions-runtime-v1` ships), request wrappers
as the worker's dispatcher passes them, Service Bus model binding data as the host encodes it,
and a Settlement server on 127.0.0.1 that records what the function asked for.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import grpc  # type: ignore[import-untyped]
import uamqp
from azurefunctions.extensions.bindings.protos import settlement_pb2_grpc
from google.protobuf.empty_pb2 import Empty  # type: ignore[import-untyped]

PROTOS_DISTRIBUTION = "azure-functions-runtime-v1"
PROTOS_MODULE = "functions_host_protos"
LOCK_TOKEN_MARKER = b"x-opt-lock-token"


def load_protos() -> ModuleType:
    """The host's protobuf messages. The package ships them as a top-level `tests.protos`
    package, which this repository's own `tests` package shadows: load them by path."""
    if PROTOS_MODULE in sys.modules:
        return sys.modules[PROTOS_MODULE]
    init = Path(str(importlib.metadata.distribution(PROTOS_DISTRIBUTION).locate_file(
        "tests/protos/__init__.py"
    )))  # fmt: skip
    spec = importlib.util.spec_from_file_location(
        PROTOS_MODULE, init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None, f"no protos at {init}"
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PROTOS_MODULE] = module
    spec.loader.exec_module(module)
    return module


def host_request(protos: ModuleType, **message: Any) -> Any:
    """A request as the worker's dispatcher hands it to a runtime handler."""
    return SimpleNamespace(
        request=protos.StreamingMessage(**message),
        properties={"host": "127.0.0.1", "protos": protos},
    )


def service_bus_content(
    lock_token: uuid.UUID,
    body: bytes,
    *,
    message_id: str,
    application_properties: dict[str, str] | None = None,
) -> bytes:
    """A received message as the host's model binding data carries it: the lock token
    (16 bytes, little-endian), the lock-token marker, then the AMQP-encoded message."""
    message = uamqp.Message(
        body=body,
        properties=uamqp.message.MessageProperties(
            message_id=message_id, content_type="application/json"
        ),
        application_properties=application_properties or {},
    )
    return lock_token.bytes_le + LOCK_TOKEN_MARKER + message.encode_message()


def service_bus_binding(protos: ModuleType, content: bytes) -> Any:
    return protos.TypedData(
        model_binding_data=protos.FunctionRpc_pb2.ModelBindingData(
            version="1.0",
            source="AzureServiceBusReceivedMessage",
            content_type="application/octet-stream",
            content=content,
        )
    )


@dataclass
class Settlement(settlement_pb2_grpc.SettlementServicer):
    """The host's side of message settlement: records each call, always succeeds."""

    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, action: str, locktoken: str, reason: str | None = None) -> Empty:
        with self._lock:
            self.calls.append((action, locktoken, reason))
        return Empty()

    def Complete(self, request: Any, context: Any) -> Empty:
        return self._record("complete", request.locktoken)

    def Abandon(self, request: Any, context: Any) -> Empty:
        return self._record("abandon", request.locktoken)

    def Deadletter(self, request: Any, context: Any) -> Empty:
        return self._record("deadletter", request.locktoken, request.deadletterReason.value)


@contextlib.contextmanager
def settlement_server() -> Iterator[tuple[int, Settlement]]:
    """A Settlement gRPC server on a free loopback port, as the host runs one per worker."""
    settlement = Settlement()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    settlement_pb2_grpc.add_SettlementServicer_to_server(settlement, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, settlement
    finally:
        server.stop(grace=None)
