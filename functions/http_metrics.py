"""GET /api/metrics: the job metrics in the Prometheus text format, for scrapers that are
not Azure Monitor. The values are this process's own (one Function App instance). Usage per
owner is in them, so the route needs an administrator, as /api/admin does (a scraper sends
`Authorization: ApiKey <key>`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from functions.http_identity import AdminCaller
from shared import metrics

METRICS_PATH = "/api/metrics"


def create_metrics_router() -> APIRouter:
    router = APIRouter(tags=["admin"])  # the OpenAPI document adds 401 and 403 for the tag

    @router.get(
        METRICS_PATH,
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}
        },
        summary="Job metrics of this instance in the Prometheus text format (admins)",
    )
    async def prometheus_metrics(who: AdminCaller) -> Response:
        body, content_type = metrics.prometheus_text()
        return Response(body, media_type=content_type)

    return router
