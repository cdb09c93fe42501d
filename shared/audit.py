"""An append-only audit trail of operator actions (dead-letter replay and purge) in a table."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient

from shared.errors import ServiceUnavailable
from shared.jobs import utcnow
from shared.tables import ensure_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditLog:
    """PartitionKey = UTC day (so a day's actions read together), RowKey = time + uuid."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def ensure_table(self) -> None:
        await ensure_table(self._table)

    async def record(self, actor: str, action: str, target: str, **detail: Any) -> None:
        now = utcnow()
        entity = {
            "PartitionKey": now.strftime("%Y%m%d"),
            "RowKey": f"{now.strftime('%H%M%S%f')}-{uuid.uuid4().hex[:8]}",
            "at": now,
            "actor": actor,
            "action": action,
            "target": target,
            "detail": json.dumps(detail, default=str)[:30_000],
        }
        try:
            await self._table.create_entity(entity)
        except AzureError as exc:
            raise ServiceUnavailable(f"could not write the audit entry: {exc}") from exc
        log.info("audit: %s %s %s %s", actor, action, target, detail)

    async def entries_for_day(self, day: date | None = None) -> list[AuditEntry]:
        """One UTC day's entries, oldest first (today's by default)."""
        day = day or utcnow().date()
        entries = []
        async for entity in self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": day.strftime("%Y%m%d")}
        ):
            entries.append(
                AuditEntry(
                    at=entity["at"],
                    actor=entity["actor"],
                    action=entity["action"],
                    target=entity["target"],
                    detail=json.loads(entity["detail"]),
                )
            )
        return entries
