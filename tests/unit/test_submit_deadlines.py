"""Sends that fail in ways the SDK does not wrap, and dependencies that hang: the caller gets
a 503 (ServiceUnavailable) in bounded time, never a 500 or a request that hangs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.auth.caller import Caller
from shared.errors import ServiceUnavailable
from shared.idempotency import keyed_job_id
from shared.jobs import JobType, SummarizeInput, SummarizeRequest
from shared.queue import JobMessage, JobQueue
from shared.submission import JobService


class Sender:
    def __init__(self, fail_with: Exception | None = None) -> None:
        self.fail_with = fail_with
        self.closed = False
        self.sent = 0

    async def __aenter__(self) -> Sender:
        return self

    async def send_messages(self, message: Any) -> None:
        await asyncio.sleep(0)
        if self.closed:
            raise ValueError("The handler has already been shutdown")
        if self.fail_with is not None:
            raise self.fail_with
        self.sent += 1

    async def close(self) -> None:
        self.closed = True


class Client:
    def __init__(self, *senders: Sender) -> None:
        self.senders = list(senders)
        self.opened: list[Sender] = []

    def get_queue_sender(self, queue: str) -> Sender:
        sender = self.senders.pop(0)
        self.opened.append(sender)
        return sender


def message() -> JobMessage:
    return JobMessage(job_id="00000000-0000-0000-0000-000000000001", job_type=JobType.SYNC)


async def test_any_send_failure_is_service_unavailable_and_drops_the_sender():
    broken, fresh = Sender(ValueError("The handler has already been shutdown")), Sender()
    queue = JobQueue(Client(broken, fresh), {t: t.value for t in JobType})  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable):
        await queue.send(message())
    assert broken.closed
    await queue.send(message())
    assert fresh.sent == 1


async def test_a_send_waiting_on_the_lock_never_reuses_a_sender_just_closed():
    broken, fresh = Sender(RuntimeError("link detached")), Sender()
    client = Client(broken, fresh)
    queue = JobQueue(client, {t: t.value for t in JobType})  # type: ignore[arg-type]
    results = await asyncio.gather(
        queue.send(message()), queue.send(message()), return_exceptions=True
    )
    assert isinstance(results[0], ServiceUnavailable)
    assert results[1] is None  # the second send, queued behind the first, got a new sender
    assert fresh.sent == 1


class HangingStore:
    def __init__(self) -> None:
        self.created: list[str] = []

    async def create(self, job: Any) -> Any:
        self.created.append(job.id)
        await asyncio.Event().wait()  # Storage paused: the call never answers


async def test_a_hung_storage_gets_a_503_within_the_budget():
    """The key's row (its claim) is the insert that hung: a retry with the key finds no row
    and writes it, or finds it `queued` and answers with it (the maintenance pass sends it)."""
    store = HangingStore()
    jobs = JobService(store, None, {}, budget_seconds=0.05)  # type: ignore[arg-type]
    request = SummarizeRequest(type=JobType.SUMMARIZE, input=SummarizeInput(text="x"))
    with pytest.raises(ServiceUnavailable) as caught:
        await jobs.submit(request, caller=Caller(owner="o"), idempotency_key="k")
    assert caught.value.code == "dependency_timeout"
    assert caught.value.retry_after
    assert store.created == [keyed_job_id("o", "k")]
