"""Embedders: one small interface (`base.Embedder`), one file per provider, chosen by `make_embedder`.

Models load lazily on first use, in a worker thread, so the server answers `initialize` at once.
"""

from __future__ import annotations

from typing import Literal

from tools.embedders.base import Embedder
from tools.embedders.onnx import MINILM, OnnxMiniLM
from tools.errors import UserError

Provider = Literal["local", "sentence-transformers", "openai", "dashscope"]
# EMBEDDING_PROVIDER=dashscope: DashScope's multilingual text-embedding-v4 (100+ languages) through its
# OpenAI-compatible endpoint, in DASHSCOPE_BASE_URL's region, with DASHSCOPE_API_KEY.
DASHSCOPE_EMBEDDING_MODEL = "text-embedding-v4"
DASHSCOPE_EMBEDDING_DIMENSIONS = 1024

__all__ = [
    "DASHSCOPE_EMBEDDING_DIMENSIONS",
    "DASHSCOPE_EMBEDDING_MODEL",
    "MINILM",
    "Embedder",
    "OnnxMiniLM",
    "Provider",
    "make_embedder",
]


def make_embedder(
    provider: Provider, model: str, *, base_url: str | None = None, api_key: str | None = None, dimensions: int | None = None
) -> Embedder:
    """The embedder the settings name."""
    if provider == "local":
        from tools.embedders.sentence_transformers import MINILM_NAMES

        if model not in MINILM_NAMES:
            raise UserError(
                f"The local provider runs {MINILM} only; for {model!r} use EMBEDDING_PROVIDER=sentence-transformers or openai"
            )
        return OnnxMiniLM()
    if provider == "sentence-transformers":
        from tools.embedders.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model)
    if not base_url:
        raise UserError(f"EMBEDDING_PROVIDER={provider} needs EMBEDDING_BASE_URL")
    if provider == "dashscope" and not api_key:
        raise UserError("EMBEDDING_PROVIDER=dashscope needs DASHSCOPE_API_KEY (or EMBEDDING_API_KEY)")
    from tools.embedders.openai import OpenAIEmbedder

    return OpenAIEmbedder(model, base_url, api_key or "", dimensions)
