"""Seeing and pruning what a collection holds: its sources, chunk counts and embedder; removing documents."""

from __future__ import annotations

import anyio
from pydantic import BaseModel, Field

from tools.errors import UserError
from tools.globs import matches
from tools.search import open_collection
from tools.services import Services

DEFAULT_LISTED = 100
MAX_LISTED = 1000


class SourceCount(BaseModel):
    source: str
    chunks: int
    root: str = Field("", description='The ingest root the file came from ("" for text stored by name)')


class EngineReport(BaseModel):
    """The Milvus Lite engine behind the file: one per file, shared by every process of ours that opens it."""

    pid: int
    started_here: bool = Field(description="This process started the engine; false: it joined one another process started")
    processes: int | None = Field(description="Processes sharing the engine, this one included (null: unknown)")


class CollectionReport(BaseModel):
    """What a collection holds and what built it."""

    collection: str
    embedder: str
    dim: int
    hybrid: bool
    chunks: int
    sources: int
    listed: list[SourceCount]
    collections: list[str]
    engine: EngineReport | None = Field(None, description="The shared Milvus Lite engine (null on a Milvus server)")


class DeleteResult(BaseModel):
    collection: str
    sources_removed: list[str]
    chunks_removed: int
    dry_run: bool = Field(False, description="True: nothing was deleted; these are the sources and chunks that would be")


async def describe_collection(
    services: Services, *, collection: str | None = None, source: str | None = None, limit: int = DEFAULT_LISTED
) -> CollectionReport:
    """The collection's embedder, size and sources (those matching the glob `source`, up to `limit`)."""
    if not 1 <= limit <= MAX_LISTED:
        raise UserError(f"limit must be from 1 to {MAX_LISTED}, not {limit}")
    info = await open_collection(services, collection)
    counts = await services.store.sources(info.name)
    matching = sorted((key for key in counts if source is None or matches(key[1], source)), key=lambda k: (k[1], k[0]))
    return CollectionReport(
        collection=info.name,
        embedder=info.embedder,
        dim=info.dim,
        hybrid=info.hybrid,
        chunks=sum(counts.values()),
        sources=len(counts),
        listed=[SourceCount(source=s, root=root, chunks=counts[root, s]) for root, s in matching[:limit]],
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
    services: Services, sources: list[str], *, collection: str | None = None, dry_run: bool = False
) -> DeleteResult:
    """Remove every chunk of the given sources (exact names or globs such as en/faq/*.md); with `dry_run`, only
    say what would be removed."""
    if not sources or not all(isinstance(s, str) and s.strip() for s in sources):
        raise UserError("Give the sources to delete: stored source names or globs (see describe_collection)")
    info = await open_collection(services, collection)
    counts = await services.store.sources(info.name)
    doomed = sorted(key for key in counts if any(matches(key[1], pattern) for pattern in sources))
    if not doomed:
        raise UserError(f"No source in {info.name!r} matches {sources!r}; describe_collection lists them")
    if not dry_run:
        await services.store.delete_documents(info.name, doomed)
        await services.store.flush(info.name)
    return DeleteResult(
        collection=info.name,
        dry_run=dry_run,
        sources_removed=sorted({source for _, source in doomed}),
        chunks_removed=sum(counts[key] for key in doomed),
    )
