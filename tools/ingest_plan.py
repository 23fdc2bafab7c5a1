"""What one batch of an ingest does to the collection, decided from what was read and what is stored: pure (no
Milvus, no embedder), so that a dry run and a real run take the same decisions, and each is tested alone.

Per document: `add` (nothing stored yet), `replace` (stored, and its chunks changed), `unchanged`, `navigation`
(only a table of contents or an index: left out, and what it held before is removed), `keep` (it cannot be read
now, or reads as empty, but held chunks before: they stay, and the file is reported; only `prune` or a delete
removes a document) or `skip` (cannot be read, nothing stored).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from tools import language
from tools.chunking import chunk_document, embedding_text, heading_text
from tools.paths import SkippedFile
from tools.readers import Document
from tools.store import ChunkRef, ChunkRow, DocKey
from tools.store.schema import TITLE_MAX, clip

Action = Literal["add", "replace", "unchanged", "navigation", "keep", "remove", "skip"]
NAVIGATION = "only navigation (a table of contents or an index): left out"
KEPT = "its chunks from before are kept (prune or delete_documents removes them)"


@dataclass(frozen=True)
class Item:
    """One document to index: where it is stored (root, source), how to name it in a skip, how to read it."""

    root: str
    source: str
    shown: str
    read: Callable[[], Document]


@dataclass(frozen=True)
class Planned:
    """What happens to one document, and how many chunks it holds afterwards (or would)."""

    source: str
    action: Action
    chunks: int
    reason: str = ""


@dataclass
class NewChunk:
    """A chunk to embed: its row, the text the embedder reads, and its section heading's text."""

    row: ChunkRow
    text: str
    heading: str


@dataclass
class BatchPlan:
    embed: list[NewChunk] = field(default_factory=list)
    move: list[ChunkRow] = field(default_factory=list)  # unchanged chunks whose place in the document changed
    delete: list[str] = field(default_factory=list)
    unchanged: int = 0
    indexed: int = 0  # documents whose chunks are now what the file holds
    navigation: int = 0  # pages (or whole files) left out as navigation
    documents: list[Planned] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def chunk_id(root: str, source: str, content_hash: str, occurrence: int) -> str:
    """A stable id: the same chunk text in the same document keeps its id across ingests."""
    document = f"{root}\x00{source}" if root else source
    return hashlib.sha256(f"{document}\x00{content_hash}\x00{occurrence}".encode()).hexdigest()[:32]


def plan_batch(
    items: list[Item],
    docs: list[Document | str],
    stored: dict[DocKey, list[ChunkRef]],
    *,
    has_root: bool,
    prune: bool,
    now: int = 0,
    has_metadata: bool = False,
) -> BatchPlan:
    """Each document read (or the reason it could not be) against its stored chunks, by (root, source); new rows
    are stamped `now`; with `has_metadata`, an unchanged chunk whose document's metadata changed is rewritten."""
    plan = BatchPlan()
    for item, doc in zip(items, docs, strict=True):
        old = stored.get((item.root, item.source), [])
        chunks = [] if isinstance(doc, str) else chunk_document(doc)
        if isinstance(doc, Document):
            plan.navigation += doc.navigation
        if not chunks:
            _unindexable(plan, item, doc, old, prune)
            continue
        assert isinstance(doc, Document)
        plan.indexed += 1
        by_id = {ref.id: ref for ref in old}
        keep: set[str] = set()
        seen: Counter[str] = Counter()
        new = 0
        for chunk in chunks:
            row = ChunkRow(
                id=chunk_id(item.root if has_root else "", item.source, chunk.content_hash, seen[chunk.content_hash]),
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
                metadata=doc.metadata,
                ingested_at=now,
            )
            seen[chunk.content_hash] += 1
            keep.add(row.id)
            previous = by_id.get(row.id)
            if previous is None:
                new += 1
                plan.embed.append(NewChunk(row, embedding_text(chunk, doc.title), heading_text(chunk, doc.title, item.source)))
            else:
                plan.unchanged += 1
                if (previous.chunk_index, previous.page_start, previous.page_end) != (
                    row.chunk_index,
                    row.page_start,
                    row.page_end,
                ) or (has_metadata and (previous.metadata or {}) != row.metadata):
                    plan.move.append(row)
        gone = [ref.id for ref in old if ref.id not in keep]
        plan.delete += gone
        action: Action = "add" if not old else "replace" if new or gone else "unchanged"
        plan.documents.append(Planned(item.source, action, len(chunks)))
    return plan


def _unindexable(plan: BatchPlan, item: Item, doc: Document | str, old: list[ChunkRef], prune: bool) -> None:
    """A document that gives no chunks: navigation only (what it held goes), or unreadable or empty now (what
    it held stays, unless pruning)."""
    if isinstance(doc, Document) and doc.navigation:
        plan.delete += [ref.id for ref in old]
        plan.documents.append(Planned(item.source, "navigation", 0, NAVIGATION))
        plan.skipped.append(SkippedFile(path=item.shown, reason=NAVIGATION))
        return
    reason = doc if isinstance(doc, str) else "no text to index"
    if old and prune:
        plan.delete += [ref.id for ref in old]
        plan.documents.append(Planned(item.source, "remove", 0, f"{reason} (prune)"))
        plan.skipped.append(SkippedFile(path=item.shown, reason=f"{reason}; its chunks from before are removed (prune)"))
    elif old:
        plan.documents.append(Planned(item.source, "keep", len(old), reason))
        plan.skipped.append(SkippedFile(path=item.shown, reason=f"{reason}; {KEPT}"))
    else:
        plan.documents.append(Planned(item.source, "skip", 0, reason))
        plan.skipped.append(SkippedFile(path=item.shown, reason=reason))
