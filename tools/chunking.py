"""Markdown and plain text into chunks with heading paths, offsets and hashes (pure, no I/O).

Headings come from a real Markdown parser, so a `#` inside a fenced code block is never a
heading. Every chunk is an exact slice of the document (`start`/`end` offsets), and the
chunks of a document together cover all of its text after the front matter.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

DEFAULT_MAX_CHARS = 1000
DEFAULT_OVERLAP = 150

_md = MarkdownIt("commonmark").use(front_matter_plugin)
# Text that carries no content on its own: HTML comments and unresolved doc-site includes.
_NEWLINE = re.compile(r"\r\n|\r|\n")  # as markdown-it counts lines
_WORD_START = re.compile(r"\s\S")
_NOISE = re.compile(r"<!--.*?-->|\{\{\s*fragments/[^}]*\}\}", re.DOTALL)


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: `text` is exactly `document[start:end]`."""

    text: str
    headings: tuple[str, ...]
    index: int
    start: int
    end: int
    content_hash: str


@dataclass(frozen=True)
class ChunkedDocument:
    """A document's title (from front matter or its first heading) and its chunks."""

    title: str | None
    chunks: list[Chunk] = field(default_factory=list)


@dataclass(frozen=True)
class _Section:
    start: int
    end: int
    headings: tuple[str, ...]
    heading_end: int  # offset where the section's own heading line ends


def chunk_markdown(text: str, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP) -> ChunkedDocument:
    """Split Markdown by headings, then split long sections with overlap."""
    tokens = _md.parse(text)
    line_starts = _line_starts(text)
    body_start, title = 0, None
    headings: list[tuple[int, int, int, str]] = []  # (start offset, end offset, level, text)
    for i, token in enumerate(tokens):
        if token.type == "front_matter" and token.map:
            body_start = line_starts[token.map[1]]
            title = _front_matter_title(token.content)
        elif token.type == "heading_open" and token.map:
            start, end = line_starts[token.map[0]], line_starts[token.map[1]]
            headings.append((start, end, int(token.tag[1]), tokens[i + 1].content.strip()))
    if title is None:
        title = next((h[3] for h in headings if h[2] == 1), None)
    sections = _sections(text, body_start, headings)
    return _build(text, _merge_empty(text, sections), max_chars, overlap, title)


def chunk_text(text: str, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP) -> ChunkedDocument:
    """Split plain text into paragraph-aligned chunks with overlap."""
    return _build(text, [_Section(0, len(text), (), 0)], max_chars, overlap, None)


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


def _line_starts(text: str) -> list[int]:
    """Offset of each line start, plus one past the end (markdown-it maps are line numbers)."""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    if starts[-1] != len(text):
        starts.append(len(text))
    return starts


def _front_matter_title(content: str) -> str | None:
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError:
        return None
    title = data.get("title") if isinstance(data, dict) else None
    if title is None:
        return None
    return str(title).strip() or None


def _sections(text: str, body_start: int, headings: list[tuple[int, int, int, str]]) -> list[_Section]:
    """One section per heading (plus the preamble), each carrying its heading path."""
    sections: list[_Section] = []
    if not headings or headings[0][0] > body_start:
        first = headings[0][0] if headings else len(text)
        sections.append(_Section(body_start, first, (), body_start))
    stack: list[tuple[int, str]] = []
    for i, (start, end, level, title) in enumerate(headings):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        next_start = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        sections.append(_Section(start, next_start, tuple(t for _, t in stack), end))
    return sections


def _is_empty(text: str, section: _Section) -> bool:
    return not _NOISE.sub("", text[section.heading_end : section.end]).strip()


def _merge_empty(text: str, sections: list[_Section]) -> list[_Section]:
    """Fold sections with no content into the next one (the last into the one before)."""
    merged: list[_Section] = []
    pending_start: int | None = None
    for section in sections:
        if _is_empty(text, section):
            pending_start = section.start if pending_start is None else pending_start
            continue
        if pending_start is not None:
            section = _Section(pending_start, section.end, section.headings, section.heading_end)
            pending_start = None
        merged.append(section)
    if pending_start is not None and merged:
        last = merged[-1]
        merged[-1] = _Section(last.start, sections[-1].end, last.headings, last.heading_end)
    elif pending_start is not None and _NOISE.sub("", text[pending_start:]).strip():
        # Headings and nothing else: keep them rather than lose the text.
        merged = [_Section(pending_start, sections[-1].end, sections[0].headings, pending_start)]
    return merged


def _build(
    text: str, sections: list[_Section], max_chars: int, overlap: int, title: str | None
) -> ChunkedDocument:
    chunks: list[Chunk] = []
    for section in sections:
        for start, end in _split(text, section.start, section.end, max_chars, overlap):
            start, end = _trim(text, start, end)
            if start >= end:
                continue
            piece = text[start:end]
            digest = hashlib.sha256("\x1f".join([title or "", *section.headings, piece]).encode()).hexdigest()
            chunks.append(Chunk(piece, section.headings, len(chunks), start, end, digest))
    return ChunkedDocument(title, chunks)


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
