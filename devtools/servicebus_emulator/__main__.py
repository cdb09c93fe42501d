"""python -m devtools.servicebus_emulator --host 127.0.0.1 --port 5672 [--config Config.json]"""

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
from devtools.servicebus_emulator.broker import Broker
from devtools.servicebus_emulator.config import ConfigError, load_config


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
        print(f"error: cannot listen on {args.host}:{port}: {problem}", file=sys.stderr)
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
    try:
        broker.acceptor = container.listen(f"{args.host}:{port}")
    except Exception as exc:  # e.g. taken between the check above and now
        print(f"error: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 2
    print(f"listening on {args.host}:{port}", flush=True)
    logging.getLogger(__name__).info("connection string: %s", connection_string(args.host, port))
    container.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
