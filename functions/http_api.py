"""The HTTP surface: a FastAPI app served by Azure Functions through func.AsgiFunctionApp.

Thin by design: parse and validate, call shared.submission.JobService, map the answer.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from functions.http_admin import create_admin_router
from functions.http_callbacks import CallbackDocument, callback_document, install_callback_schema
from functions.http_errors import (
    PROBLEM_JSON,
    install_error_handlers,
    problem,
    rate_limit_headers,
)
from functions.http_identity import AnyCaller
from functions.http_limits import BodySizeLimit
from functions.http_metrics import create_metrics_router
from functions.http_openapi import install_openapi
from shared.callbacks.policy import AllowEntry
from shared.config import AuthSettings
from shared.jobs import Job, JobRequest, require_job_id
from shared.services import ServicesProvider, build_authenticator
from shared.submission import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LENGTH

API_PREFIX = "/api"
STATUS_POLL_SECONDS = 2

_PROBLEM = {"content": {PROBLEM_JSON: {}}, "description": "RFC 9457 problem document"}


class JobLinks(BaseModel):
    self: str
    result: str | None = None


class JobError(BaseModel):
    code: str
    message: str | None = None


class JobDocument(BaseModel):
    """What GET /api/jobs/{id} returns (and what POST returns on 202/200)."""

    id: str
    type: str
    status: str
    priority: str = "normal"
    attempt: int
    created_at: str
    updated_at: str
    run_at: str | None = None  # a delayed job: not started before this time
    started_at: str | None = None
    finished_at: str | None = None
    result: Any = None
    error: JobError | None = None
    dead_letter_reason: str | None = None
    callback: CallbackDocument | None = None
    links: JobLinks


def job_document(job: Job, base_url: str) -> JobDocument:
    """The status document; links start with `base_url` (the API's origin, or "")."""
    self_url = f"{base_url}{API_PREFIX}/jobs/{job.id}"
    error = None
    if job.error_code or job.error_message:
        error = JobError(code=job.error_code or "error", message=job.error_message)
    return JobDocument(
        id=job.id,
        type=job.type.value,
        status=job.status.value,
        priority=job.priority.value,
        attempt=job.attempt,
        created_at=job.created_at.isoformat(),
        updated_at=job.updated_at.isoformat(),
        run_at=job.run_at.isoformat() if job.run_at else None,
        started_at=job.started_at.isoformat() if job.started_at else None,
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        result=job.result,
        error=error,
        dead_letter_reason=job.dead_letter_reason,
        callback=callback_document(job),
        links=JobLinks(
            self=self_url, result=f"{self_url}/result" if job.result_is_external else None
        ),
    )


def job_document_bytes(job: Job, base_url: str) -> bytes:
    """The document as GET /api/jobs/{id} sends it (what a completion callback POSTs)."""
    body = job_document(job, base_url).model_dump(mode="json")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def known_job_id(job_id: str) -> str:
    """Refuse malformed ids before any I/O, so they get a 404 even when Storage is down."""
    require_job_id(job_id)
    return job_id


JobId = Annotated[str, Depends(known_job_id)]


def create_api(
    provider: ServicesProvider,
    *,
    max_request_bytes: int,
    auth: AuthSettings,
    sync_targets: Mapping[str, str] | None = None,
    callback_hosts: Sequence[AllowEntry] = (),
    max_delay_seconds: float | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Clients are built on first use; the ASGI shutdown (sent by the Functions ASGI
        # wrapper, or by devtools/host.py after its triggers drained) closes them.
        yield
        await provider.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title="Conveyor",
        version="0.1.0",
        summary="Serverless jobs on Azure: submit, track, cancel.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    install_error_handlers(app)
    install_openapi(app, sync_targets or {}, max_delay_seconds)
    install_callback_schema(app, callback_hosts)
    app.state.authenticator = build_authenticator(auth, provider)

    def document(request: Request, job: Job) -> JobDocument:
        return job_document(job, str(request.base_url).rstrip("/"))

    def job_response(
        request: Request, job: Job, status_code: int, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        doc = document(request, job)
        headers = {**(headers or {}), "Location": doc.links.self}
        if not job.status.is_terminal:
            headers["Retry-After"] = str(STATUS_POLL_SECONDS)
        return JSONResponse(doc.model_dump(mode="json"), status_code=status_code, headers=headers)

    @app.post(
        f"{API_PREFIX}/jobs",
        status_code=202,
        response_model=JobDocument,
        responses={
            200: {"model": JobDocument, "description": "Idempotent replay: the earlier job"},
            400: _PROBLEM,
            409: _PROBLEM,
            413: _PROBLEM,
            422: _PROBLEM,
            429: {**_PROBLEM, "description": "Over the caller's rate limit; see Retry-After"},
            503: _PROBLEM,
        },
        summary="Submit a job",
    )
    async def submit_job(
        request: Request,
        who: AnyCaller,
        job: Annotated[JobRequest, Body()],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="Makes a retried submit safe: the same key and body give the "
                "same job (200) instead of a new one. 1 to 255 printable ASCII characters.",
            ),
        ] = None,
    ) -> Response:
        services = await provider.get()
        submitted = await services.jobs.submit(job, caller=who, idempotency_key=idempotency_key)
        rate = submitted.rate
        headers = None
        if rate is not None:
            headers = rate_limit_headers(
                rate.limit, rate.remaining, rate.reset_seconds, rate.window_seconds
            )
        return job_response(request, submitted.job, 202 if submitted.created else 200, headers)

    @app.get(
        f"{API_PREFIX}/jobs/{{job_id}}",
        response_model=JobDocument,
        responses={404: _PROBLEM, 503: _PROBLEM},
        summary="Get a job's status",
    )
    async def get_job(request: Request, job_id: JobId, who: AnyCaller) -> Response:
        services = await provider.get()
        return job_response(request, await services.jobs.get(job_id, who), 200)

    @app.get(
        f"{API_PREFIX}/jobs/{{job_id}}/result",
        responses={404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
        summary="Get a finished job's result (also when it is too large to inline)",
    )
    async def get_job_result(request: Request, job_id: JobId, who: AnyCaller) -> Response:
        services = await provider.get()
        job = await services.jobs.get(job_id, who)
        if job.result is None and job.result_ref is None:
            return problem(
                409,
                "No result yet",
                f"job {job.id} is {job.status.value} and has no result",
                code="no_result",
                instance=request.url.path,
            )
        return JSONResponse({"id": job.id, "result": await services.store.load_result(job)})

    @app.post(
        f"{API_PREFIX}/jobs/{{job_id}}/cancel",
        response_model=JobDocument,
        responses={404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
        summary="Cancel a job that has not finished (it stays readable, status cancelled)",
    )
    async def cancel_job(request: Request, job_id: JobId, who: AnyCaller) -> Response:
        services = await provider.get()
        return job_response(request, await services.jobs.cancel(job_id, who), 200)

    @app.delete(
        f"{API_PREFIX}/jobs/{{job_id}}",
        status_code=204,
        response_class=Response,
        responses={404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
        summary="Delete a finished job (its status, input and result); later reads get 404",
    )
    async def delete_job(job_id: JobId, who: AnyCaller) -> Response:
        services = await provider.get()
        await services.jobs.delete(job_id, who)
        return Response(status_code=204)

    @app.get(f"{API_PREFIX}/health", summary="Health of the API and its dependencies")
    async def health() -> Response:
        try:
            current = await provider.get()
        except Exception as exc:
            return JSONResponse(
                {
                    "status": "unhealthy",
                    "dependencies": {"startup": {"healthy": False, "detail": str(exc)}},
                },
                status_code=503,
            )
        report = await current.health.check()
        body = {
            "status": "healthy" if report.healthy else "unhealthy",
            "dependencies": {
                d.name: {"healthy": d.healthy, "detail": d.detail, "latency_ms": d.latency_ms}
                for d in report.dependencies
            },
            # Messages per queue (null: the management API did not answer just now).
            "queues": {
                name: None if depth is None else depth.as_dict()
                for name, depth in report.queues.items()
            },
        }
        return JSONResponse(body, status_code=200 if report.healthy else 503)

    # After the job routes: requests are matched against routes in order, and most are jobs.
    app.include_router(create_admin_router(provider))
    app.include_router(create_metrics_router())
    return app
