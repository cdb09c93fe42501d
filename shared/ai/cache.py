"""Content-addressed embedding cache on Azure Tables: the same (model, text) is embedded once.

Key = sha256(model, text). PartitionKey = its first two hex digits (256 partitions, so no hot
partition), RowKey = the whole hash; the vector is stored as float32 little-endian bytes (a
1,536-d vector is 6 KiB, well under a property's 64 KiB). The cache only ever saves work: a
Storage failure reads as a miss and a failed write is logged, never failing the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.ai.base import Vectors
from shared.jobs import utcnow

log = logging.getLogger(__name__)

MAX_CALLS_IN_FLIGHT = 16


class VectorCache(Protocol):
    async def get_many(self, model: str, texts: Sequence[str]) -> dict[int, np.ndarray]: ...

    async def put_many(self, model: str, texts: Sequence[str], vectors: Vectors) -> None: ...


def cache_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


class NoCache:
    """Used when EMBEDDING_CACHE=off."""

    async def get_many(self, model: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        return {}

    async def put_many(self, model: str, texts: Sequence[str], vectors: Vectors) -> None:
        return None


class TableEmbeddingCache:
    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._gate = asyncio.Semaphore(MAX_CALLS_IN_FLIGHT)

    async def ensure_table(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._table.create_table()

    async def get_many(self, model: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Cached vectors by position in `texts`; repeated texts are read once."""
        positions: dict[str, list[int]] = {}
        for index, text in enumerate(texts):
            positions.setdefault(cache_key(model, text), []).append(index)
        keys = list(positions)
        found = await asyncio.gather(*(self._get(model, key) for key in keys))
        hits: dict[int, np.ndarray] = {}
        for key, vector in zip(keys, found, strict=True):
            if vector is not None:
                for index in positions[key]:
                    hits[index] = vector
        return hits

    async def put_many(self, model: str, texts: Sequence[str], vectors: Vectors) -> None:
        unique = {cache_key(model, text): row for text, row in zip(texts, vectors, strict=True)}
        await asyncio.gather(*(self._put(model, key, row) for key, row in unique.items()))

    async def _get(self, model: str, key: str) -> np.ndarray | None:
        async with self._gate:
            try:
                entity = await self._table.get_entity(key[:2], key, select=["model", "vector"])
            except ResourceNotFoundError:
                return None
            except AzureError as exc:
                log.warning("embedding cache read failed (treated as a miss): %s", exc)
                return None
        raw = entity.get("vector")
        if entity.get("model") != model or not isinstance(raw, bytes | bytearray):
            return None
        return np.frombuffer(bytes(raw), dtype="<f4").astype(np.float32)

    async def _put(self, model: str, key: str, vector: np.ndarray) -> None:
        entity = {
            "PartitionKey": key[:2],
            "RowKey": key,
            "model": model,
            "dimensions": int(vector.shape[0]),
            "vector": vector.astype("<f4").tobytes(),
            "stored_at": utcnow(),
        }
        async with self._gate:
            try:
                await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
            except AzureError as exc:
                log.warning("embedding cache write failed: %s", exc)
