"""PDF: the text layer page by page, on pypdfium2 (PDFium, Chrome's PDF engine: fast, Apache-2.0/BSD).

Headings come from the outline (bookmarks): each bookmark's title is looked up on the page it points at, and its
section starts there. A PDF without an outline gets headings from its type: short lines standing alone, set
larger than the body text (or bold at body size), when such lines are rare enough to be headings. A PDF with
neither has one section per page. Lines are joined into paragraphs by the gaps between them; hyphens the
layout added at line ends are removed; page numbers and running headers and footers are dropped wherever PDFium
puts them in the page's text, and pages of navigation only (tables of contents, indexes) are left out and counted.

PDFium is not thread-safe: every call into it runs under one process-wide lock, and every PDFium object is
closed before the lock is released, so no finaliser calls into PDFium later from another thread.
"""

from __future__ import annotations

import bisect
import ctypes
import io
import itertools
import re
import statistics
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tools import metadata
from tools.readers import ocr
from tools.readers.base import Document, Reader, Unreadable, check_time, lazy
from tools.readers.build import DocumentBuilder, one_line

SCANNED = "no text layer (a scanned PDF)"
OCR_DPI = 300  # what Tesseract is trained for; 200 dpi loses small print
_LOCK = threading.Lock()
pdfium = lazy("pypdfium2")  # loaded on the first PDF read


def _load_error(code: int) -> str | None:
    """Why PDFium could not open a file, by its error code."""
    return {
        pdfium.raw.FPDF_ERR_PASSWORD: "encrypted PDF: it needs a password to open",
        pdfium.raw.FPDF_ERR_SECURITY: "encrypted PDF with an unsupported security handler",
        pdfium.raw.FPDF_ERR_FORMAT: "not a readable PDF (damaged or truncated: PDFium cannot parse it)",
        pdfium.raw.FPDF_ERR_FILE: "not a readable PDF (PDFium cannot load it)",
        pdfium.raw.FPDF_ERR_PAGE: "not a readable PDF (damaged: a page cannot be found)",
    }.get(code)


_LIGATURES = re.compile("[\ufb00-\ufb06]")
_CONTROL = re.compile("[\x00-\x01\x03-\x08\x0b-\x1f\x7f\ufffe\uffff]")
# Line-end hyphens the layout added: soft hyphen, U+2010 (WeasyPrint, LibreOffice), PDFium's U+0002 marker.
_ADDED_HYPHENS = ("\u00ad", "\u2010", "\x02")
_PAGE_NUMBER = re.compile(r"(?:page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(?:\s*(?:/|of)\s*\d{1,4})?", re.IGNORECASE)
_MARKER = re.compile(r"\d{1,3}[.)]|[a-zA-Z][.)]|[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u00b7\u2013\u2014*-]")
_NOT_WORD = re.compile(r"[\W_]+")
_DIGITS = re.compile(r"\d+")
# Roman page numbers (front matter: i, ii, xiv), as whole words.
_ROMAN = re.compile(r"\b(?=[mdclxvi])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})\b", re.IGNORECASE)
_EDGE = 3  # lines at each end of a page looked at for running headers and footers
_EDGE_NUMBER = re.compile(r"^(\d{1,4})\s+\S|\S\s+(\d{1,4})$")
# `3.3.1 Lexical scoping . . . . 13`, `vector . . . . 3, 8, 12`
_LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlcdm]{1,6})(?:,\s*(?:\d{1,4}|[ivxlcdm]{1,6}))*,?$", re.IGNORECASE)
_ENDS_IN_NUMBER = re.compile(r"(?:^|\s)(?:\d{1,4}|[ivxlcdm]{1,6}),?$", re.IGNORECASE)
_FONT_NAME = ctypes.create_string_buffer(128)  # used under _LOCK only


@dataclass
class _Line:
    text: str
    size: float = 0.0  # font size of its first visible character, in points (0 when unknown)
    y: float = 0.0  # the baseline of that character, in PDF units (y grows upwards)
    bold: bool = False  # its first and last visible characters are bold
    mono: bool = False  # fixed-pitch font: code, never a heading
    font: str = ""  # the font of its first and last visible characters, "" when they differ


@dataclass
class _Page:
    lines: list[_Line]
    images: bool  # has image objects (only looked at on pages without text)


@dataclass
class _Heading:
    level: int
    title: str
    lines: int  # how many lines the heading occupies on its page; 0: not found, the section opens there


class PdfReader(Reader):
    suffixes = (".pdf",)

    def read(self, data: bytes, max_pages: int) -> Document:
        if b"%PDF-" not in data[:1024]:
            raise Unreadable("not a readable PDF (no %PDF- header: damaged, or another format)")
        with _LOCK:
            title, outline, pages, properties = _extract(data, max_pages)
        _recognise_scanned(data, pages)
        if not any(page.lines for page in pages):
            if any(page.images for page in pages):
                raise Unreadable(ocr.unavailable(SCANNED) or f"{SCANNED}: OCR found no text on its pages")
            return Document("", _title(title), [], tuple(0 for _ in pages))  # nothing to index
        _drop_running_lines(pages)
        navigation = _drop_navigation(pages)
        headings = _place_outline(pages, outline) if outline else _font_headings(pages)
        builder = DocumentBuilder()
        _build(builder, pages, headings, _title(title))
        first = outline[0][1] if outline else next((t for level, t in builder.headings if level == 1), None)
        return builder.build(_title(title) or first, navigation, metadata=properties)


READER = PdfReader()


def _recognise_scanned(data: bytes, pages: list[_Page]) -> None:
    """Pages with images and no text, rendered and read by OCR (tools/readers/ocr.py) where it is available: their
    lines are Tesseract's, a line apart, paragraphs a blank line apart as it found them. Without OCR they stay
    empty."""
    scanned = [i for i, page in enumerate(pages) if page.images]
    if not scanned or ocr.unavailable(SCANNED):
        return
    with _LOCK:
        images = _render(data, scanned)
    for index, image in zip(scanned, images, strict=True):
        lines, y = [], 0.0
        for line in ocr.recognise(image)[0].splitlines():
            y -= 12.0  # so a blank line doubles the gap: a paragraph break
            if line.strip():
                lines.append(_Line(line.strip(), size=10.0, y=y))
        pages[index] = _Page(lines, images=True)


def _render(data: bytes, indexes: list[int]) -> list[bytes]:
    """The pages as PNG images at OCR_DPI, in grey (under the lock)."""
    pdf = pdfium.PdfDocument(data)
    try:
        out = []
        for index in indexes:
            page = pdf[index]
            try:
                bitmap = page.render(scale=OCR_DPI / 72, grayscale=True)
                buffer = io.BytesIO()
                bitmap.to_pil().save(buffer, format="PNG")
                bitmap.close()
                out.append(buffer.getvalue())
            finally:
                page.close()
        return out
    finally:
        pdf.close()


# --- PDFium, under the lock -------------------------------------------------------------------------------


_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?")


def _properties(info: dict[str, str]) -> dict[str, Any]:
    """The document information dictionary's author, subject, keywords (a list) and dates (ISO), where set."""
    raw: dict[str, Any] = {}
    for key, name in (("Author", "author"), ("Subject", "subject")):
        if info.get(key, "").strip():
            raw[name] = " ".join(info[key].split())
    if info.get("Keywords", "").strip():
        raw["keywords"] = [word.strip() for word in re.split(r"[,;]", info["Keywords"]) if word.strip()]
    for key, name in (("CreationDate", "created"), ("ModDate", "modified")):
        match = _PDF_DATE.match(info.get(key, ""))
        if match:
            year, month, day, hour, minute, second = (
                part or default for part, default in zip(match.groups(), ("", "01", "01", "00", "00", "00"), strict=True)
            )
            raw[name] = f"{year}-{month}-{day}T{hour}:{minute}:{second}"
    return metadata.clean(raw)


def _extract(data: bytes, max_pages: int) -> tuple[str, list[tuple[int, str, int]], list[_Page], dict[str, Any]]:
    """(metadata title, outline as (level, title, page index), each page's lines, the document's properties)."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise Unreadable(_load_error(exc.err_code) or f"not a readable PDF ({exc})") from None
    try:
        count = len(pdf)
        if count > max_pages:
            raise Unreadable(f"more than {max_pages} pages (MAX_PAGES)")
        title = pdf.get_metadata_value("Title") or ""
        properties = _properties(pdf.get_metadata_dict(skip_empty=True))
        outline = _outline(pdf, count)
        return title, outline, [_page(pdf, index) for index in range(count)], properties
    except pdfium.PdfiumError as exc:
        raise Unreadable(f"not a readable PDF (damaged: {exc})") from None
    finally:
        pdf.close()


def _outline(pdf: Any, pages: int) -> list[tuple[int, str, int]]:
    """(level from 1, title, page index) of each bookmark that points at a page of this document."""
    entries = []
    for bookmark in pdf.get_toc(max_depth=8):
        dest = bookmark.get_dest()
        index = dest.get_index() if dest is not None else None
        title = one_line(bookmark.get_title() or "")
        if index is not None and 0 <= index < pages and title:
            entries.append((bookmark.level + 1, title, index))
    return entries


def _page(pdf: Any, index: int) -> _Page:
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            lines = _lines(textpage)
        finally:
            textpage.close()
        images = not lines and any(True for _ in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE], max_depth=4))
        return _Page(lines, images)
    finally:
        page.close()


def _lines(textpage: Any) -> list[_Line]:
    """The page's text lines with the font size, position and weight of their first character (two or three
    PDFium calls per line, not per character)."""
    count = textpage.count_chars()
    if count <= 0:
        return []
    text = textpage.get_text_range()
    aligned = len(text) == count  # characters outside the BMP shift the indices: then no geometry
    x, y = ctypes.c_double(), ctypes.c_double()
    lines: list[_Line] = []
    position = 0
    for raw in text.split("\r\n"):
        start, position = position, position + len(raw) + 2
        if not raw.strip():
            continue
        line = _Line(_clean(raw))
        if aligned:
            first = start + len(raw) - len(raw.lstrip())
            last = start + len(raw.rstrip()) - 1
            line.size = round(pdfium.raw.FPDFText_GetFontSize(textpage, first), 1)
            if pdfium.raw.FPDFText_GetCharOrigin(textpage, first, x, y):
                line.y = y.value
            (name, flags), (last_name, _) = _font(textpage, first), _font(textpage, last)
            line.font = name if name == last_name else ""
            line.bold = _is_bold(textpage, first, name) and _is_bold(textpage, last, last_name)
            line.mono = bool(flags & 1) or any(m in name for m in ("Mono", "Courier", "Consol", "Code"))
        lines.append(line)
    return lines


def _is_bold(textpage: Any, index: int, font: str) -> bool:
    return "bold" in font.lower() or pdfium.raw.FPDFText_GetFontWeight(textpage, index) >= 600


def _font(textpage: Any, index: int) -> tuple[str, int]:
    """The font's name and flags (PDF font descriptor flags: 1 is fixed-pitch)."""
    flags = ctypes.c_int()
    if not pdfium.raw.FPDFText_GetFontInfo(textpage, index, _FONT_NAME, len(_FONT_NAME), ctypes.byref(flags)):
        return "", 0
    return _FONT_NAME.value.decode("latin-1").split("+")[-1], flags.value  # drop a subset prefix "ABCDEF+"


def _clean(raw: str) -> str:
    text = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group()), raw.rstrip())
    return _CONTROL.sub("", text.replace("\r", " ").replace("\n", " "))


# --- layout, in plain Python ----------------------------------------------------------------------------


def _title(metadata: str) -> str | None:
    title = one_line(re.sub(r"^Microsoft (?:Word|PowerPoint) - ", "", metadata))
    return title or None


def _key(line: _Line) -> str:
    """A line as running headers repeat it: numbers (arabic or roman) aside, case and spacing aside."""
    text = _ROMAN.sub("#", _DIGITS.sub("#", one_line(line.text).casefold()))
    return text


def _edges(lines: list[_Line]) -> tuple[set[int], set[int]]:
    """(top, bottom): the first and last lines in reading order, and the highest and lowest on the page, where a
    running header or footer is (PDFium gives some after the body)."""
    if not lines:
        return set(), set()
    top, bottom = {0}, {len(lines) - 1}
    placed = [i for i, line in enumerate(lines) if line.size]
    if placed:
        top.add(max(placed, key=lambda i: lines[i].y))
        bottom.add(min(placed, key=lambda i: lines[i].y))
    return top, bottom


def _page_number(text: str) -> int | None:
    """The number a header or footer line starts or ends with (`Chapter 7: R Miscellanea 35`, `36 Writing R`)."""
    match = _EDGE_NUMBER.search(text)
    return int(match.group(1) or match.group(2)) if match else None


def _drop_running_lines(pages: list[_Page]) -> None:
    """Drop running headers and footers wherever they fall in a page's text: a line at the top (or bottom) of its
    page that, numbers aside, is at the top (or bottom) of at least three pages (odd and even pages, and each
    chapter's title, count apart since each repeats on its own); a short line there carrying the page's own number
    (learned from the pages: the printed number minus the page's index is the same on most); and a page number
    alone. A page keeps its only text: a line that is the whole page is content."""
    edges = [_edges(page.lines) for page in pages]
    counts: Counter[tuple[bool, str]] = Counter()
    offsets: Counter[int] = Counter()
    for index, (page, (top, bottom)) in enumerate(zip(pages, edges, strict=True)):
        keys = {(True, _key(page.lines[i])) for i in top} | {(False, _key(page.lines[i])) for i in bottom}
        counts.update(keys)
        for i in top | bottom:
            if (number := _page_number(page.lines[i].text)) is not None:
                offsets[number - index] += 1
    running = {key for key, n in counts.items() if n >= 3 and sum(c.isalpha() for c in key[1]) >= 3}
    offset, votes = offsets.most_common(1)[0] if offsets else (0, 0)
    page_offset = offset if votes >= max(3, len(pages) // 5) else None
    for index, (page, (top, bottom)) in enumerate(zip(pages, edges, strict=True)):
        lines, n = page.lines, len(page.lines)
        number = None if page_offset is None else index + page_offset
        drop = {i for i in top if _runs(lines[i], True, running, number)}
        drop |= {i for i in bottom if _runs(lines[i], False, running, number)}
        # a header or footer of two or three lines: peel on from each end while the next line runs too
        for order, at_top in ((range(1, min(_EDGE, n)), True), (range(n - 2, max(n - _EDGE, 0) - 1, -1), False)):
            for i in order:
                if (i - 1 if at_top else i + 1) not in drop or not _runs(lines[i], at_top, running, number):
                    break
                drop.add(i)
        kept = [line for i, line in enumerate(lines) if i not in drop]
        page.lines = _merge_markers(kept if kept else lines)


def _runs(line: _Line, at_top: bool, running: set[tuple[bool, str]], number: int | None) -> bool:
    """Whether a line at the top (or bottom) of its page is a running header (or footer): see `_drop_running_lines`."""
    text = line.text.strip()
    if (at_top, _key(line)) in running or _PAGE_NUMBER.fullmatch(text) or _ROMAN.fullmatch(text):
        return True
    return number is not None and len(text) <= 120 and _page_number(text) == number


def _drop_navigation(pages: list[_Page]) -> int:
    """Leave out what is only navigation (tables of contents, indexes): on a page whose lines mostly end in dot
    leaders and page numbers, those lines and an index's letter headings go, and the rest too unless it is a few
    lines of text or more (the end of a chapter before its index starts). How many pages were navigation; their
    place stays, so page numbers still count right."""
    dropped = 0
    for page in pages:
        lines = [line.text.strip() for line in page.lines]
        if len(lines) < 3:
            continue
        leaders = [bool(_LEADER.search(text)) for text in lines]
        numbered = sum(1 for text in lines if _ENDS_IN_NUMBER.search(text))
        if sum(leaders) >= 0.3 * len(lines) and sum(leaders) + numbered >= 0.6 * len(lines):
            rest = [
                line for line, text, leader in zip(page.lines, lines, leaders, strict=True)
                if not leader and not _ENDS_IN_NUMBER.search(text) and len(text) > 2
            ]  # fmt: skip
            page.lines = rest if len(rest) >= 3 else []
            dropped += 1
    return dropped


def _merge_markers(lines: list[_Line]) -> list[_Line]:
    """A list bullet or number drawn apart from its item becomes the start of the item's line."""
    merged: list[_Line] = []
    for line in lines:
        if merged and _MARKER.fullmatch(merged[-1].text.strip()):
            marker = merged.pop()
            line = _Line(f"{marker.text.strip()} {line.text.lstrip()}", line.size, line.y, False, line.mono)
        merged.append(line)
    return merged


def _norm(text: str) -> str:
    return _NOT_WORD.sub("", text).casefold()


def _place_outline(pages: list[_Page], outline: list[tuple[int, str, int]]) -> dict[tuple[int, int], list[_Heading]]:
    """Each bookmark's title found among its page's lines (over up to four lines, after a section number if
    any), searching on from the previous bookmark on that page: {(page, line): headings starting there}.
    A title not found opens its section at the line where the search stood. Only the lines that could start the
    title are tried (an index of each page's lines, built once), and the file's time budget is checked as it
    goes: trying every line for every bookmark took 233 s on one page of 3,000 lines with 20,000 bookmarks."""
    placed: dict[tuple[int, int], list[_Heading]] = {}
    cursor: dict[int, int] = {}
    titles: dict[int, _PageTitles] = {}
    for n, (level, title, index) in enumerate(outline):
        if n % 64 == 0:
            check_time()
        lines, start = pages[index].lines, cursor.get(index, 0)
        page = titles.get(index) or titles.setdefault(index, _PageTitles(lines))
        target = _norm(title)
        found: tuple[int, int] | None = None
        for i in page.candidates(target, start):
            if (m := _match(lines, i, target)) is not None:
                # The same words may come first in running text or a list of contents: prefer a line set apart.
                if lines[i].size > page.usual or lines[i].bold:
                    found = m
                    break
                found = found or m
        if found is None:
            at = min(start, max(len(lines) - 1, 0))
            placed.setdefault((index, at), []).append(_Heading(level, title, 0))
            continue
        placed.setdefault((index, found[0]), []).append(_Heading(level, title, found[1]))
        cursor[index] = found[0] + found[1]
    return placed


class _PageTitles:
    """A page's lines indexed by their normalised text (and without a leading section number): a title can start
    only at a line whose text is a prefix of it."""

    def __init__(self, lines: list[_Line]) -> None:
        self.usual = statistics.median(line.size for line in lines) if lines else 0.0
        self.starts: dict[str, list[int]] = {}
        for i, line in enumerate(lines):
            seen = _norm(line.text)
            for key in {seen, seen.lstrip("0123456789")}:
                self.starts.setdefault(key, []).append(i)
        self.lengths = sorted({len(key) for key in self.starts})

    def candidates(self, target: str, start: int) -> list[int]:
        """The lines from `start` on that may start `target`, in order."""
        found: set[int] = set()
        for length in self.lengths:
            if length > len(target):
                break
            at = self.starts.get(target[:length], [])
            found.update(at[bisect.bisect_left(at, start) :])
        return sorted(found)


def _match(lines: list[_Line], i: int, target: str) -> tuple[int, int] | None:
    """(i, lines used) when the title starts at line i."""
    seen = ""
    for j in range(i, min(i + 4, len(lines))):
        seen += _norm(lines[j].text)
        bare = seen.lstrip("0123456789")
        if target in (seen, bare):
            return i, j + 1 - i
        if not (target.startswith(seen) or target.startswith(bare)) or not target:
            return None
    return None


def _font_headings(pages: list[_Page]) -> dict[tuple[int, int], list[_Heading]]:
    """Headings where there is no outline: short lines standing alone, not ending like a sentence, set larger
    than the body text, or at its size in bold or in another (not fixed-pitch) font. A style that sets a fifth
    or more of the text is not a heading style. Levels: larger sizes first, then bold, then other fonts."""
    chars: Counter[tuple[float, bool, str]] = Counter()
    for page in pages:
        for line in page.lines:
            if not line.mono:
                chars[_style(line)] += len(line.text)
    total = sum(chars.values())
    if not total:
        return {}
    body_size, _, body_font = chars.most_common(1)[0][0]
    if body_size <= 0:
        return {}

    def rare(styles: Iterable[tuple[float, bool, str]]) -> bool:
        return sum(chars[style] for style in styles) < 0.2 * total

    sizes = sorted({s for s, _, _ in chars if s >= body_size * 1.15 and rare(t for t in chars if t[0] == s)}, reverse=True)
    level_of = {size: level for level, size in enumerate(sizes[:5], start=1)}
    body_sized = [style for style in chars if abs(style[0] - body_size) < 0.5]
    bold = len(level_of) + 1 if rare(t for t in body_sized if t[1]) else 0
    fonts: dict[str, int] = {}
    for _, is_bold, font in sorted(body_sized):
        if not is_bold and font and font != body_font and font not in fonts and rare(t for t in body_sized if t[2] == font):
            fonts[font] = len(level_of) + 2 + len(fonts)

    def level(line: _Line) -> int:
        if line.mono:
            return 0
        if line.size in level_of:
            return level_of[line.size]
        if abs(line.size - body_size) >= 0.5:
            return 0
        return bold if line.bold else fonts.get(line.font, 0)

    spacing = _spacing(pages)
    placed: dict[tuple[int, int], list[_Heading]] = {}
    for p, page in enumerate(pages):
        lines, i = page.lines, 0
        while i < len(lines):
            line = lines[i]
            if not (found := level(line)):
                i += 1
                continue
            j = i + 1  # a heading may wrap onto following lines in the same style, close below
            while j < len(lines) and j - i < 3 and not _apart(lines[j - 1], lines[j], spacing):
                j += 1
            title = one_line(" ".join(x.text for x in lines[i:j]))
            before = lines[i - 1] if i else None
            after = lines[j] if j < len(lines) else None
            alone = (before is None or _apart(before, line, spacing)) and (after is None or _apart(lines[j - 1], after, spacing))
            if alone and 2 <= len(title) <= 150 and not title.endswith((".", ",", ";", ":")) and _has_letters(title):
                placed[(p, i)] = [_Heading(found, title, j - i)]
            i = j
    return placed


def _apart(above: _Line, below: _Line, spacing: float) -> bool:
    """Not one block of text: another style, or not the next line at the usual spacing."""
    return _style(above) != _style(below) or not _follows(above, below, spacing)


def _style(line: _Line) -> tuple[float, bool, str]:
    return line.size, line.bold, line.font


def _has_letters(text: str) -> bool:
    return any(c.isalpha() for c in text)


def _spacing(pages: list[_Page]) -> float:
    """The document's usual distance between the baselines of a paragraph's lines, per point of font size (the
    lower quartile over lines in the same style, so that paragraph gaps do not count)."""
    ratios = sorted(
        (a.y - b.y) / a.size
        for page in pages
        for a, b in itertools.pairwise(page.lines)
        if a.size and _style(a) == _style(b) and 0 < a.y - b.y < 3 * a.size
    )
    return ratios[len(ratios) // 4] if ratios else 1.2


def _follows(above: _Line, below: _Line, spacing: float) -> bool:
    """`below` is the next line of `above`'s paragraph: at most 30% farther down than the usual spacing, or on
    the same baseline (not above it: that is a new column)."""
    return -0.5 * below.size <= above.y - below.y <= 1.3 * spacing * below.size


def _paragraph_break(previous: _Line, line: _Line, spacing: float) -> bool:
    """A new paragraph: another font size, or a line that does not follow at the usual spacing."""
    if not previous.size or not line.size:
        return False
    if abs(previous.size - line.size) > 0.15 * max(previous.size, line.size):
        return True
    return not _follows(previous, line, spacing)


def _build(
    builder: DocumentBuilder, pages: list[_Page], headings: dict[tuple[int, int], list[_Heading]], title: str | None
) -> None:
    """Pages into paragraphs and headings; without any heading, each page is a section. The document's title
    printed before the first heading stands alone, so it does not make a chunk of its own."""
    spacing = _spacing(pages)
    title_key = _norm(title or "")

    def emit(paragraph: list[_Line]) -> None:
        text = _join(paragraph)
        if title_key and not builder.headings and _norm(text) == title_key:
            builder.label(text)
        else:
            builder.block(text)

    for p, page in enumerate(pages):
        builder.page()
        if not headings:
            builder.section()
        lines, paragraph, i = page.lines, list[_Line](), 0
        while i < len(lines):
            if (p, i) in headings:
                emit(paragraph)
                paragraph = []
                here = headings[(p, i)]
                for heading in here:
                    builder.heading(heading.level, heading.title, in_text=heading.lines > 0)
                used = max(h.lines for h in here)
                if used:
                    i += used
                    continue
            line = lines[i]
            if paragraph and _paragraph_break(paragraph[-1], line, spacing):
                emit(paragraph)
                paragraph = []
            paragraph.append(line)
            i += 1
        emit(paragraph)


def _join(lines: list[_Line]) -> str:
    """One paragraph's lines, one per line, with the hyphens the layout added at line ends removed."""
    out = ""
    for line in lines:
        text = line.text.strip() if not line.mono else line.text.rstrip()
        if not out:
            out = text
        elif out.endswith(_ADDED_HYPHENS) and text[:1].isalpha():
            out = out[:-1] + text
        else:
            out = out + "\n" + text
    return out.replace("\x02", "-")
