"""search_milvus_docs: embed the query, search Milvus (dense, BM25 or both), shape the results."""

from __future__ import annotations

from typing import Literal

import anyio
from pydantic import BaseModel

from tools.errors import UserError
from tools.services import Services
from tools.store import CollectionInfo, Hit, check_collection_name, check_embedder

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")
MAX_QUERY_CHARS = 4000
MAX_TOP_K = 50
# Hybrid: weighted reciprocal rank fusion of the dense and BM25 lists (tuned on the dev set).
FUSION_DENSE_WEIGHT = 0.6
FUSION_K = 10
FUSION_DEPTH = 30


class SearchHit(BaseModel):
    """One retrieved chunk."""

    rank: int
    score: float
    source: str
    heading: str
    headings: list[str]
    text: str
    chunk_id: str


class SearchResponse(BaseModel):
    """The best chunks for a query, best first."""

    results: list[SearchHit]
    mode: Mode
    note: str | None = None


class Retrieved(BaseModel):
    """Search results plus what answering needs: the best cosine similarity seen, if any."""

    response: SearchResponse
    best_similarity: float | None


def check_query(query: str) -> str:
    query = query.strip() if isinstance(query, str) else ""
    if not query:
        raise UserError("The query is empty: give the question or words to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise UserError(f"The query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    return query


def check_top_k(top_k: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise UserError(f"top_k must be a whole number from 1 to {MAX_TOP_K}, not {top_k!r}")
    return top_k


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode  # type: ignore[return-value]


async def open_collection(services: Services, collection: str | None) -> CollectionInfo:
    """An existing collection built by this server's embedder."""
    name = check_collection_name(collection or services.collection)
    info = await services.store.info(name)
    if info is None:
        raise UserError(f"Collection {name!r} does not exist yet: ingest documents into it first (ingest_documents)")
    check_embedder(info, services.embedder.name, services.embedder.dim)
    return info


async def retrieve(
    services: Services,
    query: str,
    top_k: int = 3,
    source: str | None = None,
    collection: str | None = None,
    mode: str | None = None,
) -> Retrieved:
    """The `top_k` best chunks for `query` in the given mode (default: the server's)."""
    query, top_k = check_query(query), check_top_k(top_k)
    mode = check_mode(mode or services.search_mode)
    info = await open_collection(services, collection)
    note = None
    if mode != "dense" and not info.hybrid:
        note = (
            f"Collection {info.name!r} has no BM25 field (made by an older version or on a Milvus without BM25), "
            "so it was searched dense only; re-ingest into a new collection for bm25 and hybrid search"
        )
        mode = "dense"
    store, glob = services.store, source or None
    best: float | None = None
    if mode == "bm25":
        hits = await store.search_bm25(info.name, query, top_k, glob)
    else:
        depth = top_k if mode == "dense" else max(FUSION_DEPTH, top_k)
        dense: list[Hit] = []
        sparse: list[Hit] = []

        async def run_dense() -> None:
            nonlocal dense
            dense = await store.search_dense(info.name, await services.embedder.embed_query(query), depth, glob)

        async def run_sparse() -> None:
            nonlocal sparse
            sparse = await store.search_bm25(info.name, query, depth, glob)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_dense)
            if mode == "hybrid":
                tg.start_soon(run_sparse)
        best = dense[0].score if dense else None
        hits = dense[:top_k] if mode == "dense" else fuse(dense, sparse)[:top_k]
    results = [_shape(rank, hit) for rank, hit in enumerate(hits, start=1)]
    return Retrieved(response=SearchResponse(results=results, mode=mode, note=note), best_similarity=best)


def fuse(dense: list[Hit], sparse: list[Hit]) -> list[Hit]:
    """Weighted reciprocal rank fusion: score = w / (k + dense rank) + (1 - w) / (k + BM25 rank)."""
    scores: dict[str, float] = {}
    by_id: dict[str, Hit] = {}
    for weight, hits in ((FUSION_DENSE_WEIGHT, dense), (1 - FUSION_DENSE_WEIGHT, sparse)):
        for rank, hit in enumerate(hits, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (FUSION_K + rank)
            by_id.setdefault(hit.chunk_id, hit)
    ranked = sorted(scores, key=lambda cid: -scores[cid])
    return [Hit(cid, scores[cid], by_id[cid].fields) for cid in ranked]


def _shape(rank: int, hit: Hit) -> SearchHit:
    headings = list(hit.fields.get("headings") or [])
    return SearchHit(
        rank=rank,
        score=round(hit.score, 4),
        source=hit.fields["source"],
        heading=headings[-1] if headings else "",
        headings=headings,
        text=hit.fields["text"],
        chunk_id=hit.chunk_id,
    )


async def search_milvus_docs(
    services: Services,
    query: str,
    top_k: int = 3,
    source: str | None = None,
    collection: str | None = None,
    mode: str | None = None,
) -> SearchResponse:
    """The `top_k` chunks closest to `query`; `source` is an optional glob over source paths."""
    return (await retrieve(services, query, top_k, source, collection, mode)).response
