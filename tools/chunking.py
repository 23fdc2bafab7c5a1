"""A read document into chunks with heading paths, offsets and hashes (pure, no I/O).

Every chunk is an exact slice of the document's text (`start`/`end` offsets). Sections with no content
(a heading alone, a comment, an unresolved doc-site include) fold into the next one; long sections are
split at paragraph, line or word breaks with overlap.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass

from tools.readers import Document, Section

MAX_CHARS = 1000
OVERLAP = 150
HEADING_CHARS = 300  # of a heading in each chunk's path: a heading 1 MB long, carried by each of its 1,000 chunks,
# took 4.7 GB; the heading line itself stays whole in the text

_WORD_START = re.compile(r"\s\S")
# Text that carries no content on its own: HTML comments and unresolved doc-site includes.
_NOISE = re.compile(r"<!--.*?-->|\{\{\s*fragments/[^}]*\}\}", re.DOTALL)


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: `text` is exactly `document.text[start:end]`."""

    text: str
    headings: tuple[str, ...]
    index: int
    start: int
    end: int
    content_hash: str
    page_start: int = 0  # first and last page of the chunk (1-based, or the `page_numbers` they carry); 0 without pages
    page_end: int = 0


def chunk_document(doc: Document, max_chars: int = MAX_CHARS, overlap: int = OVERLAP) -> list[Chunk]:
    """The document's chunks, in order."""
    chunks: list[Chunk] = []
    title = doc.title if doc.title is None or len(doc.title) <= HEADING_CHARS else doc.title[:HEADING_CHARS] + "…"
    for section in _merge_empty(doc.text, doc.sections):
        headings = tuple(h if len(h) <= HEADING_CHARS else h[:HEADING_CHARS] + "…" for h in section.headings)
        for start, end in _split(doc.text, section.start, section.end, max_chars, overlap):
            start, end = _trim(doc.text, start, end)
            if start >= end:
                continue
            piece = doc.text[start:end]
            digest = hashlib.sha256("\x1f".join([title or "", *headings, piece]).encode()).hexdigest()
            first, last = (
                (bisect.bisect_right(doc.pages, start), bisect.bisect_right(doc.pages, end - 1)) if doc.pages else (0, 0)
            )
            if doc.page_numbers and first:
                first, last = doc.page_numbers[first - 1], doc.page_numbers[last - 1]
            chunks.append(Chunk(piece, headings, len(chunks), start, end, digest, first, last))
    return chunks


def embedding_text(chunk: Chunk, title: str | None) -> str:
    """The text given to the embedder: document title and heading path in front of the chunk."""
    path = [h for h in chunk.headings if h != title]
    prefix = " > ".join(([title] if title else []) + path)
    return f"{prefix}\n\n{chunk.text}" if prefix else chunk.text


def heading_text(chunk: Chunk, title: str | None, source: str) -> str:
    """What a chunk's section is called: its heading, else the document title, else the file name."""
    if chunk.headings:
        return chunk.headings[-1]
    return title or re.sub(r"[_-]+", " ", source.rsplit("/", 1)[-1].rsplit(".", 1)[0])


def _is_empty(text: str, section: Section) -> bool:
    return not _NOISE.sub("", text[section.body_start : section.end]).strip()


def _merge_empty(text: str, sections: list[Section]) -> list[Section]:
    """Fold sections with no content into the next one (the last into the one before)."""
    merged: list[Section] = []
    pending_start: int | None = None
    for section in sections:
        if _is_empty(text, section):
            pending_start = section.start if pending_start is None else pending_start
            continue
        if pending_start is not None:
            section = Section(pending_start, section.end, section.headings, section.body_start)
            pending_start = None
        merged.append(section)
    if pending_start is not None and merged:
        last = merged[-1]
        merged[-1] = Section(last.start, sections[-1].end, last.headings, last.body_start)
    elif pending_start is not None and _NOISE.sub("", text[pending_start:]).strip():
        # Headings and nothing else: keep them rather than lose the text.
        merged = [Section(pending_start, sections[-1].end, sections[0].headings, pending_start)]
    return merged


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split(text: str, start: int, end: int, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """Pieces of at most `max_chars`, cut at paragraph, line or word breaks, overlapping."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = _best_break(text, start + max_chars // 2, start + max_chars)
        pieces.append((start, cut))
        if not text[cut:end].strip():
            return pieces
        start = _next_start(text, max(cut - overlap, start + 1), cut)
    pieces.append((start, end))
    return pieces


def _best_break(text: str, low: int, high: int) -> int:
    """The last paragraph break in [low, high], else line break, else space, else `high`."""
    window = text[low:high]
    for sep in ("\n\n", "\n", " "):
        pos = window.rfind(sep)
        if pos >= 0:
            return low + pos + len(sep)
    return high


def _next_start(text: str, low: int, cut: int) -> int:
    """Where the next piece starts: the first word start at or after `low`, before `cut`."""
    match = _WORD_START.search(text, max(low - 1, 0), cut)
    return match.start() + 1 if match else cut
