"""python -m devtools.servicebus_emulator --host 127.0.0.1 --port 5672 [--config Config.json]
[--admin-port 5300]"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

from proton.reactor import Container

from devtools.logs import configure_logging
from devtools.servicebus_emulator import connection_string
from devtools.servicebus_emulator.admin import start_admin_server
from devtools.servicebus_emulator.broker import Broker
from devtools.servicebus_emulator.config import ConfigError, load_config
from devtools.servicebus_emulator.snapshot import SnapshotBridge
from devtools.servicebus_emulator.tls import self_signed, server_context


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_port(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.servicebus_emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5672, help="0 picks a free port")
    parser.add_argument("--config", type=Path, help="a Service Bus emulator Config.json")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--admin-port", type=int, default=5300, help="administration (HTTP) port; 0 picks one"
    )
    parser.add_argument("--admin-host", default="127.0.0.1", help="administration address")
    parser.add_argument(
        "--admin-certificate", type=Path, help="write the admin endpoint's TLS certificate here"
    )
    args = parser.parse_args(argv)
    # proton logs a client's abrupt disconnect as an error; it is routine here.
    configure_logging(args.log_level, {"proton": logging.CRITICAL})
    try:
        queues = load_config(args.config) if args.config else None
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    port = args.port or _free_port(args.host)
    problem = _check_port(args.host, port)
    if problem:
        print(f"error: cannot listen on {args.host}:{port}: {problem} (--port)", file=sys.stderr)
        return 2
    certificate, key = self_signed(args.admin_host)
    if args.admin_certificate:
        args.admin_certificate.write_bytes(certificate)
    bridge = SnapshotBridge()
    try:
        admin, _ = start_admin_server(
            args.admin_host, args.admin_port, bridge, server_context(certificate, key)
        )
    except OSError as exc:
        where = f"{args.admin_host}:{args.admin_port}"
        reason = exc.strerror or str(exc)
        print(f"error: cannot listen on {where}: {reason} (--admin-port)", file=sys.stderr)
        return 2

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    broker = Broker(queues, should_stop=lambda: stopping)
    container = Container(broker)
    container.container_id = "servicebus-emulator"
    container.selectable(bridge.injector)
    try:
        broker.acceptor = container.listen(f"{args.host}:{port}")
    except Exception as exc:  # e.g. taken between the check above and now
        print(f"error: cannot listen on {args.host}:{port}: {exc} (--port)", file=sys.stderr)
        admin.server_close()
        return 2
    admin_port = admin.port
    # Two lines a parent process can read: the AMQP port first (as before), then the admin one.
    print(f"listening on {args.host}:{port}", flush=True)
    print(f"admin listening on {args.admin_host}:{admin_port}", flush=True)
    log = logging.getLogger(__name__)
    log.info("connection string: %s", connection_string(args.host, port))
    log.info("admin connection string: %s", connection_string(args.admin_host, admin_port))
    try:
        container.run()
    finally:
        admin.shutdown()
        admin.server_close()
        bridge.injector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
