"""Job metrics as OpenTelemetry instruments; the core calls the small functions below.

One MeterProvider per process. With Application Insights configured it is the one
`configure_azure_monitor` builds (shared.telemetry passes it `azure_monitor_options()`), so
the instruments are exported with the traces; without it `install()` builds one. Either way
the same provider also feeds a Prometheus reader, which `prometheus_text()` renders for
`GET /api/metrics`. That reader is pulled, never pushed: it is not a second exporter.

Counts are per process (per Function App instance in Azure): Azure Monitor holds the sum.

Names (OpenTelemetry -> Prometheus):
- conveyor.jobs.submitted {type, owner}           -> conveyor_jobs_submitted_total
- conveyor.jobs.completed {type}                  -> conveyor_jobs_completed_total
- conveyor.jobs.failed {type, reason}             -> conveyor_jobs_failed_total
- conveyor.jobs.retried {type, reason}            -> conveyor_jobs_retried_total
- conveyor.jobs.dead_lettered {type, reason}      -> conveyor_jobs_dead_lettered_total
- conveyor.job.run_time {type, status} seconds    -> conveyor_job_run_time_seconds
- conveyor.job.latency {type, status} seconds     -> conveyor_job_latency_seconds
- conveyor.usage.tokens {type, owner}             -> conveyor_usage_tokens_total
- conveyor.queue.messages {queue, state}          -> conveyor_queue_messages
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from shared.jobs import Job, JobStatus, JobType

# Seconds: a job runs from well under a second (sync) to minutes (a long summary).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

_meter = metrics.get_meter("conveyor")
_submitted = _meter.create_counter(
    "conveyor.jobs.submitted", unit="{job}", description="Jobs accepted by POST /api/jobs"
)
_completed = _meter.create_counter(
    "conveyor.jobs.completed", unit="{job}", description="Jobs that succeeded"
)
_failed = _meter.create_counter(
    "conveyor.jobs.failed", unit="{job}", description="Jobs that ended failed (not dead-lettered)"
)
_retried = _meter.create_counter(
    "conveyor.jobs.retried", unit="{job}", description="Attempts that failed and were retried"
)
_dead_lettered = _meter.create_counter(
    "conveyor.jobs.dead_lettered", unit="{job}", description="Jobs moved to a dead-letter queue"
)
_run_time = _meter.create_histogram(
    "conveyor.job.run_time",
    unit="s",
    description="One attempt, from running to its recorded outcome",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
)
_latency = _meter.create_histogram(
    "conveyor.job.latency",
    unit="s",
    description="Submitted to a terminal status",
    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
)
_tokens = _meter.create_counter(
    "conveyor.usage.tokens", unit="{token}", description="AI tokens used, per owner"
)

_lock = threading.Lock()
_registry = CollectorRegistry()
_reader: MetricReader | None = None
_provider_set = False


def job_submitted(job_type: JobType, owner: str) -> None:
    _submitted.add(1, {"type": job_type.value, "owner": owner})


def job_retried(job: Job) -> None:
    """A failed attempt whose retry is scheduled (`job` is the row, now `retrying`)."""
    attributes = {"type": job.type.value, "reason": job.error_code or "unknown"}
    _retried.add(1, attributes)
    _record_run_time(job)


def job_finished(job: Job) -> None:
    """A job reached a terminal status (`job` is the row as stored). Call once per job."""
    job_type = job.type.value
    if job.status is JobStatus.SUCCEEDED:
        _completed.add(1, {"type": job_type})
        tokens = _total_tokens(job.result)
        if tokens:
            _tokens.add(tokens, {"type": job_type, "owner": job.owner})
    elif job.status is JobStatus.DEAD_LETTERED:
        reason = job.dead_letter_reason or "unknown"
        _dead_lettered.add(1, {"type": job_type, "reason": reason})
    elif job.status is JobStatus.FAILED:
        _failed.add(1, {"type": job_type, "reason": job.error_code or "unknown"})
    else:
        return  # cancelled: neither a result nor a failure
    _record_run_time(job)
    end = job.finished_at or job.updated_at
    _latency.record(
        max(0.0, (end - job.created_at).total_seconds()),
        {"type": job_type, "status": job.status.value},
    )


def observe_queue_depths(callback: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
    """Publish queue depths as the gauge conveyor.queue.messages {queue, state}.

    `callback` returns {queue name: (active messages, dead-lettered messages)}. It runs on
    every collection (the exporter's thread, or a /api/metrics request), so it must return
    what it already knows, without I/O; a source that polls Service Bus runtime properties
    keeps the last answer for it. Call once per process.
    """

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        for queue, (active, dead_letter) in callback().items():
            yield Observation(active, {"queue": queue, "state": "active"})
            yield Observation(dead_letter, {"queue": queue, "state": "dead_letter"})

    _meter.create_observable_gauge(
        "conveyor.queue.messages",
        callbacks=[observe],
        unit="{message}",
        description="Messages in each queue (active) and its dead-letter queue",
    )


def azure_monitor_options() -> dict[str, Any]:
    """What configure_azure_monitor needs so its MeterProvider also feeds /api/metrics."""
    global _provider_set
    with _lock:
        if _provider_set:
            return {}  # install() ran first: that provider stays (OpenTelemetry allows one)
        _provider_set = True
        return {"metric_readers": [_prometheus_reader()]}


def install() -> None:
    """Without Azure Monitor: a MeterProvider of our own, read only by /api/metrics."""
    global _provider_set
    with _lock:
        if _provider_set:
            return
        _provider_set = True
        metrics.set_meter_provider(MeterProvider(metric_readers=[_prometheus_reader()]))


def prometheus_text() -> tuple[bytes, str]:
    """The current values in the Prometheus text format, and its content type: 0.0.4, which
    Prometheus 2 and 3 both parse (every name here is a classic one, so the text is the same)."""
    install()
    return generate_latest(_registry), CONTENT_TYPE_PLAIN_0_0_4


def _prometheus_reader() -> MetricReader:
    global _reader
    if _reader is None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        _reader = PrometheusMetricReader(
            disable_target_info=True, scope_info_enabled=False, registry=_registry
        )
    return _reader


def run_seconds(job: Job) -> float | None:
    """How long the row's current attempt ran: started to finished (or last updated)."""
    if job.started_at is None:
        return None
    end = job.finished_at or job.updated_at
    return round(max(0.0, (end - job.started_at).total_seconds()), 3)


def _record_run_time(job: Job) -> None:
    seconds = run_seconds(job)
    if seconds is not None:
        _run_time.record(seconds, {"type": job.type.value, "status": job.status.value})


def _total_tokens(result: Any) -> int:
    """Tokens the summarize and embed handlers report in their result's `usage`."""
    usage = result.get("usage") if isinstance(result, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) and total > 0 else 0
