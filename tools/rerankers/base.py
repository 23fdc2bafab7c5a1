"""The Reranker interface: a query and candidate passages in, a relevance score for each out.

Scores are the reranker's own (DashScope's are 0-1, comparable only within one request), never cosines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from tools.http_errors import service_errors


@dataclass(frozen=True)
class Ranked:
    index: int  # into the documents given
    score: float


class Reranker(ABC):
    """Reorders search candidates by a model that reads the query and each passage together."""

    name: str

    @abstractmethod
    async def rerank(self, query: str, documents: list[str]) -> list[Ranked]:
        """A score for every document, best first."""

    async def close(self) -> None:  # noqa: B027 (most rerankers hold a client to close; the base has none)
        """Release connections."""


class HttpReranker(Reranker):
    """A reranker behind one JSON POST endpoint, through the `openai` client for its retries (429, 5xx,
    connection errors), timeout and errors."""

    timeout_s = 30.0
    max_retries = 2

    def __init__(self, name: str, url: str, api_key: str | None) -> None:
        import openai  # only where a reranker is set up (tools/llm.py says why)

        self.name, self.url = name, url
        base, self._path = url.rsplit("/", 1)
        self._client = openai.AsyncOpenAI(
            base_url=base, api_key=api_key or "EMPTY", timeout=self.timeout_s, max_retries=self.max_retries
        )

    async def post(self, body: dict[str, object]) -> object:
        with service_errors("the reranker", self.url, "RERANK_API_KEY or DASHSCOPE_API_KEY", self.timeout_s):
            return await self._client.post(f"/{self._path}", body=body, cast_to=object)

    async def close(self) -> None:
        await self._client.close()
