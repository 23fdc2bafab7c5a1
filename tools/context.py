"""read_context: the text around a search hit, by its chunk_id, so an agent can read on without searching again.

Neighbouring chunks overlap (the chunker repeats up to 150 characters at a split); the passage joins them
without repeating the overlap.
"""

from __future__ import annotations

import re

from pydantic import Field

from tools.checks import shown, whole_number
from tools.errors import UserError
from tools.result import Result
from tools.search import citation, open_collection
from tools.services import Services
from tools.store import ChunkRow

MAX_AROUND = 20  # chunks before or after
ID_CHARS = 32
MAX_SECTION_CHUNKS = 200
_OVERLAP_MAX = 400  # the longest overlap looked for between neighbours (the chunker's is up to 150)
_OVERLAP_MIN = 20  # shorter matches are chance, not overlap


class ContextChunk(Result):
    chunk_id: str
    chunk_index: int = Field(description="Its place in the document, from 0")
    heading: str
    page_start: int = 0
    page_end: int = 0


class ContextResult(Result):
    """A passage around a chunk: its neighbours joined in order, and which chunks it spans."""

    source: str
    citation: str = Field(description="The source and the pages the passage spans, where known")
    title: str
    headings: list[str] = Field(description="The heading path of the chunk asked for")
    text: str = Field(description="The chunks joined in order, their overlaps removed")
    chunks: list[ContextChunk]
    first_in_document: bool = Field(description="Nothing comes before this passage in the document")
    last_in_document: bool = Field(description="Nothing comes after it")


async def read_context(
    services: Services,
    chunk_id: str,
    *,
    before: int = 1,
    after: int = 1,
    section: bool = False,
    collection: str | None = None,
) -> ContextResult:
    """The chunk `chunk_id` with `before` chunks before it and `after` after it, or with `section`, every chunk
    of its section (the chunks that share its heading path)."""
    whole_number("before", before, 0, MAX_AROUND)
    whole_number("after", after, 0, MAX_AROUND)
    if not isinstance(chunk_id, str) or not re.fullmatch(r"[0-9a-f]{8,32}", chunk_id.strip()):
        raise UserError(f"chunk_id must be a search result's id (8 to 32 hex characters), not {shown(chunk_id)}")
    info = await open_collection(services, collection)
    chunk_id = await _full_id(services, info.name, chunk_id.strip())
    found = (await services.store.fetch(info.name, [chunk_id])).get(chunk_id)
    if found is None:
        raise UserError(
            f"No chunk {chunk_id!r} in {info.name!r}: it may have been re-ingested since the search (search again for its new id)"
        )
    document, index = (found.root, found.source), found.chunk_index
    low, high = (index - MAX_SECTION_CHUNKS, index + MAX_SECTION_CHUNKS) if section else (index - before, index + after)
    rows = await services.store.document_chunks(info.name, document, max(low, 0), high + 1)  # one more: is there more?
    picked = _same_section(rows, index, found.headings) if section else [r for r in rows if r.chunk_index <= high]
    pages = [n for r in picked for n in (r.page_start, r.page_end) if n]
    return ContextResult(
        source=found.source,
        citation=citation(found.source, min(pages, default=0), max(pages, default=0), found.headings),
        title=found.title,
        headings=found.headings,
        text=_join([r.text for r in picked]),
        chunks=[
            ContextChunk(
                chunk_id=r.id,
                chunk_index=r.chunk_index,
                heading=r.headings[-1] if r.headings else "",
                page_start=r.page_start,
                page_end=r.page_end,
            )
            for r in picked
        ],
        first_in_document=picked[0].chunk_index == 0,
        last_in_document=not any(r.chunk_index > picked[-1].chunk_index for r in rows),
    )


async def _full_id(services: Services, name: str, given: str) -> str:
    """The whole id of a chunk named by a prefix (search results show the first 12 characters)."""
    if len(given) == ID_CHARS:
        return given
    matching = await services.store.ids_starting(name, given, limit=2)
    if len(matching) > 1:
        raise UserError(f"chunk_id {given!r} is the start of more than one id; give more of it")
    return matching[0] if matching else given


def _same_section(rows: list[ChunkRow], index: int, headings: list[str]) -> list[ChunkRow]:
    """The run of chunks around `index` that share its heading path."""
    by_index = {r.chunk_index: r for r in rows}
    first = last = index
    while first - 1 in by_index and by_index[first - 1].headings == headings:
        first -= 1
    while last + 1 in by_index and by_index[last + 1].headings == headings:
        last += 1
    return [by_index[i] for i in range(first, last + 1)]


def _join(texts: list[str]) -> str:
    """Neighbouring chunks joined, each overlap kept once."""
    out = texts[0] if texts else ""
    for text in texts[1:]:
        longest = min(len(out), len(text), _OVERLAP_MAX)
        overlap = next((n for n in range(longest, _OVERLAP_MIN - 1, -1) if out.endswith(text[:n])), 0)
        out += text[overlap:] if overlap else "\n\n" + text
    return out


class DocumentText(Result):
    """A whole stored document, its chunks joined back in order."""

    source: str
    title: str
    chunks: int
    text: str


async def read_document(services: Services, source: str, *, collection: str | None = None) -> DocumentText:
    """A stored document by its exact source name (the first root's, where several roots hold that name)."""
    info = await open_collection(services, collection)
    refs = (await services.store.existing(info.name, [source])).get(source, [])
    if not refs:
        raise UserError(f"No document {shown(source)} in {info.name!r}; describe_collection lists them")
    root = min(ref.root for ref in refs)
    last = max(ref.chunk_index for ref in refs if ref.root == root)
    rows = await services.store.document_chunks(info.name, (root, source), 0, last)
    return DocumentText(source=source, title=rows[0].title, chunks=len(rows), text=_join([r.text for r in rows]))
