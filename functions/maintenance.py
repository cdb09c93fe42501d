"""Timer trigger for the maintenance pass (shared/maintenance.py): job rows kept true to the
dead-letter queues, stuck jobs re-driven.

A timer that PEEKS the DLQs (no lock, nothing consumed) rather than a trigger on them: a DLQ
trigger would have to settle each dead letter, and completing it would delete the very
message operators need to inspect and replay.
"""

import azure.functions as func

from shared.maintenance import run_maintenance
from shared.services import ServicesProvider

MAINTENANCE_SCHEDULE = "0 */1 * * * *"  # NCRONTAB with seconds: every minute


def create_blueprint(provider: ServicesProvider) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("maintenance")
    @bp.timer_trigger(
        arg_name="timer", schedule=MAINTENANCE_SCHEDULE, run_on_startup=True, use_monitor=False
    )
    async def maintenance(timer: func.TimerRequest) -> None:
        services = await provider.get()
        await run_maintenance(
            services.dead_letters, services.sweeper, services.store, services.queue_depths
        )

    return bp
