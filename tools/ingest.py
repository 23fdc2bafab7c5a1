"""ingest_documents and ingest_text: read, chunk, embed what is new, upsert, remove what is gone.

Documents go through in bounded batches: while one batch is written to Milvus the next is read,
chunked and embedded. A chunk's id comes from its document (root and source), content hash and
occurrence, so an unchanged chunk is never embedded twice, and running the same ingest again (even
after a crash half-way) converges to exactly the chunks a clean run gives. A collection is created by
the first ingest that has something to store.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.from_thread
from pydantic import Field

from tools import language
from tools.checks import has_control
from tools.chunking import chunk_document, embedding_text, heading_text
from tools.errors import ProgressFn, UserError, first_error
from tools.paths import FoundFile, SkippedFile, collect
from tools.readers import Document, Unreadable, reader_for, supported_suffixes
from tools.readers.markdown import parse_markdown
from tools.result import Result
from tools.services import Services
from tools.store import ChunkRef, ChunkRow, CollectionInfo, DocKey, check_collection_name
from tools.store.schema import SOURCE_MAX, TITLE_MAX, clip

FILES_PER_BATCH = 16
MAX_SKIPPED_LISTED = 100  # the result lists this many skipped files; `skipped_by_reason` counts them all
MAX_TEXT_CHARS = 1_000_000  # ingest_text


class IngestResult(Result):
    """What an ingest did."""

    collection: str
    summary: str = Field(description="One line saying what happened, for people and models")
    files: int = Field(description="Documents indexed (new, changed or unchanged)")
    chunks_added: int
    chunks_unchanged: int = Field(description="Chunks already stored with the same text: not embedded again")
    chunks_removed: int
    skipped: list[SkippedFile] = Field(description=f"Files passed over, with the reason (the first {MAX_SKIPPED_LISTED})")
    skipped_by_reason: dict[str, int] = Field(description="How many files were passed over, by reason")
    seconds: float


@dataclass(frozen=True)
class _Item:
    """One document to index: where it is stored (root, source), how to name it in a skip, how to read it."""

    root: str
    source: str
    shown: str
    read: Callable[[], Document]


@dataclass
class _Batch:
    """One batch, ready to write: rows to upsert and chunk ids to delete."""

    rows: list[ChunkRow]
    delete: list[str]
    added: int
    unchanged: int
    indexed: int
    processed: int


def chunk_id(root: str, source: str, content_hash: str, occurrence: int) -> str:
    """A stable id: the same chunk text in the same document keeps its id across ingests."""
    document = f"{root}\x00{source}" if root else source
    return hashlib.sha256(f"{document}\x00{content_hash}\x00{occurrence}".encode()).hexdigest()[:32]


def read_document(path: Path, max_bytes: int, max_pages: int) -> Document:
    """The document in a file; raises `Unreadable` with the reason it cannot be indexed."""
    reader = reader_for(path)
    if reader is None:
        raise Unreadable(f"unsupported file type {path.suffix.lower() or '(none)'}")
    try:
        if path.stat().st_size > max_bytes:
            limit = f"{max_bytes / 2**20:g} MB" if max_bytes >= 2**20 else f"{max_bytes / 2**10:g} KB"
            raise Unreadable(f"larger than the {limit} limit (MAX_FILE_MB)")
        data = path.read_bytes()
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
    """Ingest files, folders and globs into a collection.

    With `prune`, chunks of files that are gone from the named folders are removed too.
    """
    started = time.perf_counter()
    name = check_collection_name(collection or services.collection)
    found = await anyio.to_thread.run_sync(collect, paths, services.roots, anyio.from_thread.check_cancelled)
    items = [_file_item(f, services) for f in found.files]
    run = _Run(services, name, found.skipped, progress)
    await run.index(items)
    if prune:
        await run.prune(found.folders, {(str(f.root), f.source) for f in found.files})
    return await run.result(started, found.found)


async def ingest_text(
    services: Services,
    text: str,
    source: str,
    *,
    title: str | None = None,
    collection: str | None = None,
) -> IngestResult:
    """Store a text (a note, a fetched page, a summary) under a name of the caller's choosing, chunked like
    Markdown; the same name with the same text changes nothing, with a new text replaces the old."""
    started = time.perf_counter()
    name = check_collection_name(collection or services.collection)
    source = _check_source(source)
    if not isinstance(text, str) or not text.strip():
        raise UserError("The text is empty: give the text to store")
    if len(text) > MAX_TEXT_CHARS:
        raise UserError(f"The text is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,} (store it in parts)")

    def read() -> Document:
        doc = parse_markdown(text)
        return doc if not title else Document(doc.text, title.strip() or doc.title, doc.sections, doc.pages)

    run = _Run(services, name, [], None)
    await run.index([_Item("", source, source, read)])
    return await run.result(started, 1)


def _check_source(source: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise UserError("Give the text a `source` name, such as notes/meeting-2026-12-01.md")
    source = source.strip()
    if has_control(source):
        raise UserError("The source name may not contain control characters (newlines, tabs)")
    if len(source.encode()) > SOURCE_MAX:
        raise UserError(f"The source name is longer than {SOURCE_MAX} bytes")
    return source


def _file_item(found: FoundFile, services: Services) -> _Item:
    return _Item(
        str(found.root), found.source, str(found.path),
        lambda: read_document(found.path, services.max_file_bytes, services.max_pages),
    )  # fmt: skip


class _Run:
    """One ingest call: the collection (created when the first rows are ready), the running totals, the skips."""

    def __init__(self, services: Services, name: str, skipped: list[SkippedFile], progress: ProgressFn | None) -> None:
        self.services, self.name, self.skipped, self.progress = services, name, skipped, progress
        self.info: CollectionInfo | None = None
        self.files = self.added = self.unchanged = self.removed = self.done = 0

    async def index(self, items: list[_Item]) -> None:
        embedder = self.services.embedder
        await embedder.warm_up()
        self.info = await self.services.store.info(self.name)
        if self.info is not None:
            self.info.check_embedder(embedder.name, embedder.dim)
        await self._report(len(items), f"found {len(items)} files")
        send, receive = anyio.create_memory_object_stream[_Batch](max_buffer_size=1)

        async def write() -> None:
            async with receive:
                async for batch in receive:
                    await self._write(batch)
                    await self._report(len(items), f"{self.done}/{len(items)} files, {self.added} chunks added")

        with first_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                async with send:
                    for at in range(0, len(items), FILES_PER_BATCH):
                        await send.send(await self._prepare(items[at : at + FILES_PER_BATCH]))
        if self.info is not None and (self.added or self.removed):
            await self.services.store.flush(self.name)
            self.services.languages.pop(self.name, None)

    async def prune(self, folders: list[tuple[Path, str]], present: set[DocKey]) -> None:
        """Delete the chunks of documents inside `folders` (each under its own root) whose files were not found."""
        if self.info is None:
            return
        gone: dict[DocKey, int] = {}
        for root, folder in folders:
            stored = await self.services.store.sources(self.name, folder, root=str(root))
            if self._has_root:
                gone.update({key: n for key, n in stored.items() if key[0] == str(root) and key not in present})
            else:  # older collections: documents are told apart by source alone
                gone.update({key: n for key, n in stored.items() if key[1] not in {s for _, s in present}})
        if gone:
            await self.services.store.delete_documents(self.name, sorted(gone))
            await self.services.store.flush(self.name)
            self.removed += sum(gone.values())

    async def result(self, started: float, found: int) -> IngestResult:
        by_reason = Counter(s.reason for s in self.skipped)
        return IngestResult(
            collection=self.name,
            summary=self._summary(found, by_reason),
            files=self.files,
            chunks_added=self.added,
            chunks_unchanged=self.unchanged,
            chunks_removed=self.removed,
            skipped=self.skipped[:MAX_SKIPPED_LISTED],
            skipped_by_reason=dict(by_reason.most_common()),
            seconds=round(time.perf_counter() - started, 3),
        )

    def _summary(self, found: int, by_reason: Counter[str]) -> str:
        done = (
            f"{self.files} document(s) in {self.name}: {self.added} chunks added, {self.unchanged} unchanged, "
            f"{self.removed} removed"
        )
        if by_reason:
            reasons = "; ".join(f"{n} {reason}" for reason, n in by_reason.most_common(5))
            more = f"; and {len(by_reason) - 5} other reasons" if len(by_reason) > 5 else ""
            done += f". Skipped {sum(by_reason.values())} file(s): {reasons}{more}"
            if any(r.startswith("unsupported file type") for r in by_reason):
                done += f" (readable types: {', '.join(supported_suffixes())})"
        if found and not self.files:
            done = f"Found {found} file(s) but could index none. " + done
        elif not found and not self.files and not self.removed:
            done = "Found no file this server can read. " + done
        return done

    async def _report(self, total: int, message: str) -> None:
        if self.progress is not None:
            await self.progress(self.done, total, message)

    async def _write(self, batch: _Batch) -> None:
        store = self.services.store
        if batch.rows:
            await store.upsert(self.name, batch.rows)
        if batch.delete:
            await store.delete_ids(self.name, batch.delete)
        self.files += batch.indexed
        self.added += batch.added
        self.unchanged += batch.unchanged
        self.removed += len(batch.delete)
        self.done += batch.processed

    async def _prepare(self, items: list[_Item]) -> _Batch:
        """Read, chunk and diff a batch of documents against what is stored; embed only new chunks."""
        docs = await anyio.to_thread.run_sync(_read_all, items)
        stored = await self._stored(items)
        to_embed: list[tuple[ChunkRow, str, str]] = []  # row, chunk text to embed, section heading to embed
        to_move: list[ChunkRow] = []  # unchanged chunks whose place in the document changed
        keep: set[str] = set()
        unchanged = indexed = 0
        for item, doc in zip(items, docs, strict=True):
            chunks = [] if isinstance(doc, str) else chunk_document(doc)
            if isinstance(doc, str) or not chunks:
                self.skipped.append(SkippedFile(path=item.shown, reason=doc if isinstance(doc, str) else "no text to index"))
                continue
            indexed += 1
            old = {ref.id: ref for ref in stored.get((item.root, item.source), [])}
            seen: Counter[str] = Counter()
            for chunk in chunks:
                row = ChunkRow(
                    id=chunk_id(item.root if self._has_root else "", item.source, chunk.content_hash, seen[chunk.content_hash]),
                    source=item.source,
                    root=item.root,
                    title=clip(doc.title or "", TITLE_MAX),
                    headings=list(chunk.headings),
                    text=chunk.text,
                    chunk_index=chunk.index,
                    content_hash=chunk.content_hash,
                    page_start=chunk.page_start,
                    page_end=chunk.page_end,
                    lang=language.detect(chunk.text),
                )
                seen[chunk.content_hash] += 1
                keep.add(row.id)
                previous = old.get(row.id)
                if previous is None:
                    to_embed.append((row, embedding_text(chunk, doc.title), heading_text(chunk, doc.title, item.source)))
                else:
                    unchanged += 1
                    if (previous.chunk_index, previous.page_start, previous.page_end) != (
                        row.chunk_index,
                        row.page_start,
                        row.page_end,
                    ):
                        to_move.append(row)
        rows = await self._embed(to_embed) + await self._carry_vectors(to_move)
        delete = [ref.id for item in items for ref in stored.get((item.root, item.source), []) if ref.id not in keep]
        return _Batch(rows, delete, len(to_embed), unchanged, indexed, len(items))

    @property
    def _has_root(self) -> bool:
        """Whether documents are told apart by root too (collections made before roots were recorded are not)."""
        return self.info is None or "root" in self.info.fields

    async def _stored(self, items: list[_Item]) -> dict[DocKey, list[ChunkRef]]:
        """What is stored of these documents, by (root, source)."""
        if self.info is None:
            return {}
        refs = await self.services.store.existing(self.name, sorted({item.source for item in items}))
        wanted = {(item.root if self._has_root else "", item.source) for item in items}
        stored: dict[DocKey, list[ChunkRef]] = {}
        for source_refs in refs.values():
            for ref in source_refs:
                if (ref.root, ref.source) in wanted:
                    stored.setdefault((ref.root, ref.source), []).append(ref)
        if not self._has_root:  # older collections: one document per source, whatever its root
            stored = {(item.root, item.source): stored.get(("", item.source), []) for item in items}
        return stored

    async def _embed(self, to_embed: list[tuple[ChunkRow, str, str]]) -> list[ChunkRow]:
        """Vectors for new chunks: their texts and (where the collection keeps them) section headings, in one call;
        the collection is made here when it does not exist yet."""
        if not to_embed:
            return []
        embedder = self.services.embedder
        if self.info is None:
            self.info = await self.services.store.ensure(self.name, embedder.name, embedder.dim)
        texts = [text for _, text, _ in to_embed]
        if self.info.heading_vectors:
            texts += [heading for _, _, heading in to_embed]
        vectors = await embedder.embed_documents(texts)
        n = len(to_embed)
        for i, (row, _, _) in enumerate(to_embed):
            row.vector = vectors[i]
            if self.info.heading_vectors:
                row.heading_vector = vectors[n + i]
        return [row for row, _, _ in to_embed]

    async def _carry_vectors(self, rows: list[ChunkRow]) -> list[ChunkRow]:
        """Moved chunks keep their stored vectors (upsert rewrites the whole row)."""
        if not rows or self.info is None:
            return []
        stored = await self.services.store.fetch(self.name, [r.id for r in rows], vectors=self.info.vector_fields)
        for row in rows:
            row.vector, row.heading_vector = stored[row.id].vector, stored[row.id].heading_vector
        return rows


def _read_all(items: list[_Item]) -> list[Document | str]:
    """Each item's document, or the reason it cannot be indexed."""
    docs: list[Document | str] = []
    for item in items:
        try:
            docs.append(item.read())
        except Unreadable as exc:
            docs.append(str(exc))
    return docs
