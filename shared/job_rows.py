"""A job as a Table entity and back: the columns of the `jobs` table, in one place."""

from __future__ import annotations

import json
from typing import Any

from shared.callback_state import CallbackState
from shared.jobs import Job, JobStatus, JobType, Priority

JOB_ROW_KEY = "job"


def job_to_entity(job: Job) -> dict[str, Any]:
    """The row for `job` (large fields already offloaded); None values are left out."""
    entity: dict[str, Any] = {
        "PartitionKey": job.id,
        "RowKey": JOB_ROW_KEY,
        "type": job.type.value,
        "status": job.status.value,
        "owner": job.owner,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "input_json": None if job.input is None else dumps(job.input),
        "input_ref": job.input_ref,
        "result_json": None if job.result is None else dumps(job.result),
        "result_ref": job.result_ref,
        "error_code": job.error_code,
        "error_message": _truncate(job.error_message),
        "dead_letter_reason": job.dead_letter_reason,
        "idempotency_key": job.idempotency_key,
        "request_hash": job.request_hash,
        "deleted_at": job.deleted_at,
        "callback_url": job.callback_url,
        "callback_status": job.callback.status.value if job.callback else None,
        "callback_json": job.callback.to_json() if job.callback else None,
        # Left out when normal, as in rows written before priorities existed.
        "priority": None if job.priority is Priority.NORMAL else job.priority.value,
        "run_at": job.run_at,
        # Sequence numbers are 64-bit: kept as text (a plain int is written as Int32).
        "scheduled_sequence_number": _optional_text(job.scheduled_sequence_number),
    }
    return {name: value for name, value in entity.items() if value is not None}


def job_from_entity(entity: Any) -> Job:
    input_json = entity.get("input_json")
    result_json = entity.get("result_json")
    return Job(
        id=entity["PartitionKey"],
        type=JobType(entity["type"]),
        status=JobStatus(entity["status"]),
        owner=entity.get("owner", ""),
        created_at=entity["created_at"],
        updated_at=entity["updated_at"],
        input=None if input_json is None else json.loads(input_json),
        input_ref=entity.get("input_ref"),
        attempt=int(entity.get("attempt", 0)),
        started_at=entity.get("started_at"),
        finished_at=entity.get("finished_at"),
        result=None if result_json is None else json.loads(result_json),
        result_ref=entity.get("result_ref"),
        error_code=entity.get("error_code"),
        error_message=entity.get("error_message"),
        dead_letter_reason=entity.get("dead_letter_reason"),
        idempotency_key=entity.get("idempotency_key"),
        request_hash=entity.get("request_hash"),
        deleted_at=entity.get("deleted_at"),
        callback_url=entity.get("callback_url"),
        callback=CallbackState.from_json(entity["callback_json"])
        if entity.get("callback_json")
        else None,
        priority=Priority(entity.get("priority") or Priority.NORMAL),
        run_at=entity.get("run_at"),
        scheduled_sequence_number=_optional_int(entity.get("scheduled_sequence_number")),
        etag=entity.metadata.get("etag"),
    )


def _optional_text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(getattr(value, "value", value))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _truncate(text: str | None, limit: int = 4000) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
