"""Sync a record to a downstream ERP/CRM-style HTTP API.

The job id travels as the Idempotency-Key, so a retried or redelivered job is safe for a
downstream that honours it. Responses are classified for processing: 429/5xx/timeouts are
transient (with the downstream's Retry-After), other 4xx are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from shared.errors import PermanentError, TransientError
from shared.handlers.base import JobContext
from shared.jobs import SyncInput
from shared.retry_after import retry_after_seconds


class SyncHandler:
    def __init__(self, targets: Mapping[str, str], http: httpx.AsyncClient) -> None:
        self._targets = targets
        self._http = http

    async def __call__(self, input_data: dict[str, Any], context: JobContext) -> dict[str, Any]:
        request = SyncInput.model_validate(input_data)
        base_url = self._targets.get(request.target)
        if base_url is None:
            raise PermanentError(
                f"sync target {request.target!r} is not configured", code="unknown_target"
            )
        url = base_url.rstrip("/") + "/records"
        try:
            response = await self._http.post(
                url,
                json={"operation": request.operation, "record": request.record},
                headers={"Idempotency-Key": context.job_id},
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"{url} timed out", code="downstream_timeout") from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{url} unreachable: {exc}", code="downstream_unreachable"
            ) from exc
        return _result_or_raise(url, response)


def _result_or_raise(url: str, response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status < 300:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:1000]
        return {"target_status": status, "response": body}
    detail = f"{url} answered {status}: {response.text[:300]}"
    if status in (408, 429) or status >= 500:
        raise TransientError(
            detail, retry_after=retry_after_seconds(response.headers), code=f"downstream_{status}"
        )
    raise PermanentError(detail, code=f"downstream_{status}")
