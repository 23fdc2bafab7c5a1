"""The common `/rerank` API (Jina's shape): DashScope's `qwen3-rerank` (`POST .../compatible-api/v1/reranks`),
vLLM, llama.cpp, Jina and Cohere: `model`, `query`, `documents`, `top_n` in; `results[].index` and
`relevance_score` out."""

from __future__ import annotations

from typing import Any

from tools.errors import UserError
from tools.rerankers.base import HttpReranker, Ranked


class RerankApi(HttpReranker):
    async def rerank(self, query: str, documents: list[str]) -> list[Ranked]:
        if not documents:
            return []
        body: dict[str, object] = {"model": self.name, "query": query, "documents": documents, "top_n": len(documents)}
        return _parse(await self.post(body), len(documents), self.url)


def _parse(answer: Any, count: int, url: str) -> list[Ranked]:
    items = answer.get("results") if isinstance(answer, dict) else None
    try:
        ranked = [Ranked(int(r["index"]), float(r["relevance_score"])) for r in items or []]
    except (KeyError, TypeError, ValueError):
        ranked = []
    if not ranked or any(not 0 <= r.index < count for r in ranked):
        raise UserError(f"The reranker at {url} answered in a shape this server does not read (expected results[])")
    return sorted(ranked, key=lambda r: -r.score)
