"""Rerankers: one small interface (`base.Reranker`), one file per API, chosen by `make_reranker`.

- `dashscope`: `qwen3-rerank` on DashScope's OpenAI-compatible rerank endpoint (100+ languages);
- `dashscope-text-rerank`: DashScope's own text-rerank endpoint (`gte-rerank-v2`, 50+ languages);
- `rerank-api`: any Jina/Cohere-style `/rerank` server (vLLM, llama.cpp, Jina, Cohere).
"""

from __future__ import annotations

from typing import Literal

from tools.errors import UserError
from tools.rerankers.base import Ranked, Reranker

RerankProvider = Literal["none", "dashscope", "dashscope-text-rerank", "rerank-api"]
DEFAULT_MODELS = {"dashscope": "qwen3-rerank", "dashscope-text-rerank": "gte-rerank-v2"}

__all__ = ["DEFAULT_MODELS", "Ranked", "RerankProvider", "Reranker", "make_reranker", "rerank_url"]


def rerank_url(provider: RerankProvider, base_url: str | None, dashscope_base_url: str) -> str:
    """Where the reranker is: RERANK_BASE_URL, else the DashScope region of DASHSCOPE_BASE_URL.

    DashScope's chat base `https://{host}/compatible-mode/v1` gives `https://{host}/compatible-api/v1/reranks`
    and `https://{host}/api/v1/services/rerank/text-rerank/text-rerank`.
    """
    if provider == "rerank-api":
        if not base_url:
            raise UserError("RERANK_PROVIDER=rerank-api needs RERANK_BASE_URL (e.g. http://127.0.0.1:8000/v1 for vLLM)")
        return base_url.rstrip("/") + "/rerank"
    host = (base_url or dashscope_base_url).split("/compatible-mode", 1)[0].split("/compatible-api", 1)[0].rstrip("/")
    if provider == "dashscope":
        return f"{host}/compatible-api/v1/reranks"
    return f"{host}/api/v1/services/rerank/text-rerank/text-rerank"


def make_reranker(provider: RerankProvider, model: str | None, url: str, api_key: str | None) -> Reranker | None:
    """The reranker the settings name, or None (RERANK_PROVIDER=none)."""
    if provider == "none":
        return None
    if provider.startswith("dashscope") and not api_key:
        raise UserError(f"RERANK_PROVIDER={provider} needs DASHSCOPE_API_KEY (or RERANK_API_KEY)")
    name = model or DEFAULT_MODELS.get(provider, "")
    if not name:
        raise UserError(f"RERANK_PROVIDER={provider} needs RERANK_MODEL")
    if provider == "dashscope-text-rerank":
        from tools.rerankers.dashscope_native import DashScopeTextRerank

        return DashScopeTextRerank(name, url, api_key)
    from tools.rerankers.rerank_api import RerankApi

    return RerankApi(name, url, api_key)
