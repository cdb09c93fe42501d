"""Schemathesis hooks for tests/test_api_fuzz.py (loaded by the schemathesis CLI).

A job's `run_at` is a date-time that must lie between now and MAX_DELAY_SECONDS ahead: the
OpenAPI document says so in words, since JSON Schema cannot bound a date-time relative to
the present. Generated date-times are drawn from that window (in assorted time zones), so
schema-valid requests stay valid; the negative phases still send malformed ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

# Within the default 7-day horizon, leaving room for the time a case waits to be sent.
EARLIEST_SECONDS = 60
LATEST_SECONDS = 6 * 86400


def _upcoming(seconds: int, offset_minutes: int) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    return (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(zone).isoformat()


schemathesis.openapi.format(
    "date-time",
    st.builds(
        _upcoming,
        st.integers(EARLIEST_SECONDS, LATEST_SECONDS),
        st.integers(-12 * 60, 14 * 60).map(lambda minutes: minutes - minutes % 15),
    ),
)
