"""The job vocabulary: types, statuses, allowed transitions, inputs and the stored record.

Everything that says what a job *is* lives here; storage, queues and HTTP only move it around.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from shared.callback_state import CallbackState
from shared.errors import InvalidTransition, NotFound

MAX_SUMMARIZE_TEXT_BYTES = 100 * 1024
MAX_EMBED_TEXTS = 256
MAX_EMBED_TEXT_CHARS = 8_000
MAX_SYNC_RECORD_BYTES = 64 * 1024
MAX_INPUT_DEPTH = 32  # levels of nested objects/arrays in a job input (the input is level 1)


class JobType(StrEnum):
    SUMMARIZE = "summarize"  # text -> short extractive or model summary
    EMBED = "embed"  # texts -> vectors
    SYNC = "sync"  # record -> downstream ERP/CRM-style API

    @classmethod
    def names(cls) -> list[str]:
        return [member.value for member in cls]


class Priority(StrEnum):
    NORMAL = "normal"  # the type's queue
    HIGH = "high"  # the type's high queue, with a trigger of its own: never behind normal work


class JobStatus(StrEnum):
    QUEUED = "queued"  # row written, message sent (or being sent)
    SCHEDULED = "scheduled"  # row written, a scheduled message waits for the job's run_at
    RUNNING = "running"  # a worker holds the message and runs the handler
    RETRYING = "retrying"  # a transient failure; a delayed copy of the message is scheduled
    SUCCEEDED = "succeeded"  # result stored
    FAILED = "failed"  # could not be enqueued, or failed for good without a dead letter
    DEAD_LETTERED = "dead_lettered"  # the message sits in the dead-letter queue
    CANCELLED = "cancelled"  # a caller cancelled it before it finished

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD_LETTERED, JobStatus.CANCELLED}
)

# The one place that says which status may follow which. A replay from the dead-letter queue
# moves a dead-lettered job back to queued; nothing else leaves a terminal status.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.RETRYING,
            JobStatus.FAILED,
            JobStatus.DEAD_LETTERED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SCHEDULED: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.QUEUED,
            JobStatus.RETRYING,
            JobStatus.FAILED,
            JobStatus.DEAD_LETTERED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.RUNNING,  # redelivery after a crash or lost lock
            JobStatus.SUCCEEDED,
            JobStatus.RETRYING,
            JobStatus.FAILED,
            JobStatus.DEAD_LETTERED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.RETRYING: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.FAILED,
            JobStatus.DEAD_LETTERED,
            JobStatus.CANCELLED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.DEAD_LETTERED: frozenset({JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset(),
}


def check_transition(current: JobStatus, target: JobStatus) -> None:
    """Raise InvalidTransition unless `target` may follow `current`."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(current.value, target.value)


# ---- inputs -------------------------------------------------------------------------------

NonEmptyText = Annotated[str, StringConstraints(min_length=1)]
# Text for a model: at least one character that is not whitespace.
ContentText = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
MIN_SUMMARY_WORDS = 10
MAX_SUMMARY_WORDS = 1_000


class _Input(BaseModel):
    # defer_build: a model's validator is built on its first use, not at import (cold start).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True)


class SummarizeInput(_Input):
    text: ContentText = Field(description="Text to summarize, at most 100 KB (UTF-8).")
    max_sentences: int = Field(
        default=3, ge=1, le=20, description="At most this many sentences (or bullets)."
    )
    max_words: int | None = Field(
        default=None,
        ge=MIN_SUMMARY_WORDS,
        le=MAX_SUMMARY_WORDS,
        description="At most this many words, when set.",
    )
    style: Literal["paragraph", "bullets"] = Field(
        default="paragraph", description="One paragraph, or one '- ' line per point."
    )

    @field_validator("text")
    @classmethod
    def _within_size_limit(cls, text: str) -> str:
        size = len(text.encode("utf-8"))
        if size > MAX_SUMMARIZE_TEXT_BYTES:
            raise ValueError(
                f"text is {size} bytes; the limit is {MAX_SUMMARIZE_TEXT_BYTES} (UTF-8)"
            )
        return text


class EmbedInput(_Input):
    texts: list[
        Annotated[
            str, StringConstraints(min_length=1, max_length=MAX_EMBED_TEXT_CHARS, pattern=r"\S")
        ]
    ] = Field(
        min_length=1,
        max_length=MAX_EMBED_TEXTS,
        description=f"1 to {MAX_EMBED_TEXTS} texts, each 1 to {MAX_EMBED_TEXT_CHARS} chars.",
    )


class SyncInput(_Input):
    target: NonEmptyText = Field(description="Name of a configured downstream target.")
    record: dict[str, Any] = Field(description="The record to upsert downstream (JSON object).")
    operation: Literal["upsert", "delete"] = "upsert"

    @field_validator("record", mode="before")
    @classmethod
    def _within_depth_limit(cls, record: Any) -> Any:
        depth = json_depth(record)
        # The input object holds the record: its levels count from 2.
        if depth >= MAX_INPUT_DEPTH:
            raise ValueError(
                f"record is nested {depth} levels deep; the limit is {MAX_INPUT_DEPTH - 1}"
                f" (the job input's limit is {MAX_INPUT_DEPTH})"
            )
        return record

    @field_validator("record")
    @classmethod
    def _within_size_limit(cls, record: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(record).encode("utf-8"))
        if size > MAX_SYNC_RECORD_BYTES:
            raise ValueError(f"record is {size} bytes; the limit is {MAX_SYNC_RECORD_BYTES}")
        return record


class _Request(BaseModel):
    """What every job request may carry besides its type and input. `run_at` and
    `delay_seconds` exclude each other; how far ahead either may reach is a setting
    (MAX_DELAY_SECONDS), checked at submit (shared/scheduling.py)."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_extra={"not": {"required": ["run_at", "delay_seconds"]}},
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="POSTed the final status document, signed, when the job finishes; its "
        "host must be on the allow-list (docs/api.md#completion-callbacks).",
    )

    priority: Priority = Field(
        default=Priority.NORMAL,
        description="`high` jobs go to a queue of their own and never wait behind `normal` ones.",
    )
    run_at: AwareDatetime | None = Field(
        default=None,
        description="Start no earlier than this time (RFC 3339 with a time zone), at most "
        "MAX_DELAY_SECONDS from now. Not with delay_seconds.",
    )
    delay_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Start no earlier than this many seconds from now, at most "
        "MAX_DELAY_SECONDS. Not with run_at.",
    )

    @field_validator("run_at", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        # Pydantic would read a number as a Unix time; the document promises a string.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an RFC 3339 date-time string with a time zone")
        return value


class SummarizeRequest(_Request):
    type: Literal[JobType.SUMMARIZE]
    input: SummarizeInput


class EmbedRequest(_Request):
    type: Literal[JobType.EMBED]
    input: EmbedInput


class SyncRequest(_Request):
    type: Literal[JobType.SYNC]
    input: SyncInput


JobRequest = Annotated[SummarizeRequest | EmbedRequest | SyncRequest, Field(discriminator="type")]
JobInput = SummarizeInput | EmbedInput | SyncInput


def json_depth(value: Any) -> int:
    """Levels of nested dicts/lists in `value` (a scalar is 0), counted without recursion so
    no depth can overflow the interpreter's stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def request_fingerprint(
    job_type: JobType, input_data: dict[str, Any], options: dict[str, Any] | None = None
) -> str:
    """A stable hash of what was asked, to tell a repeated submit from a different one.
    `options` holds the request's non-default priority and schedule (absent ones leave the
    hash as it was before those fields existed)."""
    asked: dict[str, Any] = {"type": job_type.value, "input": input_data}
    if options:
        asked["options"] = options
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---- the stored record --------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def require_job_id(value: str) -> None:
    if not is_job_id(value):
        raise NotFound(
            f"no job with id {value!r}: job ids are UUIDs, as returned by POST /api/jobs"
        )


@dataclass(frozen=True)
class Job:
    """One job's status row, as the API shows it and the workers update it."""

    id: str
    type: JobType
    status: JobStatus
    owner: str
    created_at: datetime
    updated_at: datetime
    input: dict[str, Any] | None = None  # None when the input lives in blob storage
    input_ref: str | None = None
    attempt: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    result_ref: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    dead_letter_reason: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    deleted_at: datetime | None = None  # a tombstone: gone for callers, kept for workers
    callback_url: str | None = None
    callback: CallbackState | None = None  # set when a job with a callback_url finishes
    priority: Priority = Priority.NORMAL
    run_at: datetime | None = None  # a delayed job: its message is scheduled for this time
    scheduled_sequence_number: int | None = None  # of that message, to cancel it
    etag: str | None = field(default=None, compare=False)

    @property
    def result_is_external(self) -> bool:
        """Part of the result lives in Blob storage (GET .../result reads it back)."""
        return self.result_ref is not None or (
            isinstance(self.result, dict) and "vectors_ref" in self.result
        )

    def moved_to(self, status: JobStatus, **changes: Any) -> Job:
        """A copy in `status`, after checking the transition is allowed."""
        check_transition(self.status, status)
        now = utcnow()
        if status.is_terminal and "finished_at" not in changes:
            changes["finished_at"] = now
        return replace(self, status=status, updated_at=now, **changes)
