"""Rerankers against a strict loopback stand-in of each API, and the rerank stage of search."""

from __future__ import annotations

import pytest

from tests.rerank_stub import COMPATIBLE, GENERIC, NATIVE, relevance, run_rerank_stub
from tools.errors import UserError
from tools.ingest import ingest_documents
from tools.rerankers import make_reranker, rerank_url
from tools.search import search_milvus_docs
from tools.services import Services

pytestmark = pytest.mark.anyio
KEY = "sk-rerank-test"
QUERY = "Where does Milvus store its data and metadata?"
DOCUMENTS = ["Bananas are yellow.", "Milvus keeps metadata in etcd and data in MinIO.", "Where is the data? Milvus."]


def test_urls_follow_the_dashscope_region() -> None:
    intl = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    assert rerank_url("dashscope", None, intl) == "https://dashscope-intl.aliyuncs.com/compatible-api/v1/reranks"
    assert rerank_url("dashscope-text-rerank", None, "https://dashscope.aliyuncs.com/compatible-mode/v1") == (
        "https://dashscope.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank"
    )
    assert rerank_url("rerank-api", "http://127.0.0.1:8000/v1/", intl) == "http://127.0.0.1:8000/v1/rerank"
    with pytest.raises(UserError, match="RERANK_BASE_URL"):
        rerank_url("rerank-api", None, intl)
    with pytest.raises(UserError, match="DASHSCOPE_API_KEY"):
        make_reranker("dashscope", None, "http://x/reranks", None)
    assert make_reranker("none", None, "", None) is None


@pytest.mark.parametrize(
    ("provider", "path", "model"),
    [("dashscope", COMPATIBLE, None), ("dashscope-text-rerank", NATIVE, None), ("rerank-api", GENERIC, "bge-reranker-v2-m3")],
)
async def test_each_api_ranks_and_reports_errors(provider: str, path: str, model: str | None) -> None:
    with run_rerank_stub(KEY) as stub:
        reranker = make_reranker(provider, model, stub.base + path, KEY)  # type: ignore[arg-type]
        assert reranker is not None
        try:
            ranked = await reranker.rerank(QUERY, DOCUMENTS)
            expected = sorted(range(3), key=lambda i: (-relevance(QUERY, DOCUMENTS[i]), i))
            assert [r.index for r in ranked] == expected and ranked[0].score == relevance(QUERY, DOCUMENTS[expected[0]])
            assert stub.requests[-1]["model"] == (model or ("qwen3-rerank" if provider == "dashscope" else "gte-rerank-v2"))
            stub.fail_next = [400]
            with pytest.raises(UserError, match="answered 400: Injected fault"):
                await reranker.rerank(QUERY, DOCUMENTS)
            with pytest.raises(UserError, match="answered 400: At most 500 documents"):
                await reranker.rerank(QUERY, ["x"] * 501)
        finally:
            await reranker.close()
        wrong = make_reranker(provider, model, stub.base + path, "sk-wrong")  # type: ignore[arg-type]
        assert wrong is not None
        with pytest.raises(UserError, match="rejected the key"):
            await wrong.rerank(QUERY, DOCUMENTS)
        await wrong.close()
    secret_url = stub.base.replace("http://", "http://rr:rerank-pw-345@") + path + "?key=rerank-q-678"
    gone = make_reranker(provider, model, secret_url, KEY)  # type: ignore[arg-type]
    assert gone is not None
    with pytest.raises(UserError, match=r"Could not reach the reranker at http://\*\*\*@") as failed:
        await gone.rerank(QUERY, DOCUMENTS)  # the stand-in has stopped
    await gone.close()
    assert "rerank-pw-345" not in str(failed.value) and "rerank-q-678" not in str(failed.value)


async def test_search_reranks_its_candidates_and_falls_back_when_the_reranker_fails(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en"])
    plain = await search_milvus_docs(services, QUERY, top_k=3)
    with run_rerank_stub(KEY) as stub:
        services.reranker = make_reranker("dashscope", None, stub.base + COMPATIBLE, KEY)
        services.rerank_candidates = 20
        try:
            reranked = await search_milvus_docs(services, QUERY, top_k=3)
            sent = stub.requests[-1]
            assert len(sent["documents"]) == 20 and sent["top_n"] == 20 and sent["query"] == QUERY
            assert reranked.scores == "rerank" and plain.scores == "hybrid"
            best = max(relevance(QUERY, d) for d in sent["documents"])
            assert reranked.results[0].score == best and [h.rank for h in reranked.results] == [1, 2, 3]
            assert [h.score for h in reranked.results] == sorted((h.score for h in reranked.results), reverse=True)
            stub.fail_next = [503, 503, 503]
            fallback = await search_milvus_docs(services, QUERY, top_k=3)
            assert fallback.scores == "hybrid" and "Reranking failed" in (fallback.note or "")
            assert [h.chunk_id for h in fallback.results] == [h.chunk_id for h in plain.results]
        finally:
            await services.reranker.close()  # type: ignore[union-attr]
