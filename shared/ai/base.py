"""Provider protocols and the values they return.

Handlers depend on these shapes only; `shared.services` picks the implementation once per
process from settings. Providers raise `TransientError` / `PermanentError` (shared.errors),
so the retry policy, not the provider, owns backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

SummaryStyle = Literal["paragraph", "bullets"]
Vectors = npt.NDArray[np.float32]  # shape (count, dimensions), rows in input order


@dataclass(frozen=True)
class Usage:
    """Tokens a provider reports (or counts) for the work it did."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class SummaryRequest:
    text: str
    max_sentences: int = 3
    max_words: int | None = None
    style: SummaryStyle = "paragraph"


@dataclass(frozen=True)
class Summary:
    text: str
    provider: str
    model: str
    usage: Usage
    chunks: int = 1  # how many pieces the input was split into (map-reduce when > 1)


@dataclass(frozen=True)
class Embeddings:
    vectors: Vectors
    usage: Usage


class Summarizer(Protocol):
    provider: str
    model: str

    async def summarize(self, request: SummaryRequest) -> Summary: ...


class Embedder(Protocol):
    """Turns texts into unit-norm vectors, one row per text, in the order given."""

    provider: str
    model: str
    dimensions: int | None  # None until known (a remote model reports it with its first answer)

    async def embed(self, texts: list[str]) -> Embeddings: ...
