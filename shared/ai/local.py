"""Offline providers on the packaged MiniLM model.

Summaries are extractive: each sentence is embedded, scored by its centrality (similarity to
the document's centroid and to the other sentences, TextRank-style), and picked by maximal
marginal relevance so the summary covers the text instead of repeating its main point. The
same input always gives the same summary (ties go to the earlier sentence).
"""

from __future__ import annotations

import numpy as np

from shared.ai.base import Embeddings, Summary, SummaryRequest, Usage, Vectors
from shared.ai.minilm import DIMENSIONS, MODEL_ID, MiniLM
from shared.ai.text import split_sentences, trim_words

PROVIDER = "local"
MMR_LAMBDA = 0.7  # weight of centrality against redundancy with sentences already chosen


class LocalEmbedder:
    provider = PROVIDER
    model = MODEL_ID
    dimensions: int | None = DIMENSIONS

    def __init__(self, model: MiniLM) -> None:
        self._model = model

    async def embed(self, texts: list[str]) -> Embeddings:
        vectors, tokens = await self._model.run(texts)
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=tokens))


class LocalSummarizer:
    provider = PROVIDER
    model = MODEL_ID

    def __init__(self, model: MiniLM) -> None:
        self._model = model

    async def summarize(self, request: SummaryRequest) -> Summary:
        sentences = split_sentences(request.text)
        if len(sentences) <= 1:
            text = sentences[0] if sentences else request.text.strip()
            return self._summary(request, [text], tokens=0)
        vectors, tokens = await self._model.run(sentences)
        chosen = select_sentences(vectors, sentences, request.max_sentences, request.max_words)
        return self._summary(request, [sentences[i] for i in chosen], tokens=tokens)

    def _summary(self, request: SummaryRequest, picked: list[str], *, tokens: int) -> Summary:
        if request.style == "bullets":
            text = "\n".join(f"- {trim_words(s, request.max_words)}" for s in picked)
        else:
            text = trim_words(" ".join(picked), request.max_words)
        return Summary(
            text=text, provider=PROVIDER, model=MODEL_ID, usage=Usage(prompt_tokens=tokens)
        )


def centrality(vectors: Vectors) -> np.ndarray:
    """How central each sentence is: its mean similarity to every sentence (unit vectors, so
    this is its similarity to the centroid, the fixed point TextRank converges to first)."""
    centroid = vectors.mean(axis=0)
    return vectors @ centroid


def select_sentences(
    vectors: Vectors, sentences: list[str], max_sentences: int, max_words: int | None
) -> list[int]:
    """Indices of the sentences to keep, in document order (MMR over centrality)."""
    scores = centrality(vectors)
    chosen: list[int] = []
    words = 0
    redundancy = np.full(len(sentences), -np.inf, dtype=np.float32)
    candidates = set(range(len(sentences)))
    while candidates and len(chosen) < max_sentences:
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        mmr = MMR_LAMBDA * scores - (1 - MMR_LAMBDA) * penalty
        best = min(candidates, key=lambda i: (-round(float(mmr[i]), 6), i))
        length = len(sentences[best].split())
        if max_words is not None and chosen and words + length > max_words:
            candidates.discard(best)  # too long for what is left; a shorter one may fit
            continue
        chosen.append(best)
        words += length
        candidates.discard(best)
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    return sorted(chosen)
