"""One `Document` from blocks of text in reading order, for the formats that are not text already (PDF, DOCX,
PPTX, HTML): headings open sections and extend the heading path, pages (or slides) mark where they start.

Blocks are joined by a blank line; a heading is a line of its own, so its section's body starts after it and a
heading with nothing under it is recognised as empty by the chunker.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from tools.readers.base import Document, Section, Unreadable

SEPARATOR = "\n\n"
_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    """Whitespace (line breaks, tabs, runs of spaces) collapsed to single spaces, ends stripped."""
    return _SPACES.sub(" ", text).strip()


class DocumentBuilder:
    """Collects blocks, headings and page starts; `build` returns the `Document`."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._stack: list[tuple[int, str]] = []
        self._sections: list[tuple[int, int, tuple[str, ...]]] = []  # (start, body start, heading path)
        self._pending: tuple[str, ...] | None = None  # a section that opens at the next block
        self._pages: list[int] = []
        self._pending_pages = 0
        self._paged = False
        self._tight = False  # the last block was a list item: the next one joins it with a line break
        self.headings: list[tuple[int, str]] = []  # every heading emitted, in order: (level, text)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._stack)

    def page(self) -> None:
        """The next block is on a new page (call once per page, before its blocks, empty pages too)."""
        self._paged = True
        self._pending_pages += 1

    def heading(self, level: int, title: str, *, in_text: bool = True) -> None:
        """A heading: pops the path to `level - 1` and pushes `title`. Its line opens a section; with
        `in_text=False` (a PDF bookmark whose title is not found on its page) the section opens at the next block."""
        title = one_line(title)
        if not title:
            return
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))
        self.headings.append((level, title))
        if in_text:
            start = self._append(title)
            self._sections.append((start, self._length, self.path))
            self._pending = None
        else:
            self._pending = self.path

    def label(self, text: str) -> None:
        """A line that stands alone and opens a section without joining the heading path (a document's title
        paragraph): with nothing under it, it folds into the next section."""
        text = one_line(text)
        if text:
            start = self._append(text)
            self._sections.append((start, self._length, self.path))
            self._pending = None

    def section(self, headings: tuple[str, ...] = ()) -> None:
        """Open a section at the next block, under `headings` (which replace the path), with no heading line."""
        self._stack = [(level, title) for level, title in enumerate(headings, start=1)]
        self._pending = headings

    def block(self, text: str, *, item: bool = False) -> None:
        """A paragraph, table or code block: leading blank lines and trailing space dropped, the rest kept.
        List items (`item=True`) in a row are joined by line breaks, as one block."""
        text = text.rstrip().lstrip("\r\n")
        if not text.strip():
            return
        start = self._append(text, tight=item)
        if self._pending is not None:
            self._sections.append((start, start, self._pending))
            self._pending = None

    def _append(self, text: str, *, tight: bool = False) -> int:
        if self._length:
            separator = "\n" if tight and self._tight and not self._pending_pages and self._pending is None else SEPARATOR
            self._parts.append(separator)
            self._length += len(separator)
        self._tight = tight
        start = self._length
        self._pages.extend([start] * self._pending_pages)
        self._pending_pages = 0
        self._parts.append(text)
        self._length += len(text)
        return start

    def build(self, title: str | None, navigation: int = 0, metadata: dict[str, Any] | None = None) -> Document:
        text = "".join(self._parts)
        pages = (*self._pages, *[len(text)] * self._pending_pages) if self._paged else ()
        sections: list[Section] = []
        first = self._sections[0][0] if self._sections else len(text)
        if first > 0:
            sections.append(Section(0, first, (), 0))
        for i, (start, body_start, headings) in enumerate(self._sections):
            end = self._sections[i + 1][0] if i + 1 < len(self._sections) else len(text)
            sections.append(Section(start, end, headings, body_start))
        title = one_line(title or "") or None
        return Document(text, title, sections, pages, navigation=navigation, metadata=metadata or {})


_UNPACKED_MAX, _UNPACKED_RATIO = 256 * 2**20, 100  # Office XML packs about 10:1; far more is a ZIP bomb
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Compound File: legacy .doc/.ppt, and password-protected Office files


# Elements (XML start tags) a Word or PowerPoint file may hold: a 1,000-page manual has about 600,000, and each
# costs python-docx and lxml about 1 KB once parsed, so this caps a read near 1 GB. A 383 KB .docx of 250 MB of
# `<w:p/>` (40 million) took 5.9 GB; counted as it inflates, it stops within the first 12 MB.
MAX_ELEMENTS = 1_000_000
_CHUNK = 2**20


def office_package(data: bytes, kind: str, max_elements: int | None = None) -> io.BytesIO:
    """The bytes of an Office Open XML file (DOCX, PPTX) as a stream, once they look like one: a ZIP archive that
    is whole (its central directory at the end is there, so a truncated copy is told apart here). With
    `max_elements`, its XML parts together hold at most that many elements, counted as they inflate (in
    memory of one chunk), before any parser builds a tree of them."""
    if data.startswith(_OLE):
        raise Unreadable(f"not a readable {kind} (an OLE compound file: password-protected, or the old binary format renamed)")
    stream = io.BytesIO(data)
    if not zipfile.is_zipfile(stream):
        raise Unreadable(f"not a readable {kind} (damaged or truncated: not a whole ZIP package)")
    try:
        with zipfile.ZipFile(stream) as package:
            unpacked = sum(info.file_size for info in package.infolist())
            if unpacked > max(_UNPACKED_MAX, _UNPACKED_RATIO * len(data)):
                raise Unreadable(f"not a readable {kind} (it unpacks to {unpacked // 2**20} MB: a ZIP bomb?)")
            if max_elements is not None:
                _count_elements(package, kind, max_elements)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise Unreadable(f"not a readable {kind} (damaged: {exc})") from None
    stream.seek(0)
    return stream


def _count_elements(package: zipfile.ZipFile, kind: str, limit: int) -> None:
    """Raise when the package's XML parts hold more than `limit` start tags (`<x` not `</x`, nor `<?`, `<!`)."""
    count = 0
    for info in package.infolist():
        if not info.filename.endswith((".xml", ".rels")):
            continue
        with package.open(info) as part:
            previous = b""
            while chunk := part.read(_CHUNK):
                joined = previous + chunk  # a tag's "<" and "/" may fall on either side of a chunk's end
                tags = joined.count(b"<") - joined.count(b"</") - joined.count(b"<?") - joined.count(b"<!")
                count += tags - (1 if previous == b"<" else 0)
                previous = chunk[-1:]
                if count > limit:
                    raise Unreadable(
                        f"more than {limit:,} XML elements (MAX_ELEMENTS, passed in {info.filename}): more paragraphs "
                        "and shapes than a document holds, a ZIP bomb?"
                    )
