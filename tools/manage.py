"""Seeing and pruning what a collection holds: its sources, chunk counts, languages and embedder; removing
documents and collections."""

from __future__ import annotations

import anyio
from pydantic import Field

from tools.checks import shown, whole_number
from tools.errors import UserError
from tools.globs import matches
from tools.result import Result
from tools.search import document_languages, no_match_note, open_collection
from tools.services import Services
from tools.store import check_collection_name
from tools.store.filters import ContainsBy, Where, build

DEFAULT_LISTED = 100
MAX_LISTED = 1000


class SourceCount(Result):
    source: str
    chunks: int
    root: str = Field("", description='The ingest root the file came from ("" for text stored by name)')


class EngineReport(Result):
    """The Milvus Lite engine behind the file: one per file, shared by every process of ours that opens it."""

    pid: int
    started_here: bool = Field(description="This process started the engine; false: it joined one another process started")
    processes: int | None = Field(description="Processes sharing the engine, this one included (null: unknown)")


class CollectionReport(Result):
    """What a collection holds and what built it."""

    collection: str
    exists: bool = Field(description="False: nothing was ingested into this collection yet (see `collections`)")
    embedder: str | None = Field(None, description="The embedder that built it; searches must use the same")
    dim: int | None = Field(None, description="The embedding size")
    hybrid: bool | None = Field(None, description="Whether it has the BM25 field hybrid and bm25 searches need")
    index: str | None = Field(
        None, description="Its vector index, as made, and the search settings used on it, e.g. 'HNSW (M=16, ...)'"
    )
    chunks: int = 0
    sources: int = 0
    languages: dict[str, float] = Field(
        default_factory=dict, description="Share of each language among the chunks (sampled), e.g. {'en': 0.98}"
    )
    listed: list[SourceCount] = Field(
        default_factory=list,
        description="Sources matching `source` (and `where`: then `chunks` counts the matching chunks), up to `limit`",
    )
    matching_chunks: int | None = Field(None, description="With `where`: the chunks that pass it")
    contains_by: ContainsBy | None = Field(None, description="How `contains` was tested, where given (see search)")
    note: str | None = Field(None, description="Which part of a filter matched nothing")
    collections: list[str] = Field(description="Every collection in this Milvus")
    engine: EngineReport | None = Field(None, description="The shared Milvus Lite engine (null on a Milvus server)")


class DropResult(Result):
    collection: str
    chunks_removed: int
    collections: list[str] = Field(description="The collections left")


class DeleteResult(Result):
    collection: str
    sources_removed: list[str]
    chunks_removed: int
    dry_run: bool = Field(False, description="True: nothing was deleted; these are the sources and chunks that would be")


async def describe_collection(
    services: Services,
    *,
    collection: str | None = None,
    source: str | None = None,
    limit: int = DEFAULT_LISTED,
    where: Where | None = None,
) -> CollectionReport:
    """The collection's embedder, size, languages and sources (those matching the glob `source` and with chunks
    passing `where`, up to `limit`); for a collection that does not exist yet, that it does not, and which do."""
    whole_number("limit", limit, 1, MAX_LISTED)
    name = check_collection_name(collection or services.collection)
    if await services.store.info(name) is None:
        return CollectionReport(collection=name, exists=False, collections=await services.store.collections())
    info = await open_collection(services, name)
    counts = await services.store.sources(info.name)
    shown, note, passing = counts, None, None
    if where is not None:
        flt = build(where, source, info.fields, info.name)
        shown = await services.store.matching(info.name, flt)
        passing = sum(shown.values())
        note = None if shown else await no_match_note(services, info.name, flt, source)
    matching = sorted((key for key in shown if source is None or matches(key[1], source)), key=lambda k: (k[1], k[0]))
    return CollectionReport(
        collection=info.name,
        exists=True,
        embedder=info.embedder,
        dim=info.dim,
        hybrid=info.hybrid,
        index=info.index.describe(),
        chunks=sum(counts.values()),
        sources=len(counts),
        languages=await document_languages(services, info.name),
        listed=[SourceCount(source=s, root=root, chunks=shown[root, s]) for root, s in matching[:limit]],
        matching_chunks=passing,
        contains_by="like" if where is not None and where.contains else None,
        note=note,
        collections=await services.store.collections(),
        engine=await _engine(services),
    )


async def _engine(services: Services) -> EngineReport | None:
    # in a worker thread: it reads /proc, and waits while another call is finding or starting the engine
    status = await anyio.to_thread.run_sync(services.store.connection.engine_status)
    if status is None:
        return None
    return EngineReport(pid=status.pid, started_here=status.started_here, processes=status.processes)


async def delete_documents(
    services: Services,
    sources: list[str],
    *,
    collection: str | None = None,
    dry_run: bool = False,
    where: Where | None = None,
) -> DeleteResult:
    """Remove every chunk of the given sources (exact names or globs such as en/faq/*.md); with `where`, only of
    the documents among them that have a chunk passing it (whole documents go, never a part of one); with
    `dry_run`, only say what would be removed."""
    if not sources or not all(isinstance(s, str) and s.strip() for s in sources):
        raise UserError("Give the sources to delete: stored source names or globs (see describe_collection)")
    info = await open_collection(services, collection)
    counts = await services.store.sources(info.name)
    doomed = sorted(key for key in counts if any(matches(key[1], pattern) for pattern in sources))
    if not doomed:
        raise UserError(f"No source in {info.name!r} matches {shown(sources)}; describe_collection lists them")
    if where is not None:
        flt = build(where, None, info.fields, info.name)
        passing = await services.store.matching(info.name, flt)
        doomed = [key for key in doomed if key in passing]
        if not doomed:
            why = await no_match_note(services, info.name, flt, None)
            raise UserError(f"No document among {sources!r} has a chunk passing `where`" + (f": {why}" if why else ""))
    if not dry_run:
        await services.store.delete_documents(info.name, doomed)
        await services.store.flush(info.name)
    return DeleteResult(
        collection=info.name,
        dry_run=dry_run,
        sources_removed=sorted({source for _, source in doomed}),
        chunks_removed=sum(counts[key] for key in doomed),
    )


async def drop_collection(services: Services, collection: str) -> DropResult:
    """Delete a whole collection; it must be named exactly (no default, no pattern)."""
    if not isinstance(collection, str) or not collection.strip():
        raise UserError("Name the collection to drop exactly (describe_collection lists them)")
    name = check_collection_name(collection.strip())
    if await services.store.info(name) is None:
        existing = ", ".join(await services.store.collections()) or "none"
        raise UserError(f"There is no collection {shown(name)} to drop (collections: {existing})")
    chunks = sum((await services.store.sources(name)).values())
    await services.store.drop(name)
    services.languages.pop(name, None)
    return DropResult(collection=name, chunks_removed=chunks, collections=await services.store.collections())
