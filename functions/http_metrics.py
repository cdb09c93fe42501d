"""GET /api/metrics: the job metrics in the Prometheus text format, for scrapers that are
not Azure Monitor. The values are this process's own (one Function App instance)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from shared import metrics

METRICS_PATH = "/api/metrics"


def create_metrics_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        METRICS_PATH,
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
        summary="Job metrics of this instance in the Prometheus text format",
    )
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.prometheus_text()
        return Response(body, media_type=content_type)

    return router
