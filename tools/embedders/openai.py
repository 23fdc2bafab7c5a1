"""`openai`: any OpenAI-compatible embeddings API (DashScope text-embedding-v4, vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

from typing import Any

import anyio
import openai

from tools.embedders.base import Embedder
from tools.errors import first_error
from tools.http_errors import service_errors


class OpenAIEmbedder(Embedder):
    """Batches of `batch_size` inputs, `concurrency` requests at a time, with the client's retries.

    DashScope's text-embedding-v4 takes at most 10 inputs per request.
    """

    batch_size = 10
    timeout_s = 60.0

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str,
        dimensions: int | None = None,
        *,
        concurrency: int = 4,
        max_retries: int = 3,
    ) -> None:
        self.name = model
        self.dim = dimensions or 0
        self.base_url = base_url
        self.dimensions = dimensions
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "EMPTY", timeout=self.timeout_s, max_retries=max_retries
        )
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        batches = [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        results: list[list[list[float]]] = [[] for _ in batches]

        async def run(i: int) -> None:
            async with self._limiter:
                results[i] = await self._embed_batch(batches[i])

        with first_error():
            async with anyio.create_task_group() as tg:
                for i in range(len(batches)):
                    tg.start_soon(run, i)
        vectors = [v for batch in results for v in batch]
        if vectors:
            self.dim = len(vectors[0])
        return vectors

    async def warm_up(self) -> None:
        if not self.dim:
            await self.embed_query("dimension probe")

    async def close(self) -> None:
        await self._client.close()

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        with service_errors("the embeddings API", self.base_url, "EMBEDDING_API_KEY", self.timeout_s):
            response = await self._client.embeddings.create(model=self.name, input=texts, **extra)
        return [list(d.embedding) for d in sorted(response.data, key=lambda d: d.index)]
