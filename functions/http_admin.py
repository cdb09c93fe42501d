"""Operator routes: dead letters, maintenance, API keys and the audit log. Admins only;
every call is written to the audit log with the caller."""

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from functions.http_admin_intake import create_intake_routes
from functions.http_admin_keys import create_key_routes
from functions.http_callbacks import callback_document
from functions.http_identity import AdminCaller
from shared.auth.caller import Caller
from shared.dead_letter_records import Selection
from shared.jobs import require_job_id
from shared.maintenance import run_maintenance
from shared.services import ServicesProvider

ADMIN_PREFIX = "/api/admin"
_PROBLEM = {"content": {"application/problem+json": {}}, "description": "problem document"}


class DeadLetterSelection(BaseModel):
    """Which dead letters to act on: all (up to `limit`), listed sequence numbers, or a reason."""

    model_config = ConfigDict(extra="forbid")
    sequence_numbers: list[int] | None = Field(default=None, min_length=1, max_length=1000)
    reason: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)

    def selection(self) -> Selection:
        numbers = None if self.sequence_numbers is None else frozenset(self.sequence_numbers)
        return Selection(sequence_numbers=numbers, reason=self.reason, limit=self.limit)


class PurgeRequest(DeadLetterSelection):
    confirm: Literal[True] = Field(description="Must be true: purging cannot be undone.")


def _iso_date(value: Any) -> Any:
    """Only YYYY-MM-DD: pydantic would otherwise read "0" as a Unix time."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date YYYY-MM-DD")
    return value


AuditDay = Annotated[
    date | None, BeforeValidator(_iso_date), Query(description="YYYY-MM-DD (UTC); default today")
]


def create_admin_router(provider: ServicesProvider) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])
    Limit = Annotated[int, Query(ge=1, le=1000)]

    async def audit(who: Caller, action: str, target: str, **detail: Any) -> None:
        services = await provider.get()
        await services.audit.record(who.owner, action, target, credential=who.credential, **detail)

    @router.get("/dead-letters", summary="Dead letters of every queue, grouped by reason")
    async def dead_letter_summary(who: AdminCaller, limit: Limit = 100) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "dead_letters.summary", "*")
        grouped = await services.dead_letters.summary(limit=limit)
        return {
            queue: {
                reason: {"count": len(entries), "messages": [e.as_dict() for e in entries]}
                for reason, entries in by_reason.items()
            }
            for queue, by_reason in grouped.items()
        }

    @router.get(
        "/dead-letters/{queue}", responses={404: _PROBLEM}, summary="Dead letters of one queue"
    )
    async def list_dead_letters(queue: str, who: AdminCaller, limit: Limit = 100) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "dead_letters.list", queue)
        entries = await services.dead_letters.peek(queue, limit=limit)
        return {"queue": queue, "count": len(entries), "messages": [e.as_dict() for e in entries]}

    @router.get(
        "/dead-letters/{queue}/{sequence_number:int}",
        responses={404: _PROBLEM},
        summary="One dead letter, with its body",
    )
    async def show_dead_letter(
        queue: str, sequence_number: int, who: AdminCaller
    ) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "dead_letters.show", f"{queue}/{sequence_number}")
        return (await services.dead_letters.show(queue, sequence_number)).as_dict()

    @router.post(
        "/dead-letters/{queue}/replay",
        responses={404: _PROBLEM, 422: _PROBLEM, 503: _PROBLEM},
        summary="Send dead letters again (fresh copy first, then the dead letter goes)",
        description="A job goes back to its queue as a fresh attempt 1 (its row to queued); a "
        "callback delivery goes back to the callbacks queue, and its job is left as it is.",
    )
    async def replay_dead_letters(
        queue: str, body: DeadLetterSelection, who: AdminCaller
    ) -> dict[str, Any]:
        services = await provider.get()
        report = await services.dead_letters.replay(queue, body.selection(), actor=who.owner)
        return report.as_dict()

    @router.post(
        "/dead-letters/{queue}/purge",
        responses={404: _PROBLEM, 422: _PROBLEM, 503: _PROBLEM},
        summary="Delete dead letters for good (needs confirm: true)",
    )
    async def purge_dead_letters(
        queue: str, body: PurgeRequest, who: AdminCaller
    ) -> dict[str, Any]:
        services = await provider.get()
        report = await services.dead_letters.purge(
            queue, body.selection(), actor=who.owner, confirm=body.confirm
        )
        return report.as_dict()

    @router.post(
        "/jobs/{job_id}/callback/redeliver",
        status_code=202,
        responses={404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
        summary="Deliver a finished job's callback again, from its first attempt",
        description="For a callback that was given up (or delivered and wanted again): a new "
        "round of attempts with the job's current status document. The job is not changed. "
        "409 when the job has no callback_url, has not finished, or its callback is still "
        "being delivered.",
    )
    async def redeliver_callback(job_id: str, who: AdminCaller) -> dict[str, Any]:
        require_job_id(job_id)
        services = await provider.get()
        await audit(who, "callback.redeliver", job_id)
        job, queued = await services.store.start_over(job_id)
        document = callback_document(job)
        return {
            "job_id": job.id,
            "queued": queued,
            "callback": None if document is None else document.model_dump(mode="json"),
        }

    @router.post("/maintenance", summary="Reconcile rows with the DLQs and re-drive stuck jobs")
    async def maintenance(who: AdminCaller) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "maintenance", "*")
        report = await run_maintenance(
            services.dead_letters, services.sweeper, services.store, services.queue_depths
        )
        return report.as_dict()

    @router.get("/audit", summary="The audit log of one UTC day (default: today)")
    async def audit_log(who: AdminCaller, day: AuditDay = None) -> dict[str, Any]:
        services = await provider.get()
        await audit(who, "audit.read", str(day or "today"))
        entries = await services.audit.entries_for_day(day)
        return {
            "entries": [
                {
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in entries
            ]
        }

    router.include_router(create_key_routes(provider, audit))
    router.include_router(create_intake_routes(provider, audit))
    return router
