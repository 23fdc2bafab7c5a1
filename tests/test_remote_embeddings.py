"""EMBEDDING_PROVIDER=openai against a loopback server that is as strict as DashScope's text-embedding-v4."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import memory_session, payload, server_env
from tests.embeddings_stub import EmbeddingsStub, run_embeddings_stub
from tests.rerank_stub import RerankStub
from tools.embedders.openai import OpenAIEmbedder
from tools.errors import UserError
from tools.ingest import ingest_text
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store import Store

pytestmark = pytest.mark.anyio
KEY = "sk-embed-test"


async def test_batches_concurrency_retries_and_errors() -> None:
    closing: list[OpenAIEmbedder] = []
    try:
        await _batches_concurrency_retries_and_errors(closing)
    finally:
        for embedder in closing:
            await embedder.close()


async def _batches_concurrency_retries_and_errors(closing: list[OpenAIEmbedder]) -> None:
    with run_embeddings_stub(KEY) as stub:
        embedder = OpenAIEmbedder("text-embedding-v4", stub.base_url, KEY, dimensions=256, concurrency=3)
        closing.append(embedder)
        texts = [f"chunk number {i} about vectors" for i in range(95)]
        vectors = await embedder.embed_documents(texts)
        assert len(vectors) == 95 and len(vectors[0]) == 256 == embedder.dim
        assert stub.requests == 10  # at most 10 inputs per request
        assert 1 < stub.max_in_flight <= 3  # concurrent, but bounded
        stub.fail_next = [429, 429]
        assert len(await embedder.embed_documents(texts[:5])) == 5  # retried with backoff
        stub.fail_next = [500] * 10
        with pytest.raises(UserError, match="answered 500"):
            await embedder.embed_documents(texts[:5])
    with run_embeddings_stub("another-key") as stub:
        closing += [
            OpenAIEmbedder("text-embedding-v4", stub.base_url, KEY),
            OpenAIEmbedder("text-embedding-v4", stub.base_url, "another-key", dimensions=100),
            OpenAIEmbedder("text-embedding-v4", "http://127.0.0.1:9/v1", KEY, max_retries=0),
        ]
        with pytest.raises(UserError, match="rejected the key"):
            await closing[-3].embed_documents(["x"])
        with pytest.raises(UserError, match="answered 400: dimensions must be"):
            await closing[-2].embed_query("x")
    with pytest.raises(UserError, match="Could not reach"):
        await closing[-1].embed_query("x")


async def test_a_search_embeds_its_query_once_in_one_request_in_every_mode(tmp_path: Path) -> None:
    """Hybrid searches the heading vectors too, with the same query vector; a query needs no batching."""
    with run_embeddings_stub(KEY) as stub:
        stub.delay_s = 0
        embedder = OpenAIEmbedder("text-embedding-v4", stub.base_url, KEY, dimensions=64)
        services = Services(store=Store(str(tmp_path / "m.db")), embedder=embedder, roots=[tmp_path])
        try:
            await ingest_text(services, "# Storage\n\nMilvus keeps data in object storage.", "notes.md")
            for mode in ("dense", "hybrid"):
                before = stub.requests
                found = await search_milvus_docs(services, "where is data stored", mode=mode)
                assert found.mode == mode and found.results[0].source == "notes.md"
                assert stub.requests - before == 1
            stub.model = lambda texts: []  # a reply without the embeddings asked for
            with pytest.raises(UserError, match="did not answer 1 texts with 1 embeddings"):
                await embedder.embed_query("x")
        finally:
            services.store.close()
            await embedder.close()


async def test_ingest_and_search_over_mcp_with_remote_embeddings(docs: Path, tmp_path: Path, embeddings: EmbeddingsStub) -> None:
    env = server_env(tmp_path / "remote.db", docs, **embeddings.settings(512, model="text-embedding-v4"))
    async with memory_session(env) as session:
        ingested = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}))
        assert ingested["chunks_added"] > 40
        hits = payload(await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"}))
        assert hits["results"][0]["heading"] == "Where does Milvus store data?"
        info = payload(await session.call_tool("describe_collection", {}))
        assert (info["embedder"], info["dim"]) == ("text-embedding-v4", 512)
    async with memory_session({**env, "EMBEDDING_DIMENSIONS": "1024"}) as session:
        mismatch = await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"})
        assert mismatch.is_error and "built with embedder text-embedding-v4 (512 dims)" in mismatch.content[0].text


async def test_the_dashscope_preset_and_a_reranker_over_mcp(
    docs: Path, tmp_path: Path, embeddings: EmbeddingsStub, reranks: RerankStub
) -> None:
    """EMBEDDING_PROVIDER=dashscope and RERANK_PROVIDER=dashscope need only DASHSCOPE_BASE_URL and DASHSCOPE_API_KEY."""
    reranks.api_key = embeddings.api_key  # one DashScope key for both
    env = server_env(
        tmp_path / "preset.db",
        docs,
        DASHSCOPE_BASE_URL=embeddings.base_url,  # http://127.0.0.1:PORT/compatible-mode/v1, as DashScope's chat base
        DASHSCOPE_API_KEY=embeddings.api_key,
        EMBEDDING_PROVIDER="dashscope",
        RERANK_PROVIDER="dashscope",
        RERANK_BASE_URL=reranks.base + "/compatible-mode/v1",  # the rerank path follows from a DashScope base
        RERANK_CANDIDATES="12",
    )
    async with memory_session(env) as session:
        ingested = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]}))
        assert ingested["chunks_added"] > 40
        info = payload(await session.call_tool("describe_collection", {}))
        assert (info["embedder"], info["dim"]) == ("text-embedding-v4", 1024)
        found = payload(await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"}))
        assert found["scores"] == "rerank" and len(found["results"]) == 3
        assert reranks.requests[-1]["path"] == "/compatible-api/v1/reranks"
        assert reranks.requests[-1]["model"] == "qwen3-rerank" and len(reranks.requests[-1]["documents"]) == 12
