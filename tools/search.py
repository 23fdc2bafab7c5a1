"""search_milvus_docs: embed the query, search Milvus (dense, BM25 or both), shape the results."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Literal, get_args

import anyio
from anyio.abc import TaskGroup
from pydantic import Field, PrivateAttr

from tools import defaults, globs, language
from tools.checks import shown, whole_number
from tools.defaults import Mode
from tools.errors import UserError, first_error
from tools.readers import reader_for
from tools.readers.text import READER as PLAIN
from tools.rerankers import Reranker
from tools.result import Result
from tools.services import Services
from tools.store import CollectionInfo, Hit, check_collection_name
from tools.store.filters import ContainsBy, Filter, Where, build

MODES: tuple[Mode, ...] = get_args(Mode)
ScoreKind = Literal["cosine", "bm25", "hybrid", "rerank"]
_SCORES: dict[Mode, ScoreKind] = {"dense": "cosine", "bm25": "bm25", "hybrid": "hybrid"}
MAX_QUERY_CHARS = 4000
MAX_TOP_K = 50
# Hybrid score = cosine(query, chunk) + HEADING_WEIGHT * cosine(query, section heading)
#                + BM25_WEIGHT * BM25 / best BM25 of the query, for the union of each list's top CANDIDATES.
# Weights chosen on the dev set (bench/eval_retrieval.py); results were flat for 0.2-0.3 on both.
HEADING_WEIGHT = 0.3
BM25_WEIGHT = 0.2
CANDIDATES = 50
NOTE_EXAMPLES = 5
LANGUAGES_TTL_S = 300.0  # another process may ingest meanwhile; this one forgets after its own ingests


class SearchHit(Result):
    """One retrieved chunk."""

    rank: int = Field(description="1 for the best; answer_with_qwen cites passages by it as [1], [2]")
    score: float = Field(description="See `scores` in the response")
    source: str = Field(description="The file, relative to its ingest root, or the name given to ingest_text")
    heading: str = Field(description="The chunk's nearest heading")
    headings: list[str] = Field(description="Its heading path, top first")
    text: str
    chunk_id: str = Field(description="read_context takes it (or its first 8+ characters)")
    title: str = Field("", description="The document's title, where it has one")
    page_start: int = Field(0, description="First page (or slide) the chunk is on; 0 where the format has no pages")
    page_end: int = Field(0, description="Last page (or slide) the chunk is on")
    citation: str = Field(description="How to cite the chunk's place: the source, and its page or slide where known")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="The document's metadata (front matter, author, dates, keywords), where it has any"
    )


def citation(source: str, page_start: int, page_end: int, headings: tuple[str, ...] | list[str] = ()) -> str:
    """How the source's reader cites a place in it: `manual.pdf p. 12`, `deck.pptx slides 3-4`, `faq.xlsx Sheet1
    rows 12-14`, or the source alone."""
    reader = reader_for(Path(source))
    if reader is None:
        return source if not page_start else PLAIN.cite(source, page_start, page_end, headings)
    return reader.cite(source, page_start, page_end, headings)


class SearchResponse(Result):
    """The best chunks for a query, best first."""

    results: list[SearchHit]
    mode: Mode = Field(description="The search that ran: dense where the collection has no BM25 field")
    scores: ScoreKind = Field(
        description="What `score` is: cosine (-1..1, meaning), bm25 (unbounded, word matches), hybrid (cosine + "
        "0.3 x heading cosine + 0.2 x BM25 share of the best), rerank (the reranker's relevance, 0..1); only "
        "comparable within one result"
    )
    note: str | None = Field(None, description="What to know: a filter that matched nothing, another language, a fallback")
    contains_by: ContainsBy | None = Field(
        None,
        description="How `contains` was tested, where given: like (a substring match over the text, ignoring case; "
        "Milvus Lite 2.5.1 and 2.3 have no text_match)",
    )
    _best_similarity: float | None = PrivateAttr(default=None)

    @property
    def best_similarity(self) -> float | None:
        """The best cosine similarity seen (None in bm25 mode), for answer_with_qwen's relevance check; not part
        of the tool's output."""
        return self._best_similarity


def check_query(query: str) -> str:
    query = query.strip() if isinstance(query, str) else ""
    if not query:
        raise UserError("The query is empty: give the question or words to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise UserError(f"The query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    return query


def check_top_k(top_k: int) -> int:
    return whole_number("top_k", top_k, 1, MAX_TOP_K)


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, not {shown(mode)}")
    return mode


async def open_collection(services: Services, collection: str | None) -> CollectionInfo:
    """An existing collection built by this server's embedder."""
    name = check_collection_name(collection or services.collection)
    info = await services.store.info(name)
    if info is None:
        where = services.store.connection.where()
        raise UserError(f"Collection {name!r} does not exist yet in {where}: ingest documents into it first (ingest_documents)")
    info.check_embedder(services.embedder.name, services.embedder.dim)
    return info


async def search_milvus_docs(
    services: Services,
    query: str,
    *,
    top_k: int = defaults.TOP_K,
    source: str | None = None,
    collection: str | None = None,
    mode: str | None = None,
    where: Where | None = None,
) -> SearchResponse:
    """The `top_k` best chunks for `query` in the given mode (default: the server's); `source` is a glob
    over source paths, `where` the typed filters (tools/store/filters.py)."""
    query, top_k = check_query(query), check_top_k(top_k)
    chosen = check_mode(mode or services.search_mode)
    info = await open_collection(services, collection)
    note = None
    if chosen != "dense" and not info.hybrid:
        note = (
            f"Collection {info.name!r} has no BM25 field (made by an older version or on a Milvus without BM25), "
            "so it was searched dense only; re-ingest into a new collection for bm25 and hybrid search"
        )
        chosen = "dense"
    store, glob = services.store, source or None
    flt = build(where, glob, info.fields, info.name)
    best: float | None = None
    depth = max(top_k, services.rerank_candidates) if services.reranker is not None else top_k
    if chosen == "bm25":
        hits = await store.search_bm25(info.name, query, depth, where=flt)
    elif chosen == "dense":
        hits = await store.search_dense(info.name, await services.embedder.embed_query(query), depth, where=flt)
        best = hits[0].score if hits else None
    else:
        hits, best = await _hybrid(services, info, query, depth, flt)
    scores = _SCORES[chosen]
    if services.reranker is not None and hits:
        try:
            hits, scores = await _rerank(services.reranker, query, hits), "rerank"
        except UserError as exc:
            note = f"Reranking failed, so results are in {chosen} order: {exc}"
    results = [_shape(rank, hit) for rank, hit in enumerate(hits[:top_k], start=1)]
    note = note or await _language_note(services, info.name, query)
    if not results and flt:
        note = await no_match_note(services, info.name, flt, glob) or note
    response = SearchResponse(results=results, mode=chosen, scores=scores, note=note, contains_by=flt.contains_by)
    response._best_similarity = best
    return response


async def _hybrid(
    services: Services, info: CollectionInfo, query: str, top_k: int, flt: Filter
) -> tuple[list[Hit], float | None]:
    """Candidates from the chunk vectors, heading vectors and BM25, re-scored together (see HEADING_WEIGHT)."""
    store, name, depth = services.store, info.name, max(CANDIDATES, top_k)
    vector: list[float] = []
    lists: dict[str, list[Hit]] = {}

    async def collect(kind: str, search: Awaitable[list[Hit]]) -> None:
        lists[kind] = await search

    async def embed_then_search(tg: TaskGroup) -> None:
        vector.extend(await services.embedder.embed_query(query))
        for field in info.vector_fields:
            tg.start_soon(collect, field, store.search_dense(name, vector, depth, field=field, where=flt, rows=False))

    with first_error():
        async with anyio.create_task_group() as tg:
            # BM25 needs no vector: it runs while the query is embedded (a remote embedder's round trip is hidden)
            tg.start_soon(collect, "bm25", store.search_bm25(name, query, depth, where=flt, rows=False))
            tg.start_soon(embed_then_search, tg)
    ids = sorted({h.chunk_id for hits in lists.values() for h in hits})
    if not ids:
        return [], None
    # Exact cosines for every candidate, from searches restricted to the candidates.
    exact: dict[str, dict[str, float]] = {}

    async def rescore(field: str) -> None:
        hits = await store.search_dense(name, vector, len(ids), field=field, ids=ids, rows=False)
        exact[field] = {h.chunk_id: h.score for h in hits}

    with first_error():
        async with anyio.create_task_group() as tg:
            for field in info.vector_fields:
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
    rows = await store.fetch(name, best_ids)
    hits = [Hit(cid, fused[cid], rows[cid]) for cid in best_ids if cid in rows]
    return hits, max(similarity.values(), default=None)


async def _rerank(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    """The candidates in the reranker's order, with its scores; each passage is given with its title and headings."""
    passages = []
    for hit in hits:
        assert hit.row is not None
        path = " > ".join(part for part in dict.fromkeys([hit.row.title, *hit.row.headings]) if part)
        passages.append(f"{path}\n\n{hit.row.text}" if path else hit.row.text)
    ranked = await reranker.rerank(query, passages)
    return [Hit(hits[r.index].chunk_id, r.score, hits[r.index].row) for r in ranked]


async def document_languages(services: Services, name: str) -> dict[str, float]:
    """The share of each language in a collection's chunks (sampled; cached for `LANGUAGES_TTL_S`)."""
    now = time.monotonic()
    cached = services.languages.get(name)
    if cached is None or now - cached[0] > LANGUAGES_TTL_S:
        cached = services.languages[name] = (now, language.shares(await services.store.languages(name)))
    return cached[1]


async def _language_note(services: Services, name: str, query: str) -> str | None:
    """When the query is not in a language of the documents: say which language would find more."""
    asked = language.detect(query)
    documents = language.main_languages(await document_languages(services, name))
    if asked in ("und", *documents) or not documents:
        return None
    return (
        f"This query is in {language.name(asked)} and the documents are mostly in {language.name(documents[0])}; "
        f"the same query in {language.name(documents[0])} usually finds more here."
    )


async def no_match_note(services: Services, name: str, flt: Filter, glob: str | None) -> str | None:
    """When a filter matches nothing: which of its parts matches no chunk at all (for the source glob, with a
    few sources that exist), or that each matches some chunks but none matches them all."""
    empty = []
    for part in flt.parts:
        if part.name == "source" and glob:
            if said := await _no_source_note(services, name, glob):
                return said
        elif not await services.store.any_match(name, part):
            empty.append(part.label)
    if empty:
        return f"No chunk in {name!r} matches {' nor '.join(empty)} (any other part matches some)"
    if len(flt.parts) > 1:
        return "Each part of the filter matches some chunks, but no chunk matches them all together"
    return None


async def _no_source_note(services: Services, name: str, pattern: str) -> str | None:
    """When a source filter matches no document: say so, and name a few that exist."""
    sources = sorted({source for _, source in await services.store.sources(name)})
    if any(globs.matches(s, pattern) for s in sources):
        return None
    examples = ", ".join(sources[:NOTE_EXAMPLES])
    return f"No document matches source={shown(pattern)} ({globs.RULES}). Some that exist: {examples}" + (
        f" and {len(sources) - NOTE_EXAMPLES} more (describe_collection lists them)" if len(sources) > NOTE_EXAMPLES else ""
    )


def _shape(rank: int, hit: Hit) -> SearchHit:
    row = hit.row
    assert row is not None
    return SearchHit(
        rank=rank,
        score=round(hit.score, 4),
        source=row.source,
        heading=row.headings[-1] if row.headings else "",
        headings=row.headings,
        text=row.text,
        chunk_id=hit.chunk_id,
        title=row.title,
        page_start=row.page_start,
        page_end=row.page_end,
        citation=citation(row.source, row.page_start, row.page_end, row.headings),
        metadata=row.metadata,
    )
