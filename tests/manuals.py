"""Real manuals nobody here wrote, from Debian's documentation packages (`make .cache/manuals.installed` puts them in
.cache/manuals): the R manuals as PDF (r-doc-pdf) and the Python 3.11 docs as Sphinx HTML (python3.11-doc); and two
measures of how a reader would find their text: running headers left in, and chunks of navigation only."""

from __future__ import annotations

import re
from pathlib import Path

from tools.readers import Document

REPO = Path(__file__).resolve().parent.parent
MANUALS = REPO / ".cache" / "manuals"
TARGET = "make .cache/manuals.installed"
R_PDF = MANUALS / "usr" / "share" / "R" / "doc" / "manual"
PYTHON_HTML = MANUALS / "usr" / "share" / "doc" / "python3.11" / "html"
R_MANUALS = ("R-FAQ", "R-admin", "R-data", "R-exts", "R-intro", "R-ints", "R-lang")
_ROMAN = re.compile(r"\b[ivxlcdm]+\b")
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
# What only navigation looks like: dot leaders ending in page numbers.
_LEADER = re.compile(r"(?:\.\s?){4,}\s*[\divxlcdm, ]+$")


def missing() -> str | None:
    """Why the manuals cannot be used here, naming what fetches them; None when they are there."""
    if not (R_PDF / "R-exts.pdf").is_file() or not (PYTHON_HTML / "genindex.html").is_file():
        return f"the Debian manuals are not in {MANUALS}: run `{TARGET}`"
    return None


def raw_pages(pdf: Path) -> list[list[str]]:
    """Each page's text lines as PDFium gives them, before any cleaning of ours."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = []
        for page in document:
            textpage = page.get_textpage()
            pages.append([line.strip() for line in textpage.get_text_range().split("\r\n") if line.strip()])
            textpage.close()
            page.close()
        return pages
    finally:
        document.close()


def _key(line: str) -> str:
    return _SPACES.sub(" ", _ROMAN.sub("#", _DIGITS.sub("#", line.casefold()))).strip()


def running_lines(pages: list[list[str]]) -> dict[int, list[str]]:
    """The running header or footer lines of each page, by a rule apart from the reader's: a first or last line of
    a page whose text, numbers aside, is a first or last line of at least three pages, or a first line ending in
    the page's own number (a chapter title set over just one page of its chapter)."""
    edges: dict[str, int] = {}
    for lines in pages:
        for key in {_key(line) for line in lines[:1] + lines[-1:]}:
            edges[key] = edges.get(key, 0) + 1
    found: dict[int, list[str]] = {}
    for index, lines in enumerate(pages):
        for line in {*lines[:1], *lines[-1:]}:
            if len(line) > 3 and not line.isdigit() and edges[_key(line)] >= 3 and len(lines) > 1:
                found.setdefault(index, []).append(line)
    return found


def header_survival(pdf: Path, document: Document) -> tuple[int, int]:
    """(pages whose running header or footer line is still in the document's text of that page, pages with one)."""
    running = running_lines(raw_pages(pdf))
    bounds = [*document.pages, len(document.text)]
    survived = 0
    for index, lines in running.items():
        text = _SPACES.sub(" ", document.text[bounds[index] : bounds[index + 1]])
        survived += any(_SPACES.sub(" ", line) in text for line in lines)
    return survived, len(running)


# Sphinx's pages of navigation only: the general index (one page per letter), the module index, search, contents.
NAVIGATION_PAGES = re.compile(r"(?:^|/)(?:genindex(?:-\w+)?|py-modindex|modindex|search|contents)\.html$")


def is_navigation(source: str, text: str) -> bool:
    """A chunk of navigation only: from one of Sphinx's navigation pages, or most of its lines a table of contents'
    or an index's (ending in dot leaders and a page number, or in a page number alone)."""
    if NAVIGATION_PAGES.search(source):
        return True
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return len(lines) >= 3 and sum(1 for line in lines if _LEADER.search(line)) >= 0.5 * len(lines)
