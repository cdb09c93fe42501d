"""Sentence splitting and token-bounded chunking for summaries."""

from __future__ import annotations

from shared.ai.text import chunk_by_tokens, split_sentences, trim_words
from shared.ai.tokens import estimate_tokens, token_counter


def words(text: str) -> int:
    return len(text.split())


def test_sentences_split_on_terminators_but_not_abbreviations_or_initials():
    text = 'Dr. Smith met J. R. Jones. He said "Stop!" Then left. 3 apples fell.\n\nA new line'
    assert split_sentences(text) == [
        "Dr. Smith met J. R. Jones.",
        'He said "Stop!"',
        "Then left.",
        "3 apples fell.",
        "A new line",
    ]


def test_chunks_keep_order_and_never_exceed_the_budget():
    sentences = [f"sentence {i} " + "word " * (i % 7) for i in range(50)]
    chunks = chunk_by_tokens(sentences, 20, words)
    assert all(words(chunk) <= 20 for chunk in chunks)
    assert " ".join(chunks).split() == " ".join(sentences).split()


def test_a_sentence_longer_than_the_budget_is_cut_on_words():
    chunks = chunk_by_tokens(["one " * 45], 10, words)
    assert all(words(chunk) <= 10 for chunk in chunks)
    assert sum(words(chunk) for chunk in chunks) == 45


def test_trim_words_marks_a_cut():
    assert trim_words("a b c d", 2) == "a b…"
    assert trim_words("a b", 2) == "a b"
    assert trim_words("a b", None) == "a b"


def test_offline_tiktoken_counts_real_tokens():
    count = token_counter()
    assert count is not estimate_tokens  # the packaged cl100k table loaded, no download
    assert count("Hello world, this is a test.") == 8
