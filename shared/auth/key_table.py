"""API keys kept in a Table, for deployments with more keys than settings should hold.

PartitionKey = the key's id, RowKey = "key"; the row holds the hash, never the key. Revoking
stamps `revoked_at` (the row stays, for audit). Lookups are cached for `cache_seconds` per
instance, found or not, so a flood of unknown keys costs one read per id: a revoked key
stops working within that time on every instance.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.auth.api_keys import ApiKeyRecord
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.jobs import utcnow
from shared.tables import ensure_table

ROW_KEY = "key"
MAX_CACHED = 10_000


class ApiKeyTable:
    def __init__(self, table: TableClient, *, cache_seconds: float = 30.0) -> None:
        self._table = table
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}

    async def ensure_table(self) -> None:
        await ensure_table(self._table)

    async def find(self, key_id: str) -> ApiKeyRecord | None:
        """The record for `key_id` (revoked ones too), from the cache when fresh."""
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._read(key_id)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key_id] = (now + self._cache_seconds, record)
        return record

    async def add(self, record: ApiKeyRecord) -> ApiKeyRecord:
        record = replace(record, created_at=record.created_at or utcnow())
        try:
            await self._table.create_entity(_entity(record))
        except ResourceExistsError as exc:
            raise Conflict(f"an API key with id {record.id!r} exists already") from exc
        except AzureError as exc:
            raise ServiceUnavailable(f"could not store the API key: {exc}") from exc
        self._cache.pop(record.id, None)
        return record

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        record = await self._read(key_id)
        if record is None:
            raise NotFound(f"no API key with id {key_id!r}")
        if record.active:
            record = record.revoked(utcnow())
            try:
                await self._table.update_entity(_entity(record), mode=UpdateMode.REPLACE)
            except AzureError as exc:
                raise ServiceUnavailable(f"could not revoke the API key: {exc}") from exc
        self._cache.pop(key_id, None)
        return record

    async def all(self) -> list[ApiKeyRecord]:
        try:
            return [_record(entity) async for entity in self._table.list_entities()]
        except AzureError as exc:
            raise ServiceUnavailable(f"could not list API keys: {exc}") from exc

    async def _read(self, key_id: str) -> ApiKeyRecord | None:
        try:
            return _record(await self._table.get_entity(key_id, ROW_KEY))
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise ServiceUnavailable(f"could not look up the API key: {exc}") from exc


def _entity(record: ApiKeyRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": record.id,
        "RowKey": ROW_KEY,
        "owner": record.owner,
        "sha256": record.sha256,
        "admin": record.admin,
        "description": record.description,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }
    if record.submits_per_minute is not None:
        entity["submits_per_minute"] = record.submits_per_minute
    return {name: value for name, value in entity.items() if value is not None}


def _record(entity: Any) -> ApiKeyRecord:
    limit = entity.get("submits_per_minute")
    return ApiKeyRecord(
        id=entity["PartitionKey"],
        owner=entity["owner"],
        sha256=entity["sha256"],
        admin=bool(entity.get("admin", False)),
        submits_per_minute=None if limit is None else int(limit),
        description=entity.get("description", ""),
        created_at=entity.get("created_at"),
        revoked_at=entity.get("revoked_at"),
    )
