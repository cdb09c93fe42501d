"""What every Table-backed part of the core shares: making sure its table exists."""

from __future__ import annotations

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables.aio import TableClient

from shared.errors import ServiceUnavailable


async def ensure_table(table: TableClient) -> None:
    """Create `table` unless it exists; an unreachable Storage is a ServiceUnavailable."""
    try:
        await table.create_table()
    except ResourceExistsError:
        pass
    except AzureError as exc:
        raise ServiceUnavailable(f"table storage is unreachable: {exc}") from exc
