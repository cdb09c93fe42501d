"""shared/metrics.py on the real OpenTelemetry SDK, read through the Prometheus output."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from shared import metrics
from shared.jobs import Job, JobStatus, JobType, utcnow


def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.prometheus_text()[0].decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def finished(status: JobStatus, **changes) -> Job:
    now = utcnow()
    return Job(
        id="j",
        type=JobType.EMBED,
        status=status,
        owner="team-u",
        created_at=now - timedelta(seconds=8),
        updated_at=now,
        started_at=now - timedelta(seconds=2),
        finished_at=now,
        attempt=1,
        **changes,
    )


def test_terminal_rows_count_once_each_by_status_with_run_time_and_latency():
    before = scrape()
    metrics.job_finished(finished(JobStatus.SUCCEEDED, result={"usage": {"total_tokens": 7}}))
    metrics.job_finished(finished(JobStatus.DEAD_LETTERED, dead_letter_reason="BadMessage"))
    metrics.job_finished(finished(JobStatus.FAILED, error_code="stuck"))
    metrics.job_finished(finished(JobStatus.CANCELLED))
    metrics.job_retried(
        replace(finished(JobStatus.RETRYING, error_code="timeout"), finished_at=None)
    )
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("conveyor_jobs_completed_total", type="embed") == 1
    assert moved("conveyor_jobs_dead_lettered_total", type="embed", reason="BadMessage") == 1
    assert moved("conveyor_jobs_failed_total", type="embed", reason="stuck") == 1
    assert moved("conveyor_jobs_retried_total", type="embed", reason="timeout") == 1
    assert moved("conveyor_usage_tokens_total", type="embed", owner="team-u") == 7
    assert moved("conveyor_job_latency_seconds_count", type="embed") == 3  # not cancelled
    assert moved("conveyor_job_latency_seconds_sum", type="embed", status="succeeded") == 8
    assert moved("conveyor_job_run_time_seconds_count", type="embed") == 4  # + the retried one
    assert moved("conveyor_job_run_time_seconds_sum", type="embed", status="succeeded") == 2


def test_queue_depths_come_from_the_registered_callback():
    depths = {"sync": (3, 1), "embed": (0, 0)}
    metrics.observe_queue_depths(lambda: depths)
    found = scrape()
    assert value(found, "conveyor_queue_messages", queue="sync", state="active") == 3
    assert value(found, "conveyor_queue_messages", queue="sync", state="dead_letter") == 1
    depths["sync"] = (5, 2)
    assert value(scrape(), "conveyor_queue_messages", queue="sync", state="active") == 5
