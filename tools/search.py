"""search_milvus_docs: embed the query, search Milvus (dense, BM25 or both), shape the results."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Literal

import anyio
from pydantic import BaseModel

from tools.errors import UserError, first_error
from tools.services import Services
from tools.store import OUTPUT_FIELDS, VECTOR_FIELDS, CollectionInfo, Hit, check_collection_name, check_embedder

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid")
MAX_QUERY_CHARS = 4000
MAX_TOP_K = 50
# Hybrid score = cosine(query, chunk) + HEADING_WEIGHT * cosine(query, section heading)
#                + BM25_WEIGHT * BM25 / best BM25 of the query, for the union of each list's top CANDIDATES.
# Weights chosen on the dev set (bench/eval_retrieval.py); results were flat for 0.2-0.3 on both.
HEADING_WEIGHT = 0.3
BM25_WEIGHT = 0.2
CANDIDATES = 50


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
    elif mode == "dense":
        hits = await store.search_vector(info.name, await services.embedder.embed_query(query), top_k, glob)
        best = hits[0].score if hits else None
    else:
        hits, best = await _hybrid(services, info, query, top_k, glob)
    results = [_shape(rank, hit) for rank, hit in enumerate(hits, start=1)]
    return Retrieved(response=SearchResponse(results=results, mode=mode, note=note), best_similarity=best)


async def _hybrid(
    services: Services, info: CollectionInfo, query: str, top_k: int, glob: str | None
) -> tuple[list[Hit], float | None]:
    """Candidates from the chunk vectors, heading vectors and BM25, re-scored together (see HEADING_WEIGHT)."""
    store, depth = services.store, max(CANDIDATES, top_k)
    vector = await services.embedder.embed_query(query)
    lists: dict[str, list[Hit]] = {}

    async def collect(kind: str, search: Awaitable[list[Hit]]) -> None:
        lists[kind] = await search

    with first_error():
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, "vector", store.search_vector(info.name, vector, depth, glob, output_fields=[]))
            tg.start_soon(collect, "bm25", store.search_bm25(info.name, query, depth, glob, output_fields=[]))
            if info.heading_vectors:
                search = store.search_vector(info.name, vector, depth, glob, field="heading_vector", output_fields=[])
                tg.start_soon(collect, "heading", search)
    ids = sorted({h.chunk_id for hits in lists.values() for h in hits})
    if not ids:
        return [], None
    # Exact cosines for every candidate, from searches restricted to the candidates.
    exact: dict[str, dict[str, float]] = {}

    async def rescore(field: str) -> None:
        hits = await store.search_vector(info.name, vector, len(ids), ids=ids, field=field, output_fields=[])
        exact[field] = {h.chunk_id: h.score for h in hits}

    with first_error():
        async with anyio.create_task_group() as tg:
            for field in VECTOR_FIELDS if info.heading_vectors else VECTOR_FIELDS[:1]:
                tg.start_soon(rescore, field)
    bm25 = {h.chunk_id: h.score for h in lists["bm25"]}
    top_bm25 = max(bm25.values(), default=0.0) or 1.0
    similarity = exact["vector"]
    fused = {
        cid: similarity.get(cid, 0.0)
        + HEADING_WEIGHT * exact.get("heading_vector", {}).get(cid, 0.0)
        + BM25_WEIGHT * bm25.get(cid, 0.0) / top_bm25
        for cid in ids
    }
    best_ids = sorted(fused, key=lambda cid: (-fused[cid], cid))[:top_k]
    rows = await store.fetch(info.name, best_ids, OUTPUT_FIELDS)
    hits = [Hit(cid, fused[cid], rows[cid]) for cid in best_ids if cid in rows]
    return hits, max(similarity.values(), default=None)


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
