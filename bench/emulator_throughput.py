"""Messages per second through the Service Bus emulator with the real SDK.

    python -m bench.emulator_throughput [--count 10000] [--receivers 4] [--size 1024]

Sends `count` messages of `size` bytes in batches, then drains them with `receivers`
concurrent receivers (each its own connection, prefetch on) that complete every message.
Prints send, receive+complete and end-to-end rates. Target: >= 1,000 msg/s end to end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from multiprocessing.sharedctypes import Synchronized

from azure.servicebus import ServiceBusClient, ServiceBusMessage

from devtools.servicebus_emulator.process import start_emulator

TIME_LIMIT_SECONDS = 120.0
QUEUE = "bench"


def send(connection: str, count: int, size: int) -> float:
    payload = b"x" * size
    started = time.perf_counter()
    with ServiceBusClient.from_connection_string(connection) as sb:
        with sb.get_queue_sender(QUEUE) as sender:
            sent = 0
            while sent < count:
                batch = sender.create_message_batch()
                while sent < count:
                    try:
                        batch.add_message(ServiceBusMessage(payload))
                    except ValueError:  # the batch is full
                        break
                    sent += 1
                sender.send_messages(batch)
    return time.perf_counter() - started


def _drain(connection: str, count: int, deadline: float, done: Synchronized[int]) -> None:
    """One receiver process: receive and complete until all `count` messages are done."""
    with ServiceBusClient.from_connection_string(connection) as sb:
        with sb.get_queue_receiver(QUEUE, prefetch_count=100) as receiver:
            while done.value < count and time.time() < deadline:
                for message in receiver.receive_messages(max_message_count=100, max_wait_time=1):
                    receiver.complete_message(message)
                    with done.get_lock():
                        done.value += 1


def receive(connection: str, count: int, receivers: int) -> float:
    """Competing receivers, each in its own process (as separate workers would be)."""
    done: Synchronized[int] = multiprocessing.Value("i", 0)
    deadline = time.time() + TIME_LIMIT_SECONDS
    processes = [
        multiprocessing.Process(target=_drain, args=(connection, count, deadline, done))
        for _ in range(receivers)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    while done.value < count and time.time() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(30)
    if done.value < count:
        raise SystemExit(f"only {done.value}/{count} messages received in {TIME_LIMIT_SECONDS}s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_throughput")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--receivers", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with start_emulator() as emulator:
        send_seconds = send(emulator.connection_string, args.count, args.size)
        receive_seconds = receive(emulator.connection_string, args.count, args.receivers)
    total = send_seconds + receive_seconds
    print(f"messages: {args.count} x {args.size} B, receivers: {args.receivers}")
    print(f"send (batched):          {args.count / send_seconds:9.0f} msg/s")
    print(f"receive + complete:      {args.count / receive_seconds:9.0f} msg/s")
    print(f"end to end:              {args.count / total:9.0f} msg/s (target >= 1000)")


if __name__ == "__main__":
    main()
