"""Job metrics as OpenTelemetry instruments; the core calls the small functions below.

Every measurement goes to two MeterProviders:
- the global one, which whoever exports this process's telemetry installed: the Azure
  Monitor distro set up by shared.telemetry, or by the Functions Python worker
  (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`). So the metrics go out with the traces,
  through that one exporter; without Application Insights the global provider is a no-op.
- a private one with only a Prometheus reader, pulled by `prometheus_text()` for
  `GET /api/metrics`. It exports nothing by itself, and it works whoever set up the global
  provider (OpenTelemetry allows one, and the worker may have taken it before the app loads).

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

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from shared.jobs import Job, JobStatus, JobType

# Seconds: a job runs from well under a second (sync) to minutes (a long summary).
_COUNTED = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD_LETTERED, JobStatus.FAILED})
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class _Instruments:
    """The instruments, made on one meter."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.submitted = meter.create_counter(
            "conveyor.jobs.submitted", unit="{job}", description="Jobs accepted by POST /api/jobs"
        )
        self.completed = meter.create_counter(
            "conveyor.jobs.completed", unit="{job}", description="Jobs that succeeded"
        )
        self.failed = meter.create_counter(
            "conveyor.jobs.failed", unit="{job}", description="Jobs that ended failed"
        )
        self.retried = meter.create_counter(
            "conveyor.jobs.retried", unit="{job}", description="Failed attempts retried"
        )
        self.dead_lettered = meter.create_counter(
            "conveyor.jobs.dead_lettered", unit="{job}", description="Jobs moved to a DLQ"
        )
        self.run_time = meter.create_histogram(
            "conveyor.job.run_time",
            unit="s",
            description="One attempt, from running to its recorded outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.latency = meter.create_histogram(
            "conveyor.job.latency",
            unit="s",
            description="Submitted to a terminal status",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_counter(
            "conveyor.usage.tokens", unit="{token}", description="AI tokens used, per owner"
        )


@functools.cache
def _private() -> tuple[Any, tuple[_Instruments, _Instruments]]:
    """The private provider's registry and the instruments on both providers, made on first
    use: the OpenTelemetry SDK and the Prometheus exporter are slow to import."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()  # ours alone: no process collectors mixed in
    reader = PrometheusMetricReader(
        disable_target_info=True, scope_info_enabled=False, registry=registry
    )
    prometheus = MeterProvider(metric_readers=[reader])
    both = (
        _Instruments(metrics.get_meter("conveyor")),
        _Instruments(prometheus.get_meter("conveyor")),
    )
    return registry, both


def _both() -> tuple[_Instruments, _Instruments]:
    return _private()[1]


def job_submitted(job_type: JobType, owner: str) -> None:
    for instruments in _both():
        instruments.submitted.add(1, {"type": job_type.value, "owner": owner})


def job_retried(job: Job) -> None:
    """A failed attempt whose retry is scheduled (`job` is the row, now `retrying`)."""
    attributes = {"type": job.type.value, "reason": job.error_code or "unknown"}
    for instruments in _both():
        instruments.retried.add(1, attributes)
    _record_run_time(job)


def job_finished(job: Job) -> None:
    """A job reached a terminal status (`job` is the row as stored). Call once per job."""
    if job.status not in _COUNTED:
        return  # cancelled: neither a result nor a failure
    job_type = job.type.value
    tokens = _total_tokens(job.result)
    for instruments in _both():
        if job.status is JobStatus.SUCCEEDED:
            instruments.completed.add(1, {"type": job_type})
            if tokens:
                instruments.tokens.add(tokens, {"type": job_type, "owner": job.owner})
        elif job.status is JobStatus.DEAD_LETTERED:
            reason = job.dead_letter_reason or "unknown"
            instruments.dead_lettered.add(1, {"type": job_type, "reason": reason})
        else:
            instruments.failed.add(1, {"type": job_type, "reason": job.error_code or "unknown"})
    _record_run_time(job)
    end = job.finished_at or job.updated_at
    latency = max(0.0, (end - job.created_at).total_seconds())
    for instruments in _both():
        instruments.latency.record(latency, {"type": job_type, "status": job.status.value})


_depth_source: list[Callable[[], Mapping[str, tuple[int, int]]]] = []


def observe_queue_depths(callback: Callable[[], Mapping[str, tuple[int, int]]]) -> None:
    """Publish queue depths as the gauge conveyor.queue.messages {queue, state}.

    `callback` returns {queue name: (active messages, dead-lettered messages)}. It runs on
    every collection (the exporter's thread, or a /api/metrics request), so it must return
    what it already knows, without I/O; a source that polls Service Bus runtime properties
    keeps the last answer for it. The gauge is registered on the first call; a later call
    (new clients in the same process) replaces the source.
    """
    first = not _depth_source
    _depth_source[:] = [callback]
    if not first:
        return

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        for queue, (active, dead_letter) in _depth_source[0]().items():
            yield Observation(active, {"queue": queue, "state": "active"})
            yield Observation(dead_letter, {"queue": queue, "state": "dead_letter"})

    for instruments in _both():
        instruments.meter.create_observable_gauge(
            "conveyor.queue.messages",
            callbacks=[observe],
            unit="{message}",
            description="Messages in each queue (active) and its dead-letter queue",
        )


def prometheus_text() -> tuple[bytes, str]:
    """The current values in the Prometheus text format, and its content type: 0.0.4, which
    Prometheus 2 and 3 both parse (every name here is a classic one, so the text is the same)."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

    return generate_latest(_private()[0]), CONTENT_TYPE_PLAIN_0_0_4


def run_seconds(job: Job) -> float | None:
    """How long the row's current attempt ran: started to finished (or last updated)."""
    if job.started_at is None:
        return None
    end = job.finished_at or job.updated_at
    return round(max(0.0, (end - job.started_at).total_seconds()), 3)


def _record_run_time(job: Job) -> None:
    seconds = run_seconds(job)
    if seconds is not None:
        for instruments in _both():
            instruments.run_time.record(
                seconds, {"type": job.type.value, "status": job.status.value}
            )


def _total_tokens(result: Any) -> int:
    """Tokens the summarize and embed handlers report in their result's `usage`."""
    usage = result.get("usage") if isinstance(result, dict) else None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) and total > 0 else 0
