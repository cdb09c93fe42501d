"""When a submitted job may start (shared/scheduling.py), and what a high job's message says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.errors import ValidationFailed
from shared.jobs import JobType, Priority
from shared.queue import JobMessage
from shared.scheduling import PAST_TOLERANCE_SECONDS, due_time

NOW = datetime(2026, 3, 1, 12, 0, 0, 250_400, tzinfo=UTC)
HORIZON = 7 * 86400.0


def due(run_at: datetime | None = None, delay: float | None = None, **kw: bool) -> datetime | None:
    return due_time(run_at, delay, now=NOW, max_delay_seconds=HORIZON, **kw)


def test_no_schedule_runs_now():
    assert due() is None
    assert due(delay=0) is None


def test_a_delay_is_rounded_up_to_the_millisecond_service_bus_keeps():
    at = due(delay=2)
    assert at == datetime(2026, 3, 1, 12, 0, 2, 251_000, tzinfo=UTC)
    assert at is not None
    assert at >= NOW + timedelta(seconds=2)


def test_run_at_in_another_zone_is_the_same_instant_in_utc():
    local = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=2)))
    assert due(run_at=local) == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)


def test_a_run_at_within_the_tolerance_runs_now_and_beyond_it_is_refused():
    assert due(run_at=NOW - timedelta(seconds=PAST_TOLERANCE_SECONDS - 1)) is None
    with pytest.raises(ValidationFailed) as refused:
        due(run_at=NOW - timedelta(seconds=PAST_TOLERANCE_SECONDS + 1))
    assert [p.field for p in refused.value.problems] == ["run_at"]
    assert "in the past" in refused.value.message


def test_the_horizon_is_the_limit_for_both_fields():
    assert due(delay=HORIZON) == NOW.replace(microsecond=251_000) + timedelta(seconds=HORIZON)
    with pytest.raises(ValidationFailed, match="7 days"):
        due(delay=HORIZON + 1)
    with pytest.raises(ValidationFailed, match="7 days"):
        due(run_at=NOW + timedelta(seconds=HORIZON + 60))


def test_a_year_one_run_at_is_refused_without_overflowing():
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValidationFailed):
        due(run_at=early)


def test_both_fields_are_refused_naming_both():
    with pytest.raises(ValidationFailed) as refused:
        due(run_at=NOW + timedelta(minutes=1), delay=5)
    assert {p.field for p in refused.value.problems} == {"run_at", "delay_seconds"}
    with pytest.raises(ValidationFailed):
        due(delay=5, both_given=True)


def test_a_high_jobs_message_carries_its_priority_and_its_copies_keep_it():
    message = JobMessage(job_id="j", job_type=JobType.SYNC, priority=Priority.HIGH)
    sent = message.to_service_bus()
    assert sent.application_properties == {"job_type": "sync", "attempt": 1, "priority": "high"}
    parsed = JobMessage.from_body(str(sent))
    assert parsed.priority is Priority.HIGH
    assert parsed.next_copy(2, "retry2").priority is Priority.HIGH
    plain = JobMessage(job_id="j", job_type=JobType.SYNC).to_service_bus()
    assert JobMessage.from_body(str(plain)).priority is Priority.NORMAL
    assert b"priority" not in str(plain).encode()
