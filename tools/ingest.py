"""ingest_documents: walk paths, chunk, embed what is new, upsert, remove what is gone.

Files go through in bounded batches: while one batch is written to Milvus the next is read,
chunked and embedded. A chunk's id comes from its source, content hash and occurrence, so an
unchanged chunk is never embedded twice, and running the same ingest again (even after a
crash half-way) converges to exactly the chunks a clean run gives.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import BaseModel

from tools.chunking import Chunk, ChunkedDocument, chunk_markdown, chunk_text, embedding_text, heading_text
from tools.errors import first_error
from tools.paths import MARKDOWN, FoundFile, Skipped, collect
from tools.services import ProgressFn, Services
from tools.store import SOURCE_MAX, VECTOR_FIELDS, CollectionInfo, check_collection_name

log = logging.getLogger(__name__)

FILES_PER_BATCH = 16


class SkippedFile(BaseModel):
    path: str
    reason: str


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
class _Prepared:
    """One batch, ready to write: rows to upsert and chunk ids to delete."""

    rows: list[dict[str, Any]]
    delete: list[str]
    added: int
    unchanged: int
    indexed: int
    processed: int


def chunk_id(source: str, content_hash: str, occurrence: int) -> str:
    """A stable id: the same chunk text in the same file keeps its id across ingests."""
    return hashlib.sha256(f"{source}\x00{content_hash}\x00{occurrence}".encode()).hexdigest()[:32]


def read_document(found: FoundFile, max_bytes: int) -> ChunkedDocument | str:
    """The chunked file, or the reason it cannot be indexed."""
    try:
        size = found.path.stat().st_size
        if size > max_bytes:
            return f"larger than the {max_bytes // (1024 * 1024)} MB limit (MAX_FILE_MB)"
        data = found.path.read_bytes()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if b"\x00" in data[:8192]:
        return "binary file, not text"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (invalid byte at offset {exc.start})"
    chunker = chunk_markdown if found.path.suffix.lower() in MARKDOWN else chunk_text
    return chunker(text)


async def ingest_documents(
    services: Services,
    paths: list[str],
    collection: str | None = None,
    progress: ProgressFn | None = None,
    prune: bool = False,
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
    send, receive = anyio.create_memory_object_stream[_Prepared](max_buffer_size=1)

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
                    batch = files[at : at + FILES_PER_BATCH]
                    await send.send(await _prepare(services, info, batch, skipped))
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
        skipped=[SkippedFile(path=s.path, reason=s.reason) for s in skipped],
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


async def _prepare(services: Services, info: CollectionInfo, files: list[FoundFile], skipped: list[Skipped]) -> _Prepared:
    """Read, chunk and diff a batch of files against what is stored; embed only new chunks."""
    name = info.name
    vector_fields = list(VECTOR_FIELDS if info.heading_vectors else VECTOR_FIELDS[:1])
    docs = await anyio.to_thread.run_sync(lambda: [read_document(f, services.max_file_bytes) for f in files])
    stored = await services.store.existing(name, [f.source for f in files])
    rows: list[dict[str, Any]] = []
    to_embed: list[tuple[dict[str, Any], str, str]] = []
    to_move: list[dict[str, Any]] = []
    keep: set[str] = set()
    unchanged = indexed = 0
    for found, doc in zip(files, docs, strict=True):
        if isinstance(doc, str) or not doc.chunks or len(found.source.encode()) > SOURCE_MAX:
            reason = doc if isinstance(doc, str) else ("no text to index" if not doc.chunks else "path too long")
            skipped.append(Skipped(str(found.path), reason))
            continue
        indexed += 1
        old = {r["id"]: r for r in stored.get(found.source, [])}
        seen: dict[str, int] = {}
        for chunk in doc.chunks:
            occurrence = seen.get(chunk.content_hash, 0)
            seen[chunk.content_hash] = occurrence + 1
            row = _row(found.source, doc, chunk, chunk_id(found.source, chunk.content_hash, occurrence))
            keep.add(row["id"])
            previous = old.get(row["id"])
            if previous is None:
                to_embed.append((row, embedding_text(chunk, doc.title), heading_text(chunk, doc.title, found.source)))
            else:
                unchanged += 1
                if previous["chunk_index"] != chunk.index:
                    to_move.append(row)
    if to_embed:
        # Chunk texts and (where the collection keeps them) section headings, in one call so they batch together.
        texts = [t for _, t, _ in to_embed] + ([h for _, _, h in to_embed] if info.heading_vectors else [])
        vectors = await services.embedder.embed_documents(texts)
        for i, (row, _, _) in enumerate(to_embed):
            row.update({field: vectors[n * len(to_embed) + i] for n, field in enumerate(vector_fields)})
            rows.append(row)
    if to_move:
        stored = await services.store.fetch(name, [r["id"] for r in to_move], vector_fields)
        for row in to_move:
            row.update({field: stored[row["id"]][field] for field in vector_fields})
            rows.append(row)
    delete = [r["id"] for f in files for r in stored.get(f.source, []) if r["id"] not in keep]
    return _Prepared(rows, delete, len(to_embed), unchanged, indexed, len(files))


def _row(source: str, doc: ChunkedDocument, chunk: Chunk, cid: str) -> dict[str, Any]:
    return {
        "id": cid,
        "text": chunk.text,
        "source": source,
        "title": (doc.title or "")[:1000],
        "headings": list(chunk.headings),
        "chunk_index": chunk.index,
        "content_hash": chunk.content_hash,
    }

