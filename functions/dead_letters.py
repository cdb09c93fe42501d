"""Timer trigger that keeps job rows true to the dead-letter queues and re-drives stuck jobs.

A timer that PEEKS the DLQs (no lock, nothing consumed) rather than a trigger on them: a DLQ
trigger would have to settle each dead letter, and completing it would delete the very
message operators need to inspect and replay.
"""

import logging

import azure.functions as func

from shared.services import ServicesProvider

log = logging.getLogger(__name__)

MAINTENANCE_SCHEDULE = "0 */1 * * * *"  # NCRONTAB with seconds: every minute


def create_blueprint(provider: ServicesProvider) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("maintenance")
    @bp.timer_trigger(
        arg_name="timer", schedule=MAINTENANCE_SCHEDULE, run_on_startup=True, use_monitor=False
    )
    async def maintenance(timer: func.TimerRequest) -> None:
        await run_maintenance(provider)

    return bp


async def run_maintenance(provider: ServicesProvider) -> None:
    services = await provider.get()
    for queue_name in services.dead_letters.queue_names.values():
        changed = await services.dead_letters.reconcile(queue_name)
        if changed:
            log.warning("%d job rows marked dead_lettered from %s's DLQ", changed, queue_name)
    swept = await services.sweeper.sweep()
    if swept:
        log.warning("re-drove %d stuck jobs: %s", len(swept), ", ".join(swept))
