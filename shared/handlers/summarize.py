"""Summarize a text (inline, or from the claim-check blob) with the configured provider."""

from __future__ import annotations

from typing import Any

from shared.ai.base import Summarizer, SummaryRequest
from shared.handlers.base import JobContext
from shared.jobs import SummarizeInput


class SummarizeHandler:
    def __init__(self, summarizer: Summarizer) -> None:
        self._summarizer = summarizer

    async def __call__(self, input_data: dict[str, Any], context: JobContext) -> dict[str, Any]:
        job_input = SummarizeInput.model_validate(input_data)
        summary = await self._summarizer.summarize(
            SummaryRequest(
                text=job_input.text,
                max_sentences=job_input.max_sentences,
                max_words=job_input.max_words,
                style=job_input.style,
            )
        )
        return {
            "summary": summary.text,
            "style": job_input.style,
            "provider": summary.provider,
            "model": summary.model,
            "chunks": summary.chunks,
            "usage": summary.usage.as_dict(),
        }
