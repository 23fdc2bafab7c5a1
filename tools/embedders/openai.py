"""`openai`: any OpenAI-compatible embeddings API (DashScope text-embedding-v4, vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import openai

from tools.embedders.base import Embedder
from tools.errors import UserError, first_error
from tools.http_errors import service_errors
from tools.redact import redact_url


class OpenAIEmbedder(Embedder):
    """Batches of `batch_size` inputs, `concurrency` requests at a time, with the client's retries (only after a
    failure: a request that succeeds is sent once).

    DashScope's text-embedding-v4 takes at most 10 inputs (and 8,192 tokens each) per request. One client per
    embedder, kept open: its connections are reused (keep-alive), and asyncio turns Nagle's delay off on them.
    The reply is read as plain JSON: the SDK's typed parsing of every float cost about 0.8 ms per query here.
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
        return [v for batch in results for v in batch]

    async def embed_query(self, text: str) -> list[float]:
        """One request, straight: no task group or limiter for a single text."""
        return (await self._embed_batch([text]))[0]

    async def warm_up(self) -> None:
        if not self.dim:
            await self.embed_query("dimension probe")

    async def close(self) -> None:
        await self._client.close()

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        extra: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        with service_errors("the embeddings API", self.base_url, "EMBEDDING_API_KEY", self.timeout_s):
            raw = await self._client.embeddings.with_raw_response.create(
                model=self.name, input=texts, encoding_format="float", **extra
            )
        try:
            data = sorted(json.loads(raw.content)["data"], key=lambda d: d["index"])
            vectors = [list(d["embedding"]) for d in data]
        except (ValueError, KeyError, TypeError):
            vectors = []
        if len(vectors) != len(texts):
            raise UserError(
                f"The embeddings API at {redact_url(self.base_url)} did not answer {len(texts)} texts with "
                f"{len(texts)} embeddings (an OpenAI-compatible `data` list)"
            )
        self.dim = len(vectors[0])
        return vectors
