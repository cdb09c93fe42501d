"""Offline embeddings by feature hashing: each word and word pair maps to one of 384 dims.

Deterministic and dependency-free, so the system runs with no model download; texts that
share words get close vectors. A model-backed provider can replace it behind the same shape.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import Any

from shared.jobs import EmbedInput
from shared.processing import JobContext

DIMENSIONS = 384
_WORD = re.compile(r"\w+", re.UNICODE)


def hashed_vector(text: str) -> list[float]:
    words = [w.lower() for w in _WORD.findall(text)]
    features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    vector = [0.0] * DIMENSIONS
    for feature in features:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % DIMENSIONS
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]


async def embed(input_data: dict[str, Any], context: JobContext) -> dict[str, Any]:
    request = EmbedInput.model_validate(input_data)
    return {
        "model": "feature-hashing-384",
        "dimensions": DIMENSIONS,
        "vectors": [hashed_vector(text) for text in request.texts],
    }
