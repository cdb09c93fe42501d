"""The AI work behind summarize and embed jobs: two small provider protocols and their
implementations (Azure OpenAI through the `openai` SDK; a local MiniLM model, offline)."""

from shared.ai.base import Embedder, Embeddings, Summarizer, Summary, SummaryRequest, Usage

__all__ = ["Embedder", "Embeddings", "Summarizer", "Summary", "SummaryRequest", "Usage"]
