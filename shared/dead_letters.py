"""Dead-letter queue tools: list, show, replay, purge, and reconcile rows with the DLQ.

They see every job queue and the callbacks queue. Replaying a job sends it again as a fresh
attempt 1; replaying a callback delivery sends it back to the callbacks queue and leaves the
job alone (shared/callbacks/replay.py). Only job queues are reconciled with rows.

Works against Azure Service Bus and the local emulator alike (plain AMQP through the SDK).
Replay sends the fresh copy FIRST and completes the dead letter only after, so a replay that
fails half-way leaves the dead letter where it was. Every replay and purge is audited.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from azure.servicebus.exceptions import ServiceBusError

from shared import metrics
from shared.audit import AuditLog
from shared.callbacks.queue import CallbackMessage
from shared.callbacks.replay import CallbackReplay
from shared.dead_letter_records import ActionReport, DeadLetterEntry, Selection, live_row
from shared.errors import (
    ConveyorError,
    FieldProblem,
    NotFound,
    PermanentError,
    ServiceUnavailable,
    ValidationFailed,
)
from shared.jobs import Job, JobStatus
from shared.logs import job_fields
from shared.queue import JobMessage, JobQueue, body_bytes
from shared.store import JobStore

log = logging.getLogger(__name__)

PEEK_BATCH = 100
RECEIVE_BATCH = 50
RECEIVE_WAIT_SECONDS = 2.0
MAX_SCAN = 1000

Progress = Callable[[int, int], None]  # (done, total so far)


class DeadLetterTools:
    def __init__(
        self,
        client: ServiceBusClient,
        store: JobStore,
        queue: JobQueue,
        audit: AuditLog,
        callbacks: CallbackReplay | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._queue = queue
        self.audit = audit
        self._callbacks = callbacks
        self._reconciled_up_to: dict[str, int] = {}

    @property
    def job_queue_names(self) -> list[str]:
        """The job queues (normal and high per type): the ones reconciled with rows."""
        return self._queue.all_queue_names

    @property
    def queue_names(self) -> list[str]:
        """Every queue whose dead letters these tools see: the job queues and callbacks."""
        extra = [] if self._callbacks is None else [self._callbacks.queue_name]
        return list(dict.fromkeys([*self.job_queue_names, *extra]))

    def _is_callbacks(self, queue_name: str) -> bool:
        return self._callbacks is not None and queue_name == self._callbacks.queue_name

    def _entry(
        self, queue_name: str, message: ServiceBusReceivedMessage, *, with_body: bool = False
    ) -> DeadLetterEntry:
        parse = (
            CallbackMessage.from_body if self._is_callbacks(queue_name) else JobMessage.from_body
        )
        return _entry(queue_name, message, parse, with_body=with_body)

    def check_queue(self, name: str) -> str:
        known = sorted(self.queue_names)
        if name not in known:
            raise NotFound(f"unknown queue {name!r}; queues: {', '.join(known)}")
        return name

    # ---- reading (peek: takes no lock, changes nothing) ---------------------------------

    async def peek(
        self, queue_name: str, *, limit: int = 100, start: int = 0
    ) -> list[DeadLetterEntry]:
        """Dead letters from sequence number `start` on, at most `limit` of them."""
        self.check_queue(queue_name)
        entries: list[DeadLetterEntry] = []
        try:
            async with self._dlq_receiver(queue_name) as receiver:
                next_sequence = start
                while len(entries) < limit:
                    batch = await receiver.peek_messages(
                        max_message_count=min(PEEK_BATCH, limit - len(entries)),
                        sequence_number=next_sequence,
                    )
                    if not batch:
                        break
                    entries.extend(self._entry(queue_name, m) for m in batch)
                    next_sequence = (batch[-1].sequence_number or 0) + 1
        except ServiceBusError as exc:
            raise ServiceUnavailable(f"could not read the dead-letter queue: {exc}") from exc
        return entries

    async def summary(self, *, limit: int = 100) -> dict[str, dict[str, list[DeadLetterEntry]]]:
        """Dead letters per queue, grouped by reason."""
        grouped: dict[str, dict[str, list[DeadLetterEntry]]] = {}
        for queue_name in self.queue_names:
            by_reason: dict[str, list[DeadLetterEntry]] = {}
            for entry in await self.peek(queue_name, limit=limit):
                by_reason.setdefault(entry.reason or "(none)", []).append(entry)
            grouped[queue_name] = by_reason
        return grouped

    async def show(self, queue_name: str, sequence_number: int) -> DeadLetterEntry:
        self.check_queue(queue_name)
        try:
            async with self._dlq_receiver(queue_name) as receiver:
                batch = await receiver.peek_messages(
                    max_message_count=1, sequence_number=sequence_number
                )
        except ServiceBusError as exc:
            raise ServiceUnavailable(f"could not read the dead-letter queue: {exc}") from exc
        if not batch or batch[0].sequence_number != sequence_number:
            raise NotFound(f"no dead letter {sequence_number} in {queue_name}")
        return self._entry(queue_name, batch[0], with_body=True)

    # ---- acting (peek-lock receive, settle each) ----------------------------------------

    async def replay(
        self,
        queue_name: str,
        selection: Selection,
        *,
        actor: str,
        progress: Progress | None = None,
    ) -> ActionReport:
        """Send each selected dead letter again: a job as a fresh attempt 1, a callback
        delivery back to the callbacks queue."""
        return await self._act(queue_name, selection, "replay", self._replay_one, actor, progress)

    async def purge(
        self,
        queue_name: str,
        selection: Selection,
        *,
        actor: str,
        confirm: bool,
        progress: Progress | None = None,
    ) -> ActionReport:
        """Delete the selected dead letters for good; their rows stay dead_lettered."""
        if not confirm:
            raise ValidationFailed(
                "purge deletes dead letters for good and needs confirmation",
                [FieldProblem("confirm", "must be true")],
            )

        async def purge_one(receiver: ServiceBusReceiver, message: Any, entry: Any) -> str | None:
            await receiver.complete_message(message)
            return None

        return await self._act(queue_name, selection, "purge", purge_one, actor, progress)

    async def _act(
        self,
        queue_name: str,
        selection: Selection,
        action: str,
        act_on: Callable[..., Any],
        actor: str,
        progress: Progress | None,
    ) -> ActionReport:
        self.check_queue(queue_name)
        report = ActionReport(queue=queue_name, action=action)
        held: list[ServiceBusReceivedMessage] = []  # locked but not selected: released at the end
        scanned = 0
        try:
            async with self._dlq_receiver(queue_name) as receiver:
                try:
                    while len(report.done) < selection.limit and scanned < MAX_SCAN:
                        batch = await receiver.receive_messages(
                            max_message_count=RECEIVE_BATCH, max_wait_time=RECEIVE_WAIT_SECONDS
                        )
                        if not batch:
                            break
                        for message in batch:
                            scanned += 1
                            entry = self._entry(queue_name, message)
                            if not selection.matches(entry) or len(report.done) >= selection.limit:
                                held.append(message)
                                continue
                            await self._act_on_one(receiver, message, entry, act_on, report, held)
                            if progress is not None:
                                progress(len(report.done), scanned)
                            await self.audit.record(
                                actor,
                                f"dead_letter.{action}",
                                f"{queue_name}/{entry.sequence_number}",
                                job_id=entry.job_id,
                                reason=entry.reason,
                                result="done"
                                if entry.sequence_number in report.done
                                else report.skipped.get(entry.sequence_number)
                                or report.failed.get(entry.sequence_number),
                            )
                finally:
                    for message in held:
                        try:
                            await receiver.abandon_message(message)
                        except ServiceBusError:
                            log.debug("could not release a dead letter's lock", exc_info=True)
        except ServiceBusError as exc:
            raise ServiceUnavailable(f"could not read the dead-letter queue: {exc}") from exc
        return report

    async def _act_on_one(
        self,
        receiver: ServiceBusReceiver,
        message: ServiceBusReceivedMessage,
        entry: DeadLetterEntry,
        act_on: Callable[..., Any],
        report: ActionReport,
        held: list[ServiceBusReceivedMessage],
    ) -> None:
        try:
            skipped = await act_on(receiver, message, entry)
        except (ConveyorError, ServiceBusError) as exc:
            report.failed[entry.sequence_number] = str(exc)
            held.append(message)
            return
        if skipped:
            report.skipped[entry.sequence_number] = skipped
            held.append(message)
        else:
            report.done.append(entry.sequence_number)

    async def _replay_one(
        self,
        receiver: ServiceBusReceiver,
        message: ServiceBusReceivedMessage,
        entry: DeadLetterEntry,
    ) -> str | None:
        """Returns why it was skipped, or None when replayed."""
        if self._callbacks is not None and self._is_callbacks(entry.queue):
            skipped = await self._callbacks.replay(body_bytes(message))
            if skipped is None:
                await receiver.complete_message(message)
                log.info("replayed the callback of job %s from %s", entry.job_id, entry.queue)
            return skipped
        try:
            job_message = JobMessage.from_body(body_bytes(message))
        except PermanentError as exc:
            return f"not a job message ({exc.message}); inspect it, then purge it"
        job = await live_row(self._store, job_message.job_id)
        if isinstance(job, str):
            return job
        if job.status is not JobStatus.DEAD_LETTERED:
            return f"job {job.id} is {job.status.value}, not dead_lettered; purge it if unwanted"

        requeued = await self._store.update(job.id, _requeue)
        fresh = job_message.next_copy(1, "replay")
        try:
            await self._queue.send(fresh)
        except ServiceUnavailable:
            await self._store.update(requeued.id, lambda row: _back_to_dead_letter(row, job))
            raise
        await receiver.complete_message(message)
        log.info(
            "replayed job %s from %s",
            job.id,
            entry.queue,
            extra=job_fields(requeued, attempt=1, outcome="replayed", queue=entry.queue),
        )
        return None

    # ---- keeping rows true to the DLQ ---------------------------------------------------

    async def reconcile(self, queue_name: str) -> int:
        """Mark rows dead_lettered for dead letters the broker made on its own (for example
        MaxDeliveryCountExceeded after repeated crashes). Returns how many rows changed."""
        if queue_name not in self.job_queue_names:
            return 0  # a callback's dead letter says nothing about its job's status
        changed = 0
        start = self._reconciled_up_to.get(queue_name, 0)
        for entry in await self.peek(queue_name, limit=MAX_SCAN, start=start):
            self._reconciled_up_to[queue_name] = entry.sequence_number + 1
            if entry.job_id is None:
                continue
            try:
                before = await self._store.get(entry.job_id)
            except NotFound:
                continue
            after = await self._store.update(entry.job_id, functools.partial(_dead, entry=entry))
            if after.status is JobStatus.DEAD_LETTERED and before.status is not after.status:
                changed += 1
                metrics.job_finished(after)
                log.warning(
                    "job %s marked dead_lettered from the DLQ (%s)",
                    entry.job_id,
                    entry.reason,
                    extra=job_fields(
                        after, outcome="dead_lettered", reason=after.dead_letter_reason
                    ),
                )
        return changed

    def _dlq_receiver(self, queue_name: str) -> ServiceBusReceiver:
        return self._client.get_queue_receiver(
            queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER, prefetch_count=0
        )


def _requeue(row: Job) -> Job | None:
    if row.status is not JobStatus.DEAD_LETTERED:
        return None
    return replace(
        row.moved_to(JobStatus.QUEUED),
        attempt=0,
        finished_at=None,
        error_code=None,
        error_message=None,
        dead_letter_reason=None,
    )


def _back_to_dead_letter(row: Job, before: Job) -> Job | None:
    if row.status is not JobStatus.QUEUED:
        return None
    return replace(row, status=JobStatus.DEAD_LETTERED, attempt=before.attempt,
                   finished_at=before.finished_at, error_code=before.error_code,
                   error_message=before.error_message,
                   dead_letter_reason=before.dead_letter_reason)  # fmt: skip


def _dead(row: Job, entry: DeadLetterEntry) -> Job | None:
    if row.status.is_terminal or (entry.attempt or 0) < row.attempt:
        return None  # finished already, or this dead letter is a stale copy
    return row.moved_to(
        JobStatus.DEAD_LETTERED,
        dead_letter_reason=entry.reason or "DeadLettered",
        error_code=row.error_code or "dead_lettered",
        error_message=entry.description or row.error_message,
    )


def _entry(
    queue_name: str,
    message: ServiceBusReceivedMessage,
    parse: Callable[[bytes], JobMessage | CallbackMessage],
    *,
    with_body: bool = False,
) -> DeadLetterEntry:
    """`parse` reads the queue's kind of body; one it cannot read is listed without a job."""
    job_id: str | None = None
    attempt: int | None = None
    raw = body_bytes(message)
    try:
        parsed = parse(raw)
        job_id, attempt = parsed.job_id, parsed.attempt
    except PermanentError:
        pass
    return DeadLetterEntry(
        queue=queue_name,
        sequence_number=message.sequence_number or 0,
        message_id=message.message_id,
        job_id=job_id,
        attempt=attempt,
        reason=message.dead_letter_reason,
        description=message.dead_letter_error_description,
        enqueued_at=message.enqueued_time_utc,
        delivery_count=message.delivery_count,
        body=raw.decode("utf-8", errors="replace")[:10_000] if with_body else None,
    )
