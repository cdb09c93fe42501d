"""The packaged MiniLM model, run for real on onnxruntime (no network, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.ai.base import SummaryRequest
from shared.ai.local import LocalEmbedder, LocalSummarizer
from shared.ai.minilm import DIMENSIONS, MiniLM

PARAPHRASES = ("A cat sits on the mat.", "A kitten is resting on a rug.")
UNRELATED = "Quarterly revenue grew by ten percent."

DOCUMENT = (
    "Service Bus queues decouple producers from consumers. "
    "A producer sends a message and moves on. "
    "Consumers receive messages with a peek-lock and settle them when done. "
    "If a consumer crashes, the lock expires and the message is delivered again. "
    "The weather in Lisbon was sunny yesterday. "
    "Messages that fail too often go to the dead-letter queue for operators to inspect."
)


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM()


async def test_vectors_are_384_dimensional_unit_norm_and_in_input_order(model):
    texts = [*PARAPHRASES, UNRELATED]
    result = await LocalEmbedder(model).embed(texts)
    assert result.vectors.shape == (3, DIMENSIONS)
    assert result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    single = await LocalEmbedder(model).embed([UNRELATED])
    np.testing.assert_allclose(single.vectors[0], result.vectors[2], atol=1e-5)
    assert result.usage.prompt_tokens > 0


async def test_paraphrases_are_closer_than_unrelated_texts_by_a_clear_margin(model):
    a, b, c = (await LocalEmbedder(model).embed([*PARAPHRASES, UNRELATED])).vectors
    assert float(a @ b) > 0.5
    assert float(a @ b) - max(float(a @ c), float(b @ c)) > 0.4


async def test_same_text_gives_the_same_vector_in_a_fresh_model():
    first = (await LocalEmbedder(MiniLM()).embed([UNRELATED])).vectors
    second = (await LocalEmbedder(MiniLM(batch_size=1)).embed([UNRELATED])).vectors
    np.testing.assert_array_equal(first, second)


async def test_batches_give_the_same_vectors_as_one_at_a_time(model):
    texts = [f"text number {i} about queues" for i in range(10)] + ["a much longer text " * 20]
    batched = MiniLM(batch_size=4).encode(texts)
    single = np.stack([model.encode([t])[0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


async def test_summary_picks_central_sentences_and_leaves_out_the_off_topic_one(model):
    summary = await LocalSummarizer(model).summarize(SummaryRequest(DOCUMENT, max_sentences=3))
    assert summary.provider == "local"
    assert "Lisbon" not in summary.text
    assert summary.text.count(".") == 3
    assert summary.text.startswith("Service Bus queues decouple")


async def test_summary_is_deterministic_and_honours_words_and_bullets(model):
    summarizer = LocalSummarizer(model)
    request = SummaryRequest(DOCUMENT, max_sentences=4, max_words=25, style="bullets")
    first = await summarizer.summarize(request)
    assert first == await LocalSummarizer(MiniLM()).summarize(request)
    lines = first.text.splitlines()
    assert lines
    assert all(line.startswith("- ") for line in lines)
    assert sum(len(line[2:].split()) for line in lines) <= 25


async def test_a_one_sentence_text_is_its_own_summary(model):
    summary = await LocalSummarizer(model).summarize(SummaryRequest("Just one sentence here"))
    assert summary.text == "Just one sentence here"
