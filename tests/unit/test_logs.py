"""The job log fields and the JSON-lines format (shared/logs.py)."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from shared.jobs import Job, JobStatus, JobType, utcnow
from shared.logs import JOB_FIELDS, JsonLinesFormatter, job_fields


def a_job(**changes) -> Job:
    now = utcnow()
    values = {
        "id": "6f1c1f4e-0000-4000-8000-000000000001",
        "type": JobType.EMBED,
        "status": JobStatus.RUNNING,
        "owner": "team-a",
        "created_at": now,
        "updated_at": now,
        "input": {"texts": ["private words"]},
        "attempt": 2,
    }
    return Job(**{**values, **changes})


def test_job_fields_name_the_job_and_never_its_input():
    fields = job_fields(a_job(), outcome="running")
    assert fields == {
        "job_id": "6f1c1f4e-0000-4000-8000-000000000001",
        "type": "embed",
        "attempt": 2,
        "owner": "team-a",
        "outcome": "running",
    }
    assert tuple(fields) == JOB_FIELDS


def test_a_delivery_of_another_attempt_and_extra_fields():
    fields = job_fields(a_job(), attempt=3, outcome="retrying", error_code="timeout", reason=None)
    assert fields["attempt"] == 3
    assert fields["error_code"] == "timeout"
    assert "reason" not in fields
    assert job_fields(outcome="dead_lettered", reason="BadMessage") == {
        "outcome": "dead_lettered",
        "reason": "BadMessage",
    }


def logger_writing_json() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    logger = logging.getLogger(f"test.json.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, stream


def test_json_lines_are_one_object_per_line_with_the_job_fields():
    logger, stream = logger_writing_json()
    job = a_job()
    logger.info("job %s running\nsecond line", job.id, extra=job_fields(job, outcome="running"))
    logger.warning("plain line")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra=job_fields(job, outcome="retrying", delay_seconds=1.5))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # newlines inside messages and tracebacks stay escaped
    first, plain, failed = (json.loads(line) for line in lines)
    assert first["message"] == f"job {job.id} running\nsecond line"
    assert first["level"] == "INFO"
    assert {k: first[k] for k in JOB_FIELDS} == job_fields(job, outcome="running")
    assert "job_id" not in plain
    assert failed["delay_seconds"] == 1.5
    assert "ValueError: boom" in failed["exception"]
    assert "private words" not in stream.getvalue()


def test_json_lines_carry_the_active_trace_id():
    logger, stream = logger_writing_json()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("process sync") as span:
        logger.info("inside")
    entry = json.loads(stream.getvalue())
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
