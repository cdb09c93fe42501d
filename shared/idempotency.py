"""Idempotency-Keys kept in the job rows themselves: no table of their own.

A keyed submit's job id is derived from (owner, key): `keyed_job_id`, a UUIDv5. Writing the
job row is then the claim, at no cost beyond the insert every submit makes; a second submit
with the key finds the row already there (the insert conflicts) and reads it:

- the same request (its fingerprint, `request_hash` on the row) -> the earlier job again;
- another request -> 409 `idempotency_key_reused`;
- a job that was never queued (its send failed) or that was deleted since -> the key's next
  generation: `keyed_job_id(owner, key, 1)`, 2, ... a new job with an id of its own, as a
  first submit would make. Of several retries racing for a generation, the insert lets
  exactly one through; the others replay its job.

A request that died before its insert left nothing behind, so there is no claim to time out.
"""

from __future__ import annotations

import uuid

from shared.errors import Conflict
from shared.jobs import Job, JobStatus

# Fixed for good: every keyed job id ever handed out was derived under it.
KEYED_JOB_NAMESPACE = uuid.UUID("6c0f7f4e-1f43-5c3e-9d1a-2f6b7c0e4a91")
MAX_GENERATIONS = 64  # deletes and failed sends one key may go through


def keyed_job_id(owner: str, key: str, generation: int = 0) -> str:
    """The job id of (owner, key)'s `generation`-th job. NUL cannot occur in an owner or a
    key (keys are printable ASCII), so no two (owner, key) pairs share a name."""
    name = f"{owner}\x00{key}" if generation == 0 else f"{owner}\x00{key}\x00{generation}"
    return str(uuid.uuid5(KEYED_JOB_NAMESPACE, name))


def replayable(existing: Job, owner: str, key: str, fingerprint: str) -> bool:
    """Whether a repeated key answers with `existing` (True) or moves on to the key's next
    generation (False); a different request with the same key is a Conflict."""
    if (existing.owner, existing.idempotency_key, existing.request_hash) != (
        owner,
        key,
        fingerprint,
    ):
        raise Conflict(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new job",
            code="idempotency_key_reused",
        )
    return not never_queued(existing) and existing.deleted_at is None


def never_queued(job: Job) -> bool:
    return job.status is JobStatus.FAILED and job.error_code in ("enqueue_failed", "never_sent")


def keys_used_up(key: str) -> Conflict:
    return Conflict(
        f"the Idempotency-Key {key!r} has started {MAX_GENERATIONS} jobs that were deleted or "
        "never queued; use a new key",
        code="idempotency_key_reused",
    )
