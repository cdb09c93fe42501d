"""Splitting text into sentences and into token-bounded chunks (for map-reduce summaries)."""

from __future__ import annotations

import re
from collections.abc import Callable

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) and whitespace,
# or at a blank line; common abbreviations and initials do not end one.
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|etc|e\.g|i\.e|Inc|Ltd|Co|No|Fig)\.|\b[A-Z]\.)$"
)


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    pending = ""
    start = 0
    for match in _BOUNDARY.finditer(text):
        piece = text[start : match.start()] + text[match.start() : match.end()].rstrip()
        start = match.end()
        candidate = (pending + " " + piece.strip()).strip() if pending else piece.strip()
        if _ABBREVIATION.search(candidate):
            pending = candidate
            continue
        pending = ""
        if candidate:
            sentences.append(" ".join(candidate.split()))
    tail = (pending + " " + text[start:].strip()).strip() if pending else text[start:].strip()
    if tail:
        sentences.append(" ".join(tail.split()))
    return sentences


def chunk_by_tokens(
    sentences: list[str], max_tokens: int, count: Callable[[str], int]
) -> list[str]:
    """Greedily pack whole sentences into chunks of at most `max_tokens` (as `count` says).

    A single sentence longer than the budget is cut on word boundaries, so no chunk is ever
    over it.
    """
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for sentence in sentences:
        for piece in _fit(sentence, max_tokens, count):
            size = count(piece) + 1
            if current and used + size > max_tokens:
                chunks.append(" ".join(current))
                current, used = [], 0
            current.append(piece)
            used += size
    if current:
        chunks.append(" ".join(current))
    return chunks


def _fit(sentence: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    if count(sentence) < max_tokens:
        return [sentence]
    pieces: list[str] = []
    words: list[str] = []
    for word in sentence.split():
        if words and count(" ".join([*words, word])) >= max_tokens:
            pieces.append(" ".join(words))
            words = []
        words.append(word)
    if words:
        pieces.append(" ".join(words))
    return pieces


def trim_words(text: str, max_words: int | None) -> str:
    if max_words is None:
        return text
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + "…"
