"""Admin routes for the intake switches: pause or resume submits of one job type.

    GET /api/admin/intake          every type's switch
    GET /api/admin/intake/{type}   one type's switch
    PUT /api/admin/intake/{type}   {"paused": true, "reason": "..."} (audited)

Every instance sees a change within INTAKE_CACHE_SECONDS (shared/intake.py).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.http_identity import AdminCaller
from shared.jobs import JobType
from shared.services import ServicesProvider

Audit = Callable[..., Awaitable[None]]
_PROBLEM = {"content": {"application/problem+json": {}}, "description": "problem document"}


class IntakeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paused: bool = Field(description="true: submits of this type get 503 until resumed.")
    reason: str | None = Field(
        default=None, max_length=500, description="Shown to callers whose submits are refused."
    )


class IntakeSwitchDocument(BaseModel):
    type: str
    paused: bool
    reason: str | None = None
    changed_by: str | None = None
    changed_at: str | None = None


class IntakeDocument(BaseModel):
    switches: list[IntakeSwitchDocument]
    propagation_seconds: float = Field(description="How soon every instance sees a change.")


def create_intake_routes(provider: ServicesProvider, audit: Audit) -> APIRouter:
    router = APIRouter(prefix="/intake")

    async def document(switch_dicts: list[dict[str, Any]]) -> IntakeDocument:
        services = await provider.get()
        return IntakeDocument(
            switches=[IntakeSwitchDocument(**d) for d in switch_dicts],
            propagation_seconds=services.intake.cache_seconds,
        )

    @router.get("", summary="Whether submits of each job type are paused")
    async def show_intake(who: AdminCaller) -> IntakeDocument:
        services = await provider.get()
        await audit(who, "intake.show", "*")
        return await document([s.as_dict() for s in await services.intake.all()])

    @router.get("/{job_type}", summary="Whether submits of one job type are paused")
    async def show_intake_of(job_type: JobType, who: AdminCaller) -> IntakeSwitchDocument:
        services = await provider.get()
        await audit(who, "intake.show", job_type.value)
        switches = {s.job_type: s for s in await services.intake.all()}
        return IntakeSwitchDocument(**switches[job_type].as_dict())

    @router.put(
        "/{job_type}",
        operation_id="set_intake",
        responses={503: _PROBLEM},
        summary="Pause or resume submits of one job type (no redeploy)",
    )
    async def set_intake(
        job_type: JobType, body: IntakeChange, who: AdminCaller
    ) -> IntakeSwitchDocument:
        services = await provider.get()
        action = "intake.pause" if body.paused else "intake.resume"
        await audit(who, action, job_type.value, reason=body.reason)  # before it acts
        switch = await services.intake.set(
            job_type, paused=body.paused, reason=body.reason, actor=who.owner
        )
        return IntakeSwitchDocument(**switch.as_dict())

    return router
