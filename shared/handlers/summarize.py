"""Offline extractive summary: the sentences whose words are most frequent in the text.

A small, dependency-free provider so the system runs with no model and no network.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from shared.jobs import SummarizeInput
from shared.processing import JobContext

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


async def summarize(input_data: dict[str, Any], context: JobContext) -> dict[str, Any]:
    request = SummarizeInput.model_validate(input_data)
    sentences = [s.strip() for s in _SENTENCE_END.split(request.text) if s.strip()]
    frequencies = Counter(word.lower() for word in _WORD.findall(request.text))

    def score(sentence: str) -> float:
        words = [word.lower() for word in _WORD.findall(sentence)]
        return sum(frequencies[word] for word in words) / (len(words) or 1)

    ranked = sorted(range(len(sentences)), key=lambda i: score(sentences[i]), reverse=True)
    chosen = sorted(ranked[: request.max_sentences])
    return {
        "summary": " ".join(sentences[i] for i in chosen),
        "sentences": len(chosen),
        "provider": "extractive-frequency",
    }
