"""ingest_documents: walk paths, read, chunk, embed what is new, upsert, remove what is gone.

Files go through in bounded batches: while one batch is written to Milvus the next is read,
chunked and embedded. A chunk's id comes from its source, content hash and occurrence, so an
unchanged chunk is never embedded twice, and running the same ingest again (even after a
crash half-way) converges to exactly the chunks a clean run gives.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import anyio
from pydantic import BaseModel

from tools.chunking import chunk_document, embedding_text, heading_text
from tools.errors import ProgressFn, first_error
from tools.paths import FoundFile, SkippedFile, collect
from tools.readers import Document, Unreadable, reader_for
from tools.services import Services
from tools.store import ChunkRow, CollectionInfo, check_collection_name
from tools.store.schema import SOURCE_MAX, TITLE_MAX, clip

FILES_PER_BATCH = 16


class IngestResult(BaseModel):
    """What an ingest did."""

    collection: str
    files: int
    chunks_added: int
    chunks_unchanged: int
    chunks_removed: int
    skipped: list[SkippedFile]
    seconds: float


@dataclass
class _Batch:
    """One batch, ready to write: rows to upsert and chunk ids to delete."""

    rows: list[ChunkRow]
    delete: list[str]
    added: int
    unchanged: int
    indexed: int
    processed: int


def chunk_id(source: str, content_hash: str, occurrence: int) -> str:
    """A stable id: the same chunk text in the same file keeps its id across ingests."""
    return hashlib.sha256(f"{source}\x00{content_hash}\x00{occurrence}".encode()).hexdigest()[:32]


def read_document(found: FoundFile, max_bytes: int, max_pages: int) -> Document:
    """The document in a file; raises `Unreadable` with the reason it cannot be indexed."""
    reader = reader_for(found.path)
    if reader is None:
        raise Unreadable(f"unsupported file type {found.path.suffix or '(none)'}")
    try:
        if found.path.stat().st_size > max_bytes:
            raise Unreadable(f"larger than the {max_bytes // (1024 * 1024)} MB limit (MAX_FILE_MB)")
        data = found.path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    return reader.read(data, max_pages)


async def ingest_documents(
    services: Services,
    paths: list[str],
    *,
    collection: str | None = None,
    prune: bool = False,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Ingest files, folders and globs into a collection (created on first use).

    With `prune`, chunks of files that are gone from the named folders are removed too.
    """
    started = time.perf_counter()
    name = check_collection_name(collection or services.collection)
    found = await anyio.to_thread.run_sync(collect, paths, services.roots)
    files, skipped = found.files, found.skipped
    embedder = services.embedder
    await embedder.warm_up()
    info = await services.store.ensure(name, embedder.name, embedder.dim)
    totals = {"files": 0, "added": 0, "unchanged": 0, "removed": 0}
    done = 0

    async def report(message: str) -> None:
        if progress is not None:
            await progress(done, len(files), message)

    await report(f"found {len(files)} files")
    send, receive = anyio.create_memory_object_stream[_Batch](max_buffer_size=1)

    async def write() -> None:
        nonlocal done
        async with receive:
            async for batch in receive:
                await services.store.upsert(name, batch.rows)
                await services.store.delete_ids(name, batch.delete)
                totals["files"] += batch.indexed
                totals["added"] += batch.added
                totals["unchanged"] += batch.unchanged
                totals["removed"] += len(batch.delete)
                done += batch.processed
                await report(f"{done}/{len(files)} files, {totals['added']} chunks added")

    with first_error():
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            async with send:
                for at in range(0, len(files), FILES_PER_BATCH):
                    await send.send(await _prepare(services, info, files[at : at + FILES_PER_BATCH], skipped))
    if prune:
        totals["removed"] += await _prune(services, name, found.folders, {f.source for f in files})
    if totals["added"] or totals["removed"]:
        await services.store.flush(name)
    return IngestResult(
        collection=name,
        files=totals["files"],
        chunks_added=totals["added"],
        chunks_unchanged=totals["unchanged"],
        chunks_removed=totals["removed"],
        skipped=skipped,
        seconds=round(time.perf_counter() - started, 3),
    )


async def _prune(services: Services, name: str, folders: list[str], present: set[str]) -> int:
    """Delete the chunks of sources inside `folders` whose files were not found; the count removed."""
    gone: dict[str, int] = {}
    for folder in folders:
        stored = await services.store.sources(name, folder)
        gone.update({source: n for source, n in stored.items() if source not in present})
    await services.store.delete_sources(name, sorted(gone))
    return sum(gone.values())


def _read(files: list[FoundFile], max_bytes: int, max_pages: int) -> list[Document | str]:
    """Each file's document, or the reason it cannot be indexed."""
    docs: list[Document | str] = []
    for found in files:
        try:
            docs.append(read_document(found, max_bytes, max_pages))
        except Unreadable as exc:
            docs.append(str(exc))
    return docs


async def _prepare(services: Services, info: CollectionInfo, files: list[FoundFile], skipped: list[SkippedFile]) -> _Batch:
    """Read, chunk and diff a batch of files against what is stored; embed only new chunks."""
    docs = await anyio.to_thread.run_sync(_read, files, services.max_file_bytes, services.max_pages)
    stored = await services.store.existing(info.name, [f.source for f in files])
    to_embed: list[tuple[ChunkRow, str, str]] = []  # row, chunk text to embed, section heading to embed
    to_move: list[ChunkRow] = []  # unchanged chunks whose position in the file changed
    keep: set[str] = set()
    unchanged = indexed = 0
    for found, doc in zip(files, docs, strict=True):
        chunks = [] if isinstance(doc, str) else chunk_document(doc)
        if isinstance(doc, str) or not chunks or len(found.source.encode()) > SOURCE_MAX:
            reason = doc if isinstance(doc, str) else ("no text to index" if not chunks else "path too long")
            skipped.append(SkippedFile(path=str(found.path), reason=reason))
            continue
        indexed += 1
        old = {ref.id: ref for ref in stored.get(found.source, [])}
        seen: dict[str, int] = {}
        for chunk in chunks:
            occurrence = seen.get(chunk.content_hash, 0)
            seen[chunk.content_hash] = occurrence + 1
            row = ChunkRow(
                id=chunk_id(found.source, chunk.content_hash, occurrence),
                source=found.source,
                title=clip(doc.title or "", TITLE_MAX),
                headings=list(chunk.headings),
                text=chunk.text,
                chunk_index=chunk.index,
                content_hash=chunk.content_hash,
                page_start=chunk.page_start,
                page_end=chunk.page_end,
            )
            keep.add(row.id)
            previous = old.get(row.id)
            if previous is None:
                to_embed.append((row, embedding_text(chunk, doc.title), heading_text(chunk, doc.title, found.source)))
            else:
                unchanged += 1
                if (previous.chunk_index, previous.page_start, previous.page_end) != (
                    chunk.index,
                    chunk.page_start,
                    chunk.page_end,
                ):
                    to_move.append(row)
    rows = await _embed(services, info, to_embed) + await _carry_vectors(services, info, to_move)
    delete = [ref.id for f in files for ref in stored.get(f.source, []) if ref.id not in keep]
    return _Batch(rows, delete, len(to_embed), unchanged, indexed, len(files))


async def _embed(services: Services, info: CollectionInfo, to_embed: list[tuple[ChunkRow, str, str]]) -> list[ChunkRow]:
    """Vectors for new chunks: their texts and (where the collection keeps them) section headings, in one call."""
    if not to_embed:
        return []
    texts = [text for _, text, _ in to_embed]
    if info.heading_vectors:
        texts += [heading for _, _, heading in to_embed]
    vectors = await services.embedder.embed_documents(texts)
    n = len(to_embed)
    for i, (row, _, _) in enumerate(to_embed):
        row.vector = vectors[i]
        if info.heading_vectors:
            row.heading_vector = vectors[n + i]
    return [row for row, _, _ in to_embed]


async def _carry_vectors(services: Services, info: CollectionInfo, rows: list[ChunkRow]) -> list[ChunkRow]:
    """Moved chunks keep their stored vectors (upsert rewrites the whole row)."""
    if not rows:
        return []
    stored = await services.store.fetch(info.name, [r.id for r in rows], vectors=info.vector_fields)
    for row in rows:
        row.vector, row.heading_vector = stored[row.id].vector, stored[row.id].heading_vector
    return rows
