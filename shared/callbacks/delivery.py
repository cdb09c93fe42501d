"""Delivering one callback attempt: POST the job's status document, signed, to its URL.

The job's row decides (idempotent consumer): a callback already delivered or given up, or a
message from an older round, is completed without a request. A failed attempt is recorded
on the row and the next one is scheduled on the callbacks queue with backoff; after
CALLBACK_MAX_ATTEMPTS it is given up (status `failed`). Nothing here touches the job's own
status or result. The request goes to the address the policy just checked, with the URL's
host in the Host header and TLS SNI, so a DNS answer that changes cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Protocol

import httpx

from shared.callback_state import CallbackState, CallbackStatus
from shared.callbacks.policy import Address, CallbackPolicy, CallbackRefused, CallbackTarget
from shared.callbacks.queue import CallbackMessage, CallbackQueue
from shared.callbacks.settings import CallbackSettings
from shared.callbacks.signing import SIGNATURE_HEADER, signature_header
from shared.errors import NotFound, PermanentError
from shared.jobs import Job, utcnow
from shared.outcomes import Complete, DeadLetter, Outcome, RetryLater
from shared.retry import backoff_delay
from shared.store import JobStore

log = logging.getLogger(__name__)

DELIVERY_HEADER = "Conveyor-Delivery"  # the same for every attempt of one callback: dedupe
ATTEMPT_HEADER = "Conveyor-Attempt"
Render = Callable[[Job], bytes]  # the job's status document as GET /api/jobs/{id} gives it


class Settlement(Protocol):
    """What shared.consumer.Settlement is (each host's adapter), seen from here."""

    async def complete(self) -> None: ...

    async def dead_letter(self, reason: str, description: str) -> None: ...


class CallbackDelivery:
    def __init__(
        self,
        store: JobStore,
        queue: CallbackQueue,
        policy: CallbackPolicy,
        settings: CallbackSettings,
        http: httpx.AsyncClient,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._queue = queue
        self._policy = policy
        self._settings = settings
        self._http = http
        self._rng = rng

    async def handle(self, body: bytes, render: Render, settlement: Settlement) -> Outcome:
        """Decide on one delivery of a callback message and settle it."""
        try:
            message = CallbackMessage.from_body(body)
        except PermanentError as exc:
            await settlement.dead_letter("BadMessage", exc.message)
            return DeadLetter("BadMessage", exc.message)
        outcome = await self._decide(message, render)
        if isinstance(outcome, RetryLater):
            later = replace(message, attempt=outcome.next_attempt)
            await self._queue.send(later, at=utcnow() + timedelta(seconds=outcome.delay))
        await settlement.complete()
        return outcome

    async def _decide(self, message: CallbackMessage, render: Render) -> Outcome:
        try:
            job = await self._store.get(message.job_id)
        except NotFound:
            return Complete(f"no job {message.job_id}")
        state = job.callback
        if state is None or state.token != message.token or job.callback_url is None:
            return Complete("stale: from an earlier round of this job's callback")
        if state.status is not CallbackStatus.PENDING:
            return Complete(f"already {state.status.value}")
        if not job.status.is_terminal:
            return Complete(f"job is {job.status.value} again; a new callback follows")
        if message.attempt < state.attempts:
            return Complete(f"stale copy: attempt {state.attempts} was made")
        if message.attempt == state.attempts:
            # Made and recorded, but the next attempt may not have been queued: queue it
            # (its message id is fixed, so a second copy is dropped as a duplicate).
            return self._next(state, "re-queueing after a lost settlement")
        if job.deleted_at is not None:
            return await self._record(job, message, CallbackStatus.FAILED, None, "job deleted")

        status, code, error, retry_after = await self._attempt(job, message, render)
        if status is CallbackStatus.PENDING and self._settings.retry.exhausted(message.attempt):
            status = CallbackStatus.FAILED
            error = f"gave up after {message.attempt} attempts; last: {error}"
        delay = None
        if status is CallbackStatus.PENDING:
            delay = backoff_delay(message.attempt, self._settings.retry, retry_after, self._rng)
        return await self._record(job, message, status, code, error, delay)

    async def _attempt(
        self, job: Job, message: CallbackMessage, render: Render
    ) -> tuple[CallbackStatus, int | None, str | None, float | None]:
        """One POST: (what it means for the callback, status code, error, Retry-After)."""
        assert job.callback_url is not None
        secret = self._settings.signing_secret
        if not secret:
            return CallbackStatus.FAILED, None, "no CALLBACK_SIGNING_SECRET is set", None
        try:
            target = self._policy.target(job.callback_url)
            addresses = await self._policy.addresses(target)
        except CallbackRefused as exc:
            return CallbackStatus.FAILED, None, f"refused: callback_url {exc}", None
        body = render(job)
        headers = {
            "Host": _host_header(target),
            "Content-Type": "application/json",
            "User-Agent": "Conveyor-Callbacks/1",
            SIGNATURE_HEADER: signature_header(secret, body),
            DELIVERY_HEADER: f"{job.id}:{message.token}",
            ATTEMPT_HEADER: str(message.attempt),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            async with self._http.stream(
                "POST",
                _pinned_url(target, addresses[0]),
                content=body,
                headers=headers,
                extensions=extensions,
                timeout=self._settings.timeout_seconds,
            ) as response:
                code = response.status_code
                retry_after = _seconds(response.headers.get("retry-after"))
        except httpx.TimeoutException:
            return CallbackStatus.PENDING, None, "timed out", None
        except httpx.HTTPError as exc:
            return CallbackStatus.PENDING, None, f"{type(exc).__name__}: {exc}", None
        if 200 <= code < 300:
            return CallbackStatus.DELIVERED, code, None, None
        return CallbackStatus.PENDING, code, f"HTTP {code}", retry_after

    async def _record(
        self,
        job: Job,
        message: CallbackMessage,
        status: CallbackStatus,
        code: int | None,
        error: str | None,
        delay: float | None = None,
    ) -> Outcome:
        now = utcnow()
        next_at = None if delay is None else now + timedelta(seconds=delay)

        def attempted(row: Job) -> Job | None:
            state = row.callback
            if state is None or state.token != message.token or state.attempts >= message.attempt:
                return None
            return replace(
                row,
                callback=state.attempted(status, now, code=code, error=error, next_at=next_at),
            )

        stored = await self._store.update(job.id, attempted, known=job)
        log.info(
            "callback of job %s attempt %d: %s (%s)",
            job.id,
            message.attempt,
            status.value,
            error or code,
        )
        if stored.callback is None or stored.callback.token != message.token:
            return Complete("stale: the callback started over meanwhile")
        if delay is not None:
            return self._next(stored.callback, error or "failed")
        return Complete(status.value)

    def _next(self, state: CallbackState, reason: str) -> Outcome:
        delay = 0.0
        if state.next_attempt_at is not None:
            delay = max(0.0, (state.next_attempt_at - utcnow()).total_seconds())
        return RetryLater(delay, reason, state.attempts + 1)


def _pinned_url(target: CallbackTarget, address: Address) -> str:
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def _host_header(target: CallbackTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None
