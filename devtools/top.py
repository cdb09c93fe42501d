"""`jobs top`: the dashboard's figures from the jobs table, for a terminal.

Counts by status per type (every job in flight, and those updated in the window), p50/p95
run time of the jobs that finished in the window, and failures by reason. Queue and
dead-letter depths come from Service Bus and are on the dashboard, not here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.jobs import Job, JobStatus, JobType


@dataclass
class TypeFigures:
    counts: Counter[str] = field(default_factory=Counter)
    run_seconds: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of the run times, None when there are none."""
        if not self.run_seconds:
            return None
        ordered = sorted(self.run_seconds)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Overview:
    since: datetime
    by_type: dict[str, TypeFigures]
    failures: Counter[tuple[str, str]]  # (type, reason) -> jobs

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "types": {
                name: {
                    "counts": dict(figures.counts),
                    "p50_seconds": figures.percentile(50),
                    "p95_seconds": figures.percentile(95),
                }
                for name, figures in self.by_type.items()
            },
            "failures": [
                {"type": job_type, "reason": reason, "jobs": count}
                for (job_type, reason), count in self.failures.most_common()
            ],
        }


def overview(jobs: Iterable[Job], since: datetime) -> Overview:
    by_type: dict[str, TypeFigures] = {t.value: TypeFigures() for t in JobType}
    failures: Counter[tuple[str, str]] = Counter()
    for job in jobs:
        figures = by_type.setdefault(job.type.value, TypeFigures())
        figures.counts[job.status.value] += 1
        if job.status.is_terminal and job.started_at and job.finished_at:
            figures.run_seconds.append((job.finished_at - job.started_at).total_seconds())
        if job.status in (JobStatus.DEAD_LETTERED, JobStatus.FAILED):
            reason = job.dead_letter_reason or job.error_code or "unknown"
            failures[(job.type.value, reason)] += 1
    return Overview(since=since, by_type=by_type, failures=failures)


def render(view: Overview, now: datetime) -> str:
    statuses = [status.value for status in JobStatus]
    width = max(len(s) for s in statuses)
    lines = [
        f"jobs at {now:%Y-%m-%d %H:%M:%S} UTC (finished ones since {view.since:%H:%M:%S})",
        "",
        "type".ljust(10) + "".join(s.rjust(width + 1) for s in statuses) + "     p50     p95",
    ]
    for name, figures in view.by_type.items():
        counts = "".join(str(figures.counts.get(s, 0)).rjust(width + 1) for s in statuses)
        lines.append(
            name.ljust(10)
            + counts
            + _seconds(figures.percentile(50))
            + _seconds(figures.percentile(95))
        )
    lines += ["", "failures by reason:"]
    if not view.failures:
        lines.append("  (none)")
    for (job_type, reason), count in view.failures.most_common():
        lines.append(f"  {job_type:<10} {reason:<28} {count}")
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "       -" if value is None else f"{value:7.2f}s"
