"""When a submitted job may start: now, or later (`run_at` / `delay_seconds`).

A delayed job is sent as a scheduled Service Bus message and its row says `scheduled` until a
worker picks it up. The time is rounded up to the millisecond: Service Bus (AMQP) keeps
scheduled enqueue times in milliseconds, so the stored `run_at` is exactly the time the
message becomes visible and a job never starts before its `run_at`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from shared.errors import FieldProblem, ValidationFailed

# A run_at this far in the past still runs (now): the caller's clock may be a little behind.
PAST_TOLERANCE_SECONDS = 30.0


def due_time(
    run_at: datetime | None,
    delay_seconds: float | None,
    *,
    now: datetime,
    max_delay_seconds: float,
    both_given: bool = False,
) -> datetime | None:
    """The time a job's message is scheduled for; None to send it now.

    Raises ValidationFailed (422) naming the field: both given (even as null, as the
    OpenAPI document says), a time further ahead than `max_delay_seconds`, or one in the
    past beyond PAST_TOLERANCE_SECONDS."""
    if both_given or (run_at is not None and delay_seconds is not None):
        message = "give run_at or delay_seconds, not both"
        raise ValidationFailed(
            message,
            [FieldProblem("run_at", message), FieldProblem("delay_seconds", message)],
        )
    horizon = _describe_seconds(max_delay_seconds)
    if delay_seconds is not None:
        if delay_seconds > max_delay_seconds:
            raise _invalid(
                "delay_seconds", f"is {delay_seconds:g}; at most {max_delay_seconds:g} ({horizon})"
            )
        due = now + timedelta(seconds=delay_seconds)
    elif run_at is not None:
        # Checked before converting: a run_at in year 1 may have no UTC time to convert to.
        ahead = (run_at - now).total_seconds()
        if ahead > max_delay_seconds:
            raise _invalid(
                "run_at",
                f"{run_at.isoformat()} is {ahead:.0f} s from now; at most "
                f"{max_delay_seconds:g} s ({horizon}) ahead",
            )
        if ahead < -PAST_TOLERANCE_SECONDS:
            raise _invalid(
                "run_at",
                f"{run_at.isoformat()} is {-ahead:.0f} s in the past; give a time from now on "
                "(or leave it out to run now)",
            )
        due = run_at.astimezone(UTC)
    else:
        return None
    return _ceil_to_millisecond(due) if due > now else None


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"{field} {problem}", [FieldProblem(field, problem)])


def _ceil_to_millisecond(moment: datetime) -> datetime:
    if moment.microsecond % 1000 == 0:
        return moment
    millis = math.ceil(moment.microsecond / 1000)
    base = moment.replace(microsecond=0)
    return base + timedelta(milliseconds=millis)


def _describe_seconds(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} hours"
    return f"{seconds:g} s"
