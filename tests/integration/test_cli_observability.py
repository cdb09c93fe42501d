"""The operator CLI's live views, run as a real process against Azurite + the emulator:
`jobs top --once` and the progress bar of `dlq replay`."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.jobs import Job, JobStatus, JobType, new_job_id, utcnow
from tests.integration.helpers import cli
from tests.integration.test_maintenance import dead_lettered_job

pytestmark = pytest.mark.integration


async def a_row(services, job_type: JobType, status: JobStatus, **changes) -> Job:
    now = utcnow()
    job = Job(
        id=new_job_id(),
        type=job_type,
        status=status,
        owner="test",
        created_at=now - timedelta(seconds=10),
        updated_at=now,
        input={"text": "not shown"},
        **changes,
    )
    return await services.store.create(job)


async def test_jobs_top_once_counts_by_status_per_type(services, app_env):
    now = utcnow()
    for seconds in (1.0, 2.0, 3.0, 4.0):
        await a_row(
            services,
            JobType.SUMMARIZE,
            JobStatus.SUCCEEDED,
            attempt=1,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
        )
    await a_row(services, JobType.SUMMARIZE, JobStatus.RUNNING, attempt=1, started_at=now)
    await a_row(services, JobType.SYNC, JobStatus.QUEUED)
    await a_row(
        services,
        JobType.SYNC,
        JobStatus.DEAD_LETTERED,
        attempt=3,
        dead_letter_reason="MaxAttemptsExceeded",
    )
    old = await a_row(services, JobType.EMBED, JobStatus.SUCCEEDED)
    await services.store.update(
        old.id, lambda row: replace(row, updated_at=now - timedelta(days=2))
    )

    shown = cli(app_env, "--json", "jobs", "top", "--once", "--window", "60")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    summarize = view["types"]["summarize"]
    assert summarize["counts"] == {"succeeded": 4, "running": 1}
    assert summarize["p50_seconds"] == pytest.approx(2.0, abs=0.01)
    assert summarize["p95_seconds"] == pytest.approx(4.0, abs=0.01)
    assert view["types"]["sync"]["counts"] == {"queued": 1, "dead_lettered": 1}
    assert view["types"]["embed"]["counts"] == {}  # finished before the window
    assert view["failures"] == [{"type": "sync", "reason": "MaxAttemptsExceeded", "jobs": 1}]

    table = cli(app_env, "jobs", "top", "--once")
    assert table.returncode == 0, table.stderr
    assert "\x1b[" not in table.stdout  # not a terminal: no screen clearing
    summarize_line = next(line for line in table.stdout.splitlines() if line.startswith("summ"))
    # queued, scheduled, running, retrying, succeeded, failed, dead_lettered, cancelled
    assert summarize_line.split()[1:9] == ["0", "0", "1", "0", "4", "0", "0", "0"]
    assert "MaxAttemptsExceeded" in table.stdout


async def test_dlq_replay_shows_a_progress_bar(services, app_env):
    reason = f"Reason{uuid.uuid4().hex[:8]}"
    jobs = [await dead_lettered_job(services, reason) for _ in range(2)]
    replay = cli(app_env, "dlq", "replay", "sync", "--reason", reason)
    assert replay.returncode == 0, replay.stderr
    frames = replay.stderr.splitlines()  # text mode reads each "\r" redraw as a line
    assert frames[-1].startswith(f"replay sync [{'#' * 30}] 2/2, ")
    assert any(f"replay sync [{'#' * 15}{'.' * 15}] 1/2, " in frame for frame in frames)
    assert "replay on sync: 2 done" in replay.stdout
    for job in jobs:
        assert (await services.store.get(job.id)).status is JobStatus.QUEUED
