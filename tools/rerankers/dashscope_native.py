"""DashScope's own text-rerank API (`gte-rerank-v2`): `input` and `parameters` in, `output.results` out."""

from __future__ import annotations

from typing import Any

from tools.errors import UserError
from tools.rerankers.base import HttpReranker, Ranked


class DashScopeTextRerank(HttpReranker):
    async def rerank(self, query: str, documents: list[str]) -> list[Ranked]:
        if not documents:
            return []
        body: dict[str, object] = {
            "model": self.name,
            "input": {"query": query, "documents": documents},
            "parameters": {"top_n": len(documents), "return_documents": False},
        }
        answer: Any = await self.post(body)
        try:
            results = answer["output"]["results"]
            ranked = [Ranked(int(r["index"]), float(r["relevance_score"])) for r in results]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"The reranker at {self.url} answered without output.results") from None
        return sorted(ranked, key=lambda r: -r.score)
