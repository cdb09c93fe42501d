"""A local stand-in for Azure OpenAI: chat completions and embeddings on the deployment routes
the `openai` SDK calls, with token usage, latency and scripted faults.

    python -m devtools.openai_stub --port 7090 --latency-ms 50

Tests and benchmarks run it in a thread (`with OpenAIStub() as stub:`), point
`AsyncAzureOpenAI(azure_endpoint=stub.endpoint, ...)` at it, and script failures with
`stub.script(Fault.rate_limited(1200))`. Answers are deterministic: a chat answer is the first
sentences of the last user message; an embedding is a unit vector drawn from a hash of the text.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_WORD = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Fault:
    """One scripted failure, consumed by one request."""

    status: int
    code: str | None
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def rate_limited(cls, retry_after_ms: int = 1000) -> Fault:
        return cls(
            429,
            "429",
            "Requests to the deployment have exceeded the token rate limit. Retry later.",
            {
                "retry-after-ms": str(retry_after_ms),
                "retry-after": str(max(1, round(retry_after_ms / 1000))),
            },
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, None, "The server had an error while processing your request.")

    @classmethod
    def content_filter(cls) -> Fault:
        return cls(
            400,
            "content_filter",
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy.",
        )

    @classmethod
    def context_length(cls) -> Fault:
        return cls(
            400,
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. Please reduce the length.",
        )

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": None, "param": None}
        error["code"] = self.code
        if self.code == "content_filter":
            error["param"] = "prompt"
            error["innererror"] = {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
            }
        return {"error": error}


@dataclass(frozen=True)
class RecordedRequest:
    kind: str  # "chat" | "embeddings"
    deployment: str
    body: dict[str, Any]
    auth: str  # "api-key" | "bearer"


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: words and punctuation marks."""
    return len(_WORD.findall(text))


def unit_vector(text: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)
    return vector / np.linalg.norm(vector)


class OpenAIStub:
    """Runs in a background thread on 127.0.0.1 (a free port by default); a context manager."""

    def __init__(
        self,
        *,
        port: int = 0,
        latency_seconds: float = 0.0,
        dimensions: int = 1536,
        deployments: set[str] | None = None,
    ) -> None:
        self.port = port
        self.latency_seconds = latency_seconds
        self.dimensions = dimensions
        self.deployments = deployments  # None: every deployment name exists
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[tuple[str | None, Fault]] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    # ---- scripting --------------------------------------------------------------------

    def script(self, *faults: Fault, kind: str | None = None) -> None:
        """Queue faults for the next requests (of `kind` only, when given)."""
        with self._lock:
            self._faults.extend((kind, fault) for fault in faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.max_in_flight = 0

    def _next_fault(self, kind: str) -> Fault | None:
        with self._lock:
            for index, (wanted, fault) in enumerate(self._faults):
                if wanted in (None, kind):
                    del self._faults[index]
                    return fault
        return None

    # ---- the app ----------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/openai/deployments/{deployment}/chat/completions",
                    self._chat,
                    methods=["POST"],
                ),
                Route(
                    "/openai/deployments/{deployment}/embeddings",
                    self._embeddings,
                    methods=["POST"],
                ),
            ]
        )

    async def _handle(self, request: Request, kind: str) -> tuple[JSONResponse | None, Any]:
        """Checks shared by both routes; returns (an error answer, or None; the body)."""
        if "api-version" not in request.query_params:
            return _error(400, "MissingApiVersionParameter", "api-version is required"), None
        auth = _auth_kind(request)
        if auth is None:
            return _error(
                401, "401", "Access denied due to invalid subscription key or wrong endpoint."
            ), None
        deployment = request.path_params["deployment"]
        if self.deployments is not None and deployment not in self.deployments:
            return _error(
                404, "DeploymentNotFound", f"The API deployment {deployment} does not exist."
            ), None
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_json", "the body is not JSON"), None
        with self._lock:
            self.requests.append(RecordedRequest(kind, deployment, body, auth))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_seconds:
                await asyncio.sleep(self.latency_seconds)
        finally:
            with self._lock:
                self.in_flight -= 1
        fault = self._next_fault(kind)
        if fault is not None:
            return JSONResponse(fault.body(), fault.status, headers=fault.headers), None
        return None, body

    async def _chat(self, request: Request) -> JSONResponse:
        failed, body = await self._handle(request, "chat")
        if failed is not None:
            return failed
        messages = body.get("messages") or []
        prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        last_user = next(
            (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 256
        answer = _first_sentences(last_user, int(limit))
        if "bullet" in prompt.lower():  # asked for a list: one "- " line per sentence
            answer = "\n".join(f"- {line}" for line in _SENTENCE_END.split(answer))
        prompt_tokens, completion_tokens = count_tokens(prompt), count_tokens(answer)
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": answer},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def _embeddings(self, request: Request) -> JSONResponse:
        failed, body = await self._handle(request, "embeddings")
        if failed is not None:
            return failed
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
            return _error(400, "invalid_input", "input must be a string or a list of strings")
        dimensions = int(body.get("dimensions") or self.dimensions)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = unit_vector(text, dimensions)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if as_base64
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count_tokens(t) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "model": "text-embedding-3-small",
                "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # ---- running ----------------------------------------------------------------------

    def __enter__(self) -> OpenAIStub:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="openai-stub", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Azure OpenAI stub did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def _auth_kind(request: Request) -> str | None:
    if request.headers.get("api-key"):
        return "api-key"
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return "bearer"
    return None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def _first_sentences(text: str, max_tokens: int) -> str:
    """The opening of `text`, whole sentences first, cut to about `max_tokens` tokens."""
    picked: list[str] = []
    used = 0
    for sentence in _SENTENCE_END.split(text.strip()):
        size = count_tokens(sentence)
        if picked and used + size > max_tokens:
            break
        picked.append(sentence)
        used += size
        if len(picked) >= 3:
            break
    answer = " ".join(picked) or "(empty)"
    words = answer.split()
    return " ".join(words[:max_tokens])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.openai_stub", description=__doc__)
    parser.add_argument("--port", type=int, default=7090)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--dimensions", type=int, default=1536)
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with OpenAIStub(
        port=args.port, latency_seconds=args.latency_ms / 1000, dimensions=args.dimensions
    ) as stub:
        print(f"openai stub listening on {stub.endpoint}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
