"""Messages per second through the Service Bus emulator with the real SDK.

    python -m bench.emulator_throughput [--count 10000] [--receivers 4] [--size 1024]
                                        [--mode async|threads] [--time-limit 120]

Starts the emulator as a child process, sends `count` messages of `size` bytes in batches
(`ServiceBusMessageBatch`), then drains them with `receivers` concurrent receivers, each on
its own connection with prefetch on, completing every message. Prints the send rate, the
receive+complete rate and the end-to-end rate. Target: >= 1,000 msg/s end to end.

`--mode async` (the default) runs the receivers as asyncio tasks on the async client;
`--mode threads` runs them as threads on the sync client.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient

from devtools.servicebus_emulator.process import start_emulator

QUEUE = "bench"
PREFETCH = 100


class TimeLimitExceeded(Exception):
    pass


def send(connection: str, count: int, size: int, deadline: float) -> float:
    """Send `count` messages in full batches; returns the seconds it took."""
    payload = b"x" * size
    started = time.perf_counter()
    with ServiceBusClient.from_connection_string(connection) as sb:
        with sb.get_queue_sender(QUEUE) as sender:
            sent = 0
            while sent < count:
                if time.monotonic() > deadline:
                    raise TimeLimitExceeded(f"sent only {sent}/{count} messages")
                batch = sender.create_message_batch()
                while sent < count:
                    try:
                        batch.add_message(ServiceBusMessage(payload))
                    except ValueError:  # the batch is full
                        break
                    sent += 1
                sender.send_messages(batch)
    return time.perf_counter() - started


def _shares(count: int, receivers: int) -> list[int]:
    return [count // receivers + (1 if n < count % receivers else 0) for n in range(receivers)]


def receive_threads(connection: str, count: int, receivers: int, deadline: float) -> int:
    done = [0] * receivers
    errors: list[BaseException] = []

    def drain(index: int, share: int) -> None:
        try:
            with ServiceBusClient.from_connection_string(connection) as sb:
                with sb.get_queue_receiver(QUEUE, prefetch_count=PREFETCH) as receiver:
                    while done[index] < share and time.monotonic() < deadline:
                        for message in receiver.receive_messages(
                            max_message_count=min(PREFETCH, share - done[index]), max_wait_time=1
                        ):
                            receiver.complete_message(message)
                            done[index] += 1
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [
        threading.Thread(target=drain, args=(n, share), daemon=True)
        for n, share in enumerate(_shares(count, receivers))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 30)
    if errors:
        raise errors[0]
    return sum(done)


async def _receive_async(connection: str, count: int, receivers: int, deadline: float) -> int:
    async def drain(share: int) -> int:
        done = 0
        async with AsyncServiceBusClient.from_connection_string(connection) as sb:
            async with sb.get_queue_receiver(QUEUE, prefetch_count=PREFETCH) as receiver:
                while done < share and time.monotonic() < deadline:
                    for message in await receiver.receive_messages(
                        max_message_count=min(PREFETCH, share - done), max_wait_time=1
                    ):
                        await receiver.complete_message(message)
                        done += 1
        return done

    results = await asyncio.gather(*(drain(share) for share in _shares(count, receivers)))
    return sum(results)


def receive(connection: str, count: int, receivers: int, mode: str, deadline: float) -> float:
    """Drain the queue with competing receivers; returns the seconds it took."""
    started = time.perf_counter()
    if mode == "threads":
        done = receive_threads(connection, count, receivers, deadline)
    else:
        done = asyncio.run(_receive_async(connection, count, receivers, deadline))
    if done < count:
        raise TimeLimitExceeded(f"received and completed only {done}/{count} messages")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emulator_throughput")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--receivers", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024, help="body size in bytes")
    parser.add_argument("--mode", choices=["async", "threads"], default="async")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.time_limit
    try:
        with start_emulator() as emulator:
            send_seconds = send(emulator.connection_string, args.count, args.size, deadline)
            receive_seconds = receive(
                emulator.connection_string, args.count, args.receivers, args.mode, deadline
            )
    except TimeLimitExceeded as exc:
        print(f"aborted after the {args.time_limit:.0f} s time limit: {exc}", file=sys.stderr)
        return 1
    total = send_seconds + receive_seconds
    print(f"messages: {args.count} x {args.size} B, receivers: {args.receivers} ({args.mode})")
    print(f"send (batched):      {args.count / send_seconds:8.0f} msg/s")
    print(f"receive + complete:  {args.count / receive_seconds:8.0f} msg/s")
    print(f"end to end:          {args.count / total:8.0f} msg/s (target >= 1000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
