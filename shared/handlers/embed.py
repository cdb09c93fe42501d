"""Embed 1..256 texts: cached vectors first, the provider for the rest, in batches.

Vectors come back in input order. Small results stay inline on the row; larger ones go to the
claim-check blob as float32 little-endian rows, with the model, dimensions and normalisation
on the row. A provider failure raises before anything is stored, so a partial vector set is
never recorded as a success (batches that did finish are in the cache for the retry).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.ai.base import Embedder, Usage
from shared.ai.cache import VectorCache
from shared.errors import TransientError
from shared.handlers.base import JobContext
from shared.jobs import EmbedInput
from shared.payloads import VECTOR_ENCODING, PayloadStore

INLINE_FLOATS = 4 * 384  # up to four MiniLM vectors stay on the row; more go to a blob
INLINE_DECIMALS = 7


class EmbedHandler:
    def __init__(self, embedder: Embedder, cache: VectorCache, payloads: PayloadStore) -> None:
        self._embedder = embedder
        self._cache = cache
        self._payloads = payloads

    @property
    def cache_model_key(self) -> str:
        return f"{self._embedder.provider}:{self._embedder.model}"

    async def __call__(self, input_data: dict[str, Any], context: JobContext) -> dict[str, Any]:
        texts = EmbedInput.model_validate(input_data).texts
        model_key = self.cache_model_key
        cached = await self._cache.get_many(model_key, texts)
        missing = list(dict.fromkeys(texts[i] for i in range(len(texts)) if i not in cached))
        fresh: dict[str, np.ndarray] = {}
        usage = Usage()
        if missing:
            computed = await self._embedder.embed(missing)
            if computed.vectors.shape[0] != len(missing):
                raise TransientError(
                    f"the provider returned {computed.vectors.shape[0]} vectors for "
                    f"{len(missing)} texts",
                    code="ai_incomplete_answer",
                )
            await self._cache.put_many(model_key, missing, computed.vectors)
            fresh = dict(zip(missing, computed.vectors, strict=True))
            usage = computed.usage
        vectors = np.stack([cached[i] if i in cached else fresh[t] for i, t in enumerate(texts)])
        result: dict[str, Any] = {
            "provider": self._embedder.provider,
            "model": self._embedder.model,
            "dimensions": int(vectors.shape[1]),
            "count": len(texts),
            "normalized": True,
            "cache_hits": len(cached),
            "computed": len(missing),
            "usage": usage.as_dict(),
        }
        if vectors.size <= INLINE_FLOATS:
            result["vectors"] = np.round(vectors.astype(np.float64), INLINE_DECIMALS).tolist()
        else:
            name = f"{context.job_id}/vectors-{context.attempt}.f32"
            result["vectors_ref"] = await self._payloads.put_vectors(name, vectors)
            result["encoding"] = VECTOR_ENCODING
        return result
