"""search_milvus_docs: embed the query, search Milvus, shape the results."""

from __future__ import annotations

from pydantic import BaseModel

from tools.errors import UserError
from tools.services import Services
from tools.store import CollectionInfo, check_collection_name, check_embedder

MAX_QUERY_CHARS = 4000
MAX_TOP_K = 50


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


async def open_collection(services: Services, collection: str | None) -> CollectionInfo:
    """An existing collection built by this server's embedder."""
    name = check_collection_name(collection or services.collection)
    info = await services.store.info(name)
    if info is None:
        raise UserError(f"Collection {name!r} does not exist yet: ingest documents into it first (ingest_documents)")
    check_embedder(info, services.embedder.name, services.embedder.dim)
    return info


async def search_milvus_docs(
    services: Services, query: str, top_k: int = 3, source: str | None = None, collection: str | None = None
) -> SearchResponse:
    """The `top_k` chunks closest to `query`; `source` is an optional glob over source paths."""
    query, top_k = check_query(query), check_top_k(top_k)
    info = await open_collection(services, collection)
    vector = await services.embedder.embed_query(query)
    hits = await services.store.search_dense(info.name, vector, top_k, source or None)
    return SearchResponse(
        results=[
            SearchHit(
                rank=rank,
                score=round(hit.score, 4),
                source=hit.fields["source"],
                heading=(hit.fields.get("headings") or [""])[-1],
                headings=list(hit.fields.get("headings") or []),
                text=hit.fields["text"],
                chunk_id=hit.chunk_id,
            )
            for rank, hit in enumerate(hits, start=1)
        ]
    )
