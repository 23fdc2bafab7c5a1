"""EMBEDDING_PROVIDER=openai against a loopback server that is as strict as DashScope's text-embedding-v4."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.embeddings_stub import run_embeddings_stub
from tests.mcp_stdio import payload, stdio_session
from tests.rerank_stub import run_rerank_stub
from tools.embedders.openai import OpenAIEmbedder
from tools.errors import UserError

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


async def test_ingest_and_search_over_stdio_with_remote_embeddings(docs: Path, tmp_path: Path) -> None:
    with run_embeddings_stub(KEY) as stub:
        env = {
            "MILVUS_URI": str(tmp_path / "remote.db"),
            "INGEST_ROOTS": str(docs),
            **stub.settings(512, model="text-embedding-v4"),
        }
        async with stdio_session(env) as session:
            ingested = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}))
            assert ingested["chunks_added"] > 40
            hits = payload(await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"}))
            assert hits["results"][0]["heading"] == "Where does Milvus store data?"
            info = payload(await session.call_tool("describe_collection", {}))
            assert (info["embedder"], info["dim"]) == ("text-embedding-v4", 512)
        async with stdio_session({**env, "EMBEDDING_DIMENSIONS": "1024"}) as session:
            mismatch = await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"})
            assert mismatch.is_error and "built with embedder text-embedding-v4 (512 dims)" in mismatch.content[0].text


async def test_the_dashscope_preset_and_a_reranker_over_stdio(docs: Path, tmp_path: Path) -> None:
    """EMBEDDING_PROVIDER=dashscope and RERANK_PROVIDER=dashscope need only DASHSCOPE_BASE_URL and DASHSCOPE_API_KEY."""
    with run_embeddings_stub(KEY) as embeddings, run_rerank_stub(KEY) as reranks:
        base = embeddings.base_url  # http://127.0.0.1:PORT/compatible-mode/v1, as DashScope's chat base
        env = {
            "MILVUS_URI": str(tmp_path / "preset.db"),
            "INGEST_ROOTS": str(docs),
            "DASHSCOPE_BASE_URL": base,
            "DASHSCOPE_API_KEY": KEY,
            "EMBEDDING_PROVIDER": "dashscope",
            "RERANK_PROVIDER": "dashscope",
            "RERANK_BASE_URL": reranks.base + "/compatible-mode/v1",  # the rerank path follows from a DashScope base
            "RERANK_CANDIDATES": "12",
        }
        async with stdio_session(env) as session:
            ingested = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]}))
            assert ingested["chunks_added"] > 40
            info = payload(await session.call_tool("describe_collection", {}))
            assert (info["embedder"], info["dim"]) == ("text-embedding-v4", 1024)
            found = payload(await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"}))
            assert found["scores"] == "rerank" and len(found["results"]) == 3
            assert reranks.requests[-1]["path"] == "/compatible-api/v1/reranks"
            assert reranks.requests[-1]["model"] == "qwen3-rerank" and len(reranks.requests[-1]["documents"]) == 12
