"""Embedding throughput, each figure beside its baseline in one run.

    python -m bench.embeddings [--texts 256] [--rounds 5]

1. Batching: the Azure OpenAI embedder (real `openai` SDK) against the local stub with 50 ms
   latency per call, texts sent in batches versus one text per call (the same number of
   calls in flight either way). Target: batched >= 10x.
2. Provider overhead: the local provider's texts/s versus raw onnxruntime (the same
   tokenizer, session, batch size and pooling, called directly). Target: >= 0.9x.
Rounds alternate between subject and baseline; medians are reported. Results go to
bench/results/embeddings.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import write_result
from devtools.openai_stub import OpenAIStub
from shared.ai.azure_openai import AzureOpenAIEmbedder, AzureOpenAIOptions, create_client
from shared.ai.base import Embeddings, Usage
from shared.ai.local import LocalEmbedder
from shared.ai.minilm import MiniLM, mean_pool_normalized, model_files

STUB_LATENCY_SECONDS = 0.05


def sample_texts(count: int) -> list[str]:
    topics = ["invoices", "shipping delays", "a refund request", "the new API", "queue depth"]
    return [
        f"Customer note {i}: the team discussed {topics[i % len(topics)]} and agreed on next "
        f"steps for account {i * 7919 % 10007}, to be reviewed next week."
        for i in range(count)
    ]


async def texts_per_second(embed: Any, texts: list[str]) -> float:
    started = time.perf_counter()
    result = await embed(texts)
    elapsed = time.perf_counter() - started
    assert result.vectors.shape[0] == len(texts)
    return len(texts) / elapsed


async def batching(texts: list[str], rounds: int) -> dict[str, Any]:
    with OpenAIStub(latency_seconds=STUB_LATENCY_SECONDS, dimensions=1536) as stub:
        options = AzureOpenAIOptions(endpoint=stub.endpoint, api_key="bench")
        client = create_client(options)
        batched = AzureOpenAIEmbedder(client, options)
        single = AzureOpenAIEmbedder(client, replace(options, embedding_batch_size=1))
        subject, baseline = [], []
        try:
            for _ in range(rounds):
                subject.append(await texts_per_second(batched.embed, texts))
                baseline.append(await texts_per_second(single.embed, texts))
        finally:
            await client.close()
    return _figures("batched", subject, "one_per_call", baseline, target=10.0)


def raw_onnxruntime(texts: list[str], batch_size: int) -> Any:
    """The baseline: tokenizer + session + pooling, called directly, no provider around it."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model_path, tokenizer_path = model_files()
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])

    def encode(batch_texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(batch_texts), batch_size):
            encodings = tokenizer.encode_batch(batch_texts[start : start + batch_size])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = session.run(["last_hidden_state"], feeds)
            out.append(mean_pool_normalized(hidden, mask))
        return np.concatenate(out)

    return encode


async def local_overhead(texts: list[str], rounds: int) -> dict[str, Any]:
    model = MiniLM()
    provider = LocalEmbedder(model)
    raw = raw_onnxruntime(texts, model.batch_size)
    await provider.embed(texts[:8])  # load both once before timing
    raw(texts[:8])

    async def raw_embed(batch: list[str]) -> Embeddings:
        return Embeddings(vectors=raw(batch), usage=Usage())

    subject, baseline = [], []
    for _ in range(rounds):
        subject.append(await texts_per_second(provider.embed, texts))
        baseline.append(await texts_per_second(raw_embed, texts))
    model.close()
    return _figures("local_provider", subject, "raw_onnxruntime", baseline, target=0.9)


def _figures(
    subject: str, subject_rates: list[float], base: str, base_rates: list[float], target: float
) -> dict[str, Any]:
    s, b = statistics.median(subject_rates), statistics.median(base_rates)
    return {
        f"{subject}_texts_per_s": round(s, 1),
        f"{base}_texts_per_s": round(b, 1),
        "ratio": round(s / b, 2),
        "target": target,
        "met": s / b >= target,
    }


async def main(count: int, rounds: int) -> dict[str, Any]:
    texts = sample_texts(count)
    return {
        "texts": count,
        "rounds": rounds,
        "batching_vs_one_per_call": await batching(texts, rounds),
        "local_provider_vs_raw_onnxruntime": await local_overhead(texts, rounds),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report = asyncio.run(main(args.texts, args.rounds))
    write_result("embeddings", report)
    batch, local = report["batching_vs_one_per_call"], report["local_provider_vs_raw_onnxruntime"]
    print(
        f"embeddings: batched {batch['batched_texts_per_s']}/s vs one-per-call "
        f"{batch['one_per_call_texts_per_s']}/s = {batch['ratio']}x (target >= 10); "
        f"local provider {local['local_provider_texts_per_s']}/s vs raw onnxruntime "
        f"{local['raw_onnxruntime_texts_per_s']}/s = {local['ratio']}x (target >= 0.9)"
    )
