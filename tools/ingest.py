"""ingest_documents and ingest_text: read, chunk, embed what is new, upsert, remove what is gone.

Documents go through in bounded batches: while one batch is written to Milvus the next is read,
chunked and embedded. A chunk's id comes from its document (root and source), content hash and
occurrence, so an unchanged chunk is never embedded twice, and running the same ingest again (even
after a crash half-way) converges to exactly the chunks a clean run gives. A collection is created by
the first ingest that has something to store. What each batch does is decided by `tools/ingest_plan.py`,
which a dry run uses alone. A file that cannot be read now keeps the chunks it held (only prune removes them).
"""

from __future__ import annotations

import functools
import os
import stat
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from pydantic import Field

from tools import globs, web
from tools.checks import has_control
from tools.errors import ProgressFn, UserError, first_error
from tools.ingest_plan import Action, BatchPlan, Item, NewChunk, Planned, plan_batch
from tools.metadata import clean as clean_metadata
from tools.metadata import given as given_metadata
from tools.paths import Collected, FoundFile, SkippedFile, collect
from tools.progress import ProgressLog
from tools.readers import Document, Unreadable, reader_for, supported_suffixes
from tools.readers.base import time_budget
from tools.readers.markdown import parse_markdown
from tools.result import Result
from tools.services import Services
from tools.store import ChunkRef, ChunkRow, CollectionInfo, DocKey, check_collection_name
from tools.store.schema import SOURCE_MAX

FILES_PER_BATCH = 16
EMBED_SLICE = 128  # new chunks (256 texts with their headings) per embedder call: steady progress in a big batch
MAX_SKIPPED_LISTED = 100  # the result lists this many skipped files; `skipped_by_reason` counts them all
MAX_PLANNED_LISTED = 200  # a dry run lists this many documents; `planned` counts them all
MAX_TEXT_CHARS = 1_000_000  # ingest_text
MAX_URLS = 50  # ingest_url: pages fetched one after another, each within FETCH_TIMEOUT
EXCLUDED = "excluded by"


class PlannedDocument(Result):
    """What an ingest does (or, in a dry run, would do) to one document."""

    source: str
    action: Action = Field(
        description="add (new), replace (changed), unchanged, navigation (left out: only a table of contents or "
        "an index), keep (cannot be read now: its stored chunks stay), remove (prune), skip (cannot be read)"
    )
    chunks: int = Field(description="Chunks it holds afterwards")
    reason: str = ""


class IngestResult(Result):
    """What an ingest did (with `dry_run`: what it would do; nothing is embedded or changed)."""

    collection: str
    summary: str = Field(description="One line saying what happened, for people and models")
    dry_run: bool = False
    files: int = Field(description="Documents indexed (new, changed or unchanged)")
    chunks_added: int
    chunks_unchanged: int = Field(description="Chunks already stored with the same text: not embedded again")
    chunks_removed: int
    navigation_pages: int = Field(
        0, description="PDF pages and web pages left out as navigation only (tables of contents, indexes, search pages)"
    )
    kept_unreadable: int = Field(
        0, description="Documents stored before that cannot be read now (damaged, empty): their chunks are kept"
    )
    skipped: list[SkippedFile] = Field(description=f"Files passed over, with the reason (the first {MAX_SKIPPED_LISTED})")
    skipped_by_reason: dict[str, int] = Field(description="How many files were passed over, by reason")
    planned: dict[str, int] = Field(default_factory=dict, description="With dry_run: how many documents, by action")
    documents: list[PlannedDocument] = Field(
        default_factory=list, description=f"With dry_run: each document and what would happen to it (first {MAX_PLANNED_LISTED})"
    )
    seconds: float


@dataclass
class _Batch:
    """One batch, ready to write: rows to upsert, and the plan (chunk ids to delete, counts)."""

    rows: list[ChunkRow]
    plan: BatchPlan
    processed: int


def read_document(path: Path, max_bytes: int, max_pages: int) -> Document:
    """The document in a file; raises `Unreadable` with the reason it cannot be indexed."""
    reader = reader_for(path)
    if reader is None:
        raise Unreadable(f"unsupported file type {path.suffix.lower() or '(none)'}")
    limit = f"{max_bytes / 2**20:g} MB" if max_bytes >= 2**20 else f"{max_bytes / 2**10:g} KB"
    try:  # checked on the opened file, and read at most one byte past the limit: a swap after a check gains nothing
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO swapped in does not block the open
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise Unreadable("not a regular file (it was replaced while being read)")
            if info.st_size > max_bytes:
                raise Unreadable(f"larger than the {limit} limit (MAX_FILE_MB)")
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise Unreadable(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # it grew after the check
        raise Unreadable(f"larger than the {limit} limit (MAX_FILE_MB)")
    with time_budget():
        return reader.read(data, max_pages)


async def ingest_documents(
    services: Services,
    paths: list[str],
    *,
    collection: str | None = None,
    prune: bool = False,
    exclude: list[str] | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Ingest files, folders and globs into a collection.

    With `prune`, chunks of files that are gone from the named folders are removed too. Files whose source
    matches a glob in `exclude` (or in the `exclude` of the services' settings) are left out, as if absent. With
    `dry_run`, nothing is embedded or written: the result says what would be added, replaced, kept and removed.
    """
    started = time.perf_counter()
    name = check_collection_name(collection or services.collection)
    patterns = _check_patterns([*services.exclude, *(exclude or [])])
    found = await anyio.to_thread.run_sync(collect, paths, services.roots, anyio.from_thread.check_cancelled)
    _exclude(found, patterns)
    items = [_file_item(f, services) for f in found.files]
    run = _Run(services, name, found.skipped, progress, dry_run=dry_run, prune=prune)
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
    metadata: dict[str, Any] | None = None,
) -> IngestResult:
    """Store a text (a note, a fetched page, a summary) under a name of the caller's choosing, chunked like
    Markdown; the same name with the same text changes nothing, with a new text replaces the old. `metadata` is the
    document's metadata (merged over the text's own front matter)."""
    started = time.perf_counter()
    name = check_collection_name(collection or services.collection)
    source = _check_source(source)
    if not isinstance(text, str) or not text.strip():
        raise UserError("The text is empty: give the text to store")
    if len(text) > MAX_TEXT_CHARS:
        raise UserError(f"The text is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,} (store it in parts)")
    extra = given_metadata(metadata)

    def read() -> Document:
        doc = parse_markdown(text)
        merged = clean_metadata(doc.metadata | extra)
        title_given = (title or "").strip()
        return Document(doc.text, title_given or doc.title, doc.sections, doc.pages, doc.page_numbers, metadata=merged)

    run = _Run(services, name, [], None)
    await run.index([Item("", source, source, read)])
    return await run.result(started, 1)


async def ingest_url(
    services: Services, urls: list[str], *, collection: str | None = None, progress: ProgressFn | None = None
) -> IngestResult:
    """Fetch web pages (http, https) and store each under its URL, read by the reader its content type picks;
    a page that did not change changes nothing. What cannot be fetched or read is skipped with the reason."""
    started = time.perf_counter()
    name = check_collection_name(collection or services.collection)
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        raise UserError("Give one or more web page URLs, such as https://milvus.io/docs/overview.md")
    if len(urls) > MAX_URLS:
        raise UserError(f"{len(urls)} URLs given; at most {MAX_URLS} at a time")
    skipped: list[SkippedFile] = []
    items: list[Item] = []
    for url in dict.fromkeys(u.strip() for u in urls):
        try:
            page = await web.fetch(
                url,
                max_bytes=services.max_file_bytes,
                timeout_s=services.fetch_timeout_s,
                allow_private=services.allow_private_urls,
                cache=services.pages,
            )
        except web.FetchError as exc:
            skipped.append(SkippedFile(path=url, reason=str(exc)))
            continue
        reader = reader_for(Path("page" + page.suffix))
        if reader is None:
            skipped.append(SkippedFile(path=url, reason=f"no reader for this content (type or suffix {page.suffix or 'none'})"))
            continue
        items.append(Item("", _check_source(url), url, functools.partial(reader.read, page.data, services.max_pages)))
    run = _Run(services, name, skipped, progress)
    if items:
        await run.index(items)
    return await run.result(started, len(items) + len(skipped))


def _check_source(source: str) -> str:
    if not isinstance(source, str) or not source.strip():
        raise UserError("Give the text a `source` name, such as notes/meeting-2026-12-01.md")
    source = source.strip()
    if has_control(source):
        raise UserError("The source name may not contain control characters (newlines, tabs)")
    if len(source.encode()) > SOURCE_MAX:
        raise UserError(f"The source name is longer than {SOURCE_MAX} bytes")
    return source


def _check_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip() or has_control(pattern):
            raise UserError(f"Invalid exclude pattern {pattern!r}: give globs such as **/genindex*.html ({globs.RULES})")
    return [p.strip() for p in patterns]


def _exclude(found: Collected, patterns: list[str]) -> None:
    """Leave out the files whose source matches an exclude glob, each reported as skipped with the pattern."""
    if not patterns:
        return
    regexes = [(p, globs.source_glob(p)) for p in patterns]
    kept: list[FoundFile] = []
    for f in found.files:
        hit = next((p for p, regex in regexes if regex.fullmatch(f.source)), None)
        if hit is None:
            kept.append(f)
        else:
            found.skipped.append(SkippedFile(path=str(f.path), reason=f"{EXCLUDED} {hit}"))
    found.files = kept


def _file_item(found: FoundFile, services: Services) -> Item:
    return Item(
        str(found.root), found.source, str(found.path),
        lambda: read_document(found.path, services.max_file_bytes, services.max_pages),
    )  # fmt: skip


class _Run:
    """One ingest call: the collection (created when the first rows are ready), the running totals, the skips."""

    def __init__(
        self,
        services: Services,
        name: str,
        skipped: list[SkippedFile],
        progress: ProgressFn | None,
        *,
        dry_run: bool = False,
        prune: bool = False,
    ) -> None:
        self.services, self.name, self.skipped, self.progress = services, name, skipped, progress
        self.dry_run, self.prune_unreadable = dry_run, prune
        self.info: CollectionInfo | None = None
        self.files = self.added = self.unchanged = self.removed = self.done = self.navigation = 0
        self.planned: list[Planned] = []
        self.embedded = 0  # chunks embedded so far (written or not yet)
        self.log = ProgressLog(0)

    async def index(self, items: list[Item]) -> None:
        embedder = self.services.embedder
        if not self.dry_run:
            await embedder.warm_up()
        self.info = await self.services.store.info(self.name)
        if self.info is not None:
            self.info.check_embedder(embedder.name, embedder.dim)
        await self._report(len(items), f"found {len(items)} files")
        self.log = log = ProgressLog(len(items), "would ingest" if self.dry_run else "ingest")
        send, receive = anyio.create_memory_object_stream[_Batch](max_buffer_size=1)

        async def write() -> None:
            async with receive:
                async for batch in receive:
                    await self._write(batch)
                    log.update(self.done, max(self.added, self.embedded))
                    await self._report(len(items), f"{self.done}/{len(items)} files, {self.added} chunks added")

        with first_error():
            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                async with send:
                    for at in range(0, len(items), FILES_PER_BATCH):
                        await send.send(await self._prepare(items[at : at + FILES_PER_BATCH]))
        log.finish(self.done, self.added)
        if not self.dry_run and self.info is not None and (self.added or self.removed):
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
        self.planned += [Planned(source, "remove", 0, "gone from the folder (prune)") for _, source in sorted(gone)]
        self.removed += sum(gone.values())
        if gone and not self.dry_run:
            await self.services.store.delete_documents(self.name, sorted(gone))
            await self.services.store.flush(self.name)

    async def result(self, started: float, found: int) -> IngestResult:
        by_reason = Counter(s.reason for s in self.skipped)
        by_action: Counter[str] = Counter(p.action for p in self.planned)
        return IngestResult(
            collection=self.name,
            summary=self._summary(found, by_reason, by_action),
            dry_run=self.dry_run,
            files=self.files,
            chunks_added=self.added,
            chunks_unchanged=self.unchanged,
            chunks_removed=self.removed,
            navigation_pages=self.navigation,
            kept_unreadable=by_action["keep"],
            skipped=self.skipped[:MAX_SKIPPED_LISTED],
            skipped_by_reason=dict(by_reason.most_common()),
            planned=dict(by_action.most_common()) if self.dry_run else {},
            documents=[PlannedDocument(**vars(p)) for p in self.planned[:MAX_PLANNED_LISTED]] if self.dry_run else [],
            seconds=round(time.perf_counter() - started, 3),
        )

    def _summary(self, found: int, by_reason: Counter[str], by_action: Counter[str]) -> str:
        if self.dry_run:
            done = (
                f"Dry run, nothing changed: in {self.name} this would add {by_action['add']} document(s), replace "
                f"{by_action['replace']}, leave {by_action['unchanged']} unchanged and remove {by_action['remove']} "
                f"({self.added} chunks to embed, {self.unchanged} unchanged, {self.removed} to remove)"
            )
        else:
            done = (
                f"{self.files} document(s) in {self.name}: {self.added} chunks added, {self.unchanged} unchanged, "
                f"{self.removed} removed"
            )
        if self.navigation:
            done += f"; {self.navigation} page(s) of navigation only (contents, indexes) left out"
        if by_action["keep"]:
            done += f"; {by_action['keep']} document(s) cannot be read now and keep their chunks from before"
        if by_reason:
            reasons = "; ".join(f"{n} {reason}" for reason, n in by_reason.most_common(5))
            more = f"; and {len(by_reason) - 5} other reasons" if len(by_reason) > 5 else ""
            done += f". {'Would skip' if self.dry_run else 'Skipped'} {sum(by_reason.values())} file(s): {reasons}{more}"
            if any(r.startswith("unsupported file type") for r in by_reason):
                done += f" (readable types: {', '.join(supported_suffixes())})"
        if found and not self.files and not self.dry_run:
            done = f"Found {found} file(s) but could index none. " + done
        elif not found and not self.files and not self.removed:
            done = "Found no file this server can read. " + done
        return done

    async def _report(self, total: int, message: str) -> None:
        if self.progress is not None:
            await self.progress(self.done, total, message)

    async def _write(self, batch: _Batch) -> None:
        plan = batch.plan
        if not self.dry_run:
            store = self.services.store
            if batch.rows:
                await store.upsert(self.name, batch.rows)
            if plan.delete:
                await store.delete_ids(self.name, plan.delete)
        self.files += plan.indexed
        self.added += len(plan.embed)
        self.unchanged += plan.unchanged
        self.removed += len(plan.delete)
        self.navigation += plan.navigation
        self.planned += plan.documents
        self.done += batch.processed

    async def _prepare(self, items: list[Item]) -> _Batch:
        """Read and chunk a batch of documents, plan it against what is stored, and embed only new chunks."""
        docs = await anyio.to_thread.run_sync(_read_all, items)
        stored = await self._stored(items)
        plan = plan_batch(
            items, docs, stored, has_root=self._has_root, prune=self.prune_unreadable, now=int(time.time()),
            has_metadata=self.info is not None and "metadata" in self.info.fields,
        )  # fmt: skip
        self.skipped += plan.skipped
        rows = [] if self.dry_run else await self._embed(plan.embed) + await self._carry_vectors(plan.move)
        return _Batch(rows, plan, len(items))

    @property
    def _has_root(self) -> bool:
        """Whether documents are told apart by root too (collections made before roots were recorded are not)."""
        return self.info is None or "root" in self.info.fields

    async def _stored(self, items: list[Item]) -> dict[DocKey, list[ChunkRef]]:
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

    async def _embed(self, to_embed: list[NewChunk]) -> list[ChunkRow]:
        """Vectors for new chunks: their texts and (where the collection keeps them) section headings, together, in
        slices of EMBED_SLICE chunks; the collection is made here when it does not exist yet."""
        if not to_embed:
            return []
        embedder = self.services.embedder
        if self.info is None:
            self.info = await self.services.store.ensure(self.name, embedder.name, embedder.dim)
        for at in range(0, len(to_embed), EMBED_SLICE):  # a progress line may come between slices
            part = to_embed[at : at + EMBED_SLICE]
            texts = [new.text for new in part]
            if self.info.heading_vectors:
                texts += [new.heading for new in part]
            vectors = await embedder.embed_documents(texts)
            for i, new in enumerate(part):
                new.row.vector = vectors[i]
                if self.info.heading_vectors:
                    new.row.heading_vector = vectors[len(part) + i]
            self.embedded += len(part)
            self.log.update(self.done, self.embedded)
        return [new.row for new in to_embed]

    async def _carry_vectors(self, rows: list[ChunkRow]) -> list[ChunkRow]:
        """Moved chunks keep their stored vectors (upsert rewrites the whole row)."""
        if not rows or self.info is None:
            return []
        stored = await self.services.store.fetch(self.name, [r.id for r in rows], vectors=self.info.vector_fields)
        for row in rows:
            row.vector, row.heading_vector = stored[row.id].vector, stored[row.id].heading_vector
        return rows


def _read_all(items: list[Item]) -> list[Document | str]:
    """Each item's document, or the reason it cannot be indexed."""
    docs: list[Document | str] = []
    for item in items:
        try:
            docs.append(item.read())
        except Unreadable as exc:
            docs.append(str(exc))
    return docs
