"""The maintenance pass: keep job rows true to the dead-letter queues, re-drive stuck jobs
and callbacks whose delivery message was lost.

One function, called by the timer trigger (functions/maintenance.py), the admin route
(POST /api/admin/maintenance) and the operator CLI (`python -m devtools.cli maintenance`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from shared.backpressure import QueueDepths
from shared.callbacks.notify import CallbackStore
from shared.dead_letters import DeadLetterTools
from shared.store import JobStore
from shared.sweeper import StuckJobSweeper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaintenanceReport:
    rows_marked_dead_lettered: dict[str, int]  # queue -> rows moved to dead_lettered
    stuck_jobs_redriven: list[str]  # job ids
    callbacks_redriven: list[str] = field(default_factory=list)  # job ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_marked_dead_lettered": self.rows_marked_dead_lettered,
            "stuck_jobs_redriven": self.stuck_jobs_redriven,
            "callbacks_redriven": self.callbacks_redriven,
        }


async def run_maintenance(
    dead_letters: DeadLetterTools,
    sweeper: StuckJobSweeper,
    store: JobStore | None = None,
    depths: QueueDepths | None = None,
) -> MaintenanceReport:
    changed: dict[str, int] = {}
    for queue_name in dead_letters.job_queue_names:
        changed[queue_name] = await dead_letters.reconcile(queue_name)
        if changed[queue_name]:
            log.warning(
                "%d job rows marked dead_lettered from %s's DLQ", changed[queue_name], queue_name
            )
    if depths is not None:
        await depths.all()  # keeps the queue-depth gauge current between submits
    swept = await sweeper.sweep()
    if swept:
        log.warning("re-drove %d stuck jobs: %s", len(swept), ", ".join(swept))
    callbacks = await store.redrive_pending() if isinstance(store, CallbackStore) else []
    if callbacks:
        log.warning("re-sent %d lost callbacks: %s", len(callbacks), ", ".join(callbacks))
    return MaintenanceReport(changed, swept, callbacks)
