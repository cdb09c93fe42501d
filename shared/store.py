"""JobStore: job status rows on Azure Table Storage (Idempotency-Keys live in them too:
shared/idempotency.py).

Every update is a read-modify-write guarded by the row's ETag: a writer that lost the race
reloads and re-applies its change, so concurrent workers and API calls never overwrite each
other. Inputs and results too large for a row go to the PayloadStore (claim check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.job_rows import JOB_ROW_KEY, dumps, job_from_entity, job_to_entity
from shared.jobs import Job, JobStatus, utcnow
from shared.payloads import MAX_INLINE_CHARS, PayloadStore
from shared.tables import ensure_table

log = logging.getLogger(__name__)

JOB_EXISTS = "job_exists"  # the Conflict code of an insert whose row is there already
MAX_UPDATE_ATTEMPTS = 8

JobChange = Callable[[Job], Job | None]
_OVERVIEW_COLUMNS = (
    "PartitionKey", "type", "status", "owner", "attempt", "created_at", "updated_at",
    "started_at", "finished_at", "error_code", "dead_letter_reason",
)  # fmt: skip


class JobStore:
    def __init__(self, jobs: TableClient, payloads: PayloadStore) -> None:
        self._jobs = jobs
        self.payloads = payloads

    async def ensure_tables(self) -> None:
        await ensure_table(self._jobs)
        await self.payloads.ensure_container()

    # ---- jobs ---------------------------------------------------------------------------

    async def create(self, job: Job) -> Job:
        entity = await self._to_entity(job)
        try:
            meta = await self._jobs.create_entity(entity)
        except ResourceExistsError as exc:
            raise Conflict(f"job {job.id} already exists", code=JOB_EXISTS) from exc
        except AzureError as exc:
            raise ServiceUnavailable(f"could not write the job row: {exc}") from exc
        return replace(job, etag=meta.get("etag"))

    async def get(self, job_id: str) -> Job:
        try:
            entity = await self._jobs.get_entity(job_id, JOB_ROW_KEY)
        except ResourceNotFoundError as exc:
            raise NotFound(f"no job with id {job_id}") from exc
        except AzureError as exc:
            raise ServiceUnavailable(f"could not read the job row: {exc}") from exc
        return job_from_entity(entity)

    async def update(self, job_id: str, change: JobChange, *, known: Job | None = None) -> Job:
        """Apply `change` to the current row under its ETag, reloading on a lost race.

        `change` returns the new Job, or None to leave the row as it is. It may raise (for
        example InvalidTransition); nothing is written then. `known` is a copy the caller
        just read or wrote (with its ETag): the first try uses it instead of reading again.
        """
        for _ in range(MAX_UPDATE_ATTEMPTS):
            if known is not None and known.id == job_id and known.etag:
                current, known = known, None
            else:
                current = await self.get(job_id)
            updated = change(current)
            if updated is None:
                return current
            entity = await self._to_entity(updated)
            try:
                meta = await self._jobs.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=current.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                log.debug("job %s changed under us; reloading", job_id)
                continue
            except ResourceNotFoundError as exc:
                raise NotFound(f"no job with id {job_id}") from exc
            except AzureError as exc:
                raise ServiceUnavailable(f"could not update the job row: {exc}") from exc
            return replace(updated, etag=meta.get("etag"))
        raise Conflict(f"job {job_id} is being changed by others; try again")

    async def delete(self, job: Job) -> None:
        """Turn a finished job's row into a tombstone: input and result gone (blobs too), the
        terminal status kept, so a late copy of its message is still completed unrun."""
        refs = [job.input_ref, job.result_ref]
        if isinstance(job.result, dict):
            refs.append(job.result.get("vectors_ref"))

        def tombstone(row: Job) -> Job | None:
            if row.deleted_at is not None:
                return None
            return replace(
                row,
                input=None,
                input_ref=None,
                result=None,
                result_ref=None,
                deleted_at=utcnow(),
                updated_at=utcnow(),
            )

        await self.update(job.id, tombstone, known=job)
        for ref in refs:
            if ref:
                await self.payloads.delete(ref)

    async def load_input(self, job: Job) -> dict[str, Any]:
        if job.input is not None:
            return job.input
        if job.input_ref is None:
            raise NotFound(f"job {job.id} has no stored input")
        value = await self.payloads.get_json(job.input_ref)
        if not isinstance(value, dict):
            raise NotFound(f"job {job.id}'s stored input is not a JSON object")
        return value

    async def load_result(self, job: Job) -> Any:
        """The whole result, with anything claim-checked (JSON, vectors) read back."""
        result = (
            job.result if job.result_ref is None else await self.payloads.get_json(job.result_ref)
        )
        return await self.payloads.expand_vectors(result)

    async def list_by_status(self, status: JobStatus, *, limit: int = 100) -> list[Job]:
        """Jobs in one status (a cross-partition scan; for sweepers and operators)."""
        return await self.query_jobs("status eq @status", {"status": status.value}, limit=limit)

    async def list_scheduled(self, *, due_before: datetime, limit: int = 100) -> list[Job]:
        """Scheduled (delayed) jobs whose run_at is before `due_before` (for the sweeper)."""
        return await self.query_jobs(
            "status eq @status and run_at lt @due",
            {"status": JobStatus.SCHEDULED.value, "due": due_before},
            limit=limit,
        )

    async def count_by_status(self, status: JobStatus) -> int:
        """How many jobs are in `status` (a scan; for operators and benchmarks)."""
        count = 0
        try:
            async for _ in self._jobs.query_entities(
                "RowKey eq @rk and status eq @status",
                parameters={"rk": JOB_ROW_KEY, "status": status.value},
                select=["PartitionKey"],
            ):
                count += 1
        except AzureError as exc:
            raise ServiceUnavailable(f"could not query job rows: {exc}") from exc
        return count

    async def list_for_overview(self, *, since: datetime, limit: int = 10_000) -> list[Job]:
        """Every job not yet finished, and those updated since `since`, without inputs or
        results: what an operator's overview counts (a cross-partition scan)."""
        in_flight = [status for status in JobStatus if not status.is_terminal]
        parameters: dict[str, Any] = {"since": since}
        parameters.update({f"s{i}": status.value for i, status in enumerate(in_flight)})
        live = " or ".join(f"status eq @s{i}" for i in range(len(in_flight)))
        # The SDK finds @names between spaces, so none may touch a parenthesis.
        return await self.query_jobs(
            f"( updated_at ge @since or {live} )",
            parameters,
            limit=limit,
            select=list(_OVERVIEW_COLUMNS),
        )

    async def query_jobs(
        self,
        condition: str,
        parameters: dict[str, Any],
        *,
        limit: int,
        select: list[str] | None = None,
    ) -> list[Job]:
        """Job rows matching `condition` (an OData filter with @names), at most `limit`."""
        jobs: list[Job] = []
        try:
            async for entity in self._jobs.query_entities(
                f"RowKey eq @rk and {condition}",
                parameters={"rk": JOB_ROW_KEY, **parameters},
                select=select,
                results_per_page=min(limit, 1000),
            ):
                jobs.append(job_from_entity(entity))
                if len(jobs) >= limit:
                    break
        except AzureError as exc:
            raise ServiceUnavailable(f"could not query job rows: {exc}") from exc
        return jobs

    async def ping(self) -> None:
        """Cheap reachability check for health probes."""
        try:
            async for _ in self._jobs.query_entities(
                "PartitionKey eq @pk", parameters={"pk": "health"}, results_per_page=1
            ):
                break
        except AzureError as exc:
            raise ServiceUnavailable(f"table storage is unreachable: {exc}") from exc

    # ---- mapping ------------------------------------------------------------------------

    async def _to_entity(self, job: Job) -> dict[str, Any]:
        job = await self._offload_large_fields(job)
        return job_to_entity(job)

    async def _offload_large_fields(self, job: Job) -> Job:
        if job.input is not None and len(dumps(job.input)) > MAX_INLINE_CHARS:
            ref = await self.payloads.put_json(f"{job.id}/input.json", job.input)
            job = replace(job, input=None, input_ref=ref)
        if job.result is not None and len(dumps(job.result)) > MAX_INLINE_CHARS:
            ref = await self.payloads.put_json(f"{job.id}/result.json", job.result)
            job = replace(job, result=None, result_ref=ref)
        return job
