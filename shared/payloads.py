"""Claim-check storage: inputs and results too large for a table row live in Blob storage."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from shared.errors import NotFound, ServiceUnavailable

if TYPE_CHECKING:  # imported on first use: the Blob SDK and numpy are slow to import
    import numpy as np
    from azure.storage.blob.aio import ContainerClient

# A Table string property holds 64 KiB of UTF-16, i.e. 32K characters; keep a margin.
MAX_INLINE_CHARS = 30_000
VECTOR_ENCODING = "float32-le"  # how vector blobs are laid out: rows of little-endian float32


class PayloadStore:
    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    async def ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._container.create_container()

    async def put_json(self, name: str, value: Any) -> str:
        """Store `value` as JSON under `name`; returns the reference to keep on the row."""
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        return await self._upload(name, data, "application/json")

    async def get_json(self, ref: str) -> Any:
        return json.loads(await self._get_bytes(ref))

    async def put_vectors(self, name: str, vectors: np.ndarray) -> str:
        """Store a (count, dimensions) matrix as float32 little-endian rows."""
        import numpy as np

        data = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
        return await self._upload(name, data, "application/octet-stream")

    async def _upload(self, name: str, data: bytes, content_type: str) -> str:
        try:
            await self._container.upload_blob(name, data, overwrite=True, content_type=content_type)
        except AzureError as exc:
            raise ServiceUnavailable(f"blob storage write failed: {exc}") from exc
        return f"{self._container.container_name}/{name}"

    async def get_vectors(self, ref: str, dimensions: int) -> np.ndarray:
        data = await self._get_bytes(ref)
        import numpy as np

        return np.frombuffer(data, dtype="<f4").reshape(-1, dimensions)

    async def expand_vectors(self, result: Any) -> Any:
        """A result whose vectors live in a blob (`vectors_ref`), with them read back inline."""
        if not isinstance(result, dict) or "vectors_ref" not in result:
            return result
        matrix = await self.get_vectors(result["vectors_ref"], int(result["dimensions"]))
        return {**result, "vectors": matrix.tolist()}

    async def _get_bytes(self, ref: str) -> bytes:
        container, _, name = ref.partition("/")
        if container != self._container.container_name or not name:
            raise NotFound(f"payload reference {ref!r} is not in this store")
        try:
            downloader = await self._container.download_blob(name)
            return bytes(await downloader.readall())
        except ResourceNotFoundError as exc:
            raise NotFound(f"payload {ref!r} does not exist") from exc
        except AzureError as exc:
            raise ServiceUnavailable(f"blob storage read failed: {exc}") from exc

    async def delete(self, ref: str) -> None:
        _, _, name = ref.partition("/")
        try:
            await self._container.delete_blob(name)
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise ServiceUnavailable(f"blob storage delete failed: {exc}") from exc
