"""Structured job logs: the fields every log line about a job carries, and a JSON-lines format.

A log call passes `extra=job_fields(job, outcome=...)`. Python's logging puts each key on the
LogRecord; the OpenTelemetry logging handler that azure-monitor-opentelemetry installs turns
every non-standard LogRecord attribute into a log attribute, and the Azure Monitor exporter
writes those as the trace's `customDimensions`. Locally `JsonLinesFormatter` writes the same
keys as one JSON object per line (LOG_FORMAT=json).

Never put a job's input or result in these fields (nor in the message): they are the caller's
data, and logs are kept and read more widely than the jobs table.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from shared.jobs import Job

# The keys of job_fields, in the order the JSON lines show them.
JOB_FIELDS = ("job_id", "type", "attempt", "owner", "outcome")

# Attributes every LogRecord has: anything else on a record came in through `extra`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def job_fields(
    job: Job | None = None,
    *,
    outcome: str,
    job_id: str | None = None,
    attempt: int | None = None,
    **more: str | int | float | None,
) -> dict[str, Any]:
    """The `extra` of a log line about a job: job_id, type, attempt, owner, outcome.

    `job` is the row; `attempt` overrides the row's, for a delivery of another attempt, and
    `job_id` names a job whose row is not at hand. `more` adds small scalar fields (reason,
    error_code, delay_seconds); fields that are None are left out.
    """
    fields: dict[str, Any] = {
        "job_id": job_id,
        "type": None,
        "attempt": attempt,
        "owner": None,
        "outcome": outcome,
    }
    if job is not None:
        fields.update(job_id=job_id or job.id, type=job.type.value, owner=job.owner)
        fields["attempt"] = job.attempt if attempt is None else attempt
    fields.update(more)
    return {key: value for key, value in fields.items() if value is not None}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the `extra` fields, the
    active trace id (to find the same lines in Application Insights), and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = trace.format_trace_id(context.trace_id)
            entry["span_id"] = trace.format_span_id(context.span_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
