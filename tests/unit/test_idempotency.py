"""Idempotency-Keys in the job rows: the derived job ids and what a key remembers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from shared.errors import Conflict
from shared.idempotency import keyed_job_id, replayable
from shared.jobs import Job, JobRequest, JobStatus, JobType, is_job_id, utcnow
from shared.submission import fingerprint_of

parse_request = TypeAdapter(JobRequest).validate_python
BASE: dict[str, Any] = {"type": "summarize", "input": {"text": "Keys remember requests."}}


def test_keyed_job_ids_are_job_ids_fixed_per_owner_key_and_generation():
    first = keyed_job_id("team-a", "order-1")
    assert is_job_id(first)
    assert first == keyed_job_id("team-a", "order-1", 0)
    others = {
        keyed_job_id("team-b", "order-1"),
        keyed_job_id("team-a", "order-2"),
        keyed_job_id("team-a", "order-1", 1),
        keyed_job_id("team-a", "order-1", 2),
        keyed_job_id("team-a\x00order-1", ""),
    }
    assert first not in others
    assert len(others) == 5


@pytest.mark.parametrize(
    "option",
    [
        {"priority": "high"},
        {"run_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        {"delay_seconds": 30},
        {"callback_url": "https://hooks.example.com/conveyor"},
    ],
)
def test_every_option_a_request_asks_for_is_in_its_fingerprint(option):
    plain = fingerprint_of(parse_request(BASE))
    assert fingerprint_of(parse_request({**BASE, **option})) != plain
    assert fingerprint_of(parse_request({**BASE, **option})) == fingerprint_of(
        parse_request({**BASE, **option})
    )


def test_two_callback_urls_are_two_requests():
    one = parse_request({**BASE, "callback_url": "https://hooks.example.com/a"})
    two = parse_request({**BASE, "callback_url": "https://hooks.example.com/b"})
    assert fingerprint_of(one) != fingerprint_of(two)


def row(**changes: Any) -> Job:
    now = utcnow()
    fields: dict[str, Any] = {
        "id": keyed_job_id("o", "k"),
        "type": JobType.SUMMARIZE,
        "status": JobStatus.QUEUED,
        "owner": "o",
        "created_at": now,
        "updated_at": now,
        "idempotency_key": "k",
        "request_hash": "h",
    }
    return Job(**(fields | changes))


def test_a_repeat_replays_a_live_job_and_moves_past_a_spent_one():
    assert replayable(row(), "o", "k", "h")
    assert replayable(row(status=JobStatus.CANCELLED), "o", "k", "h")
    assert not replayable(row(status=JobStatus.FAILED, error_code="enqueue_failed"), "o", "k", "h")
    assert not replayable(row(status=JobStatus.SUCCEEDED, deleted_at=utcnow()), "o", "k", "h")


@pytest.mark.parametrize(
    "existing", [row(request_hash="other"), row(owner="p"), row(idempotency_key="j")]
)
def test_another_request_under_the_key_is_a_conflict(existing):
    with pytest.raises(Conflict) as caught:
        replayable(existing, "o", "k", "h")
    assert caught.value.code == "idempotency_key_reused"
