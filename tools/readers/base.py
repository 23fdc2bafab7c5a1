"""The reader interface: a file's bytes in, its text with its structure out.

A `Document` is one text with sections over it (each with its heading path), so every chunk made from it
is an exact slice of `Document.text`, whatever the format.
"""

from __future__ import annotations

import codecs
import importlib.util
import math
import re
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Section:
    """A span of `Document.text` under one heading path; its own heading line ends at `body_start`."""

    start: int
    end: int
    headings: tuple[str, ...]
    body_start: int


@dataclass(frozen=True)
class Document:
    """A document's text, its title if it has one, and its sections in order.

    `pages` holds the offset in `text` where each page (or slide, or table row) starts, the first at 0; it is
    empty for formats without pages. `navigation` counts the pages (or, for a web page, the whole file) left out
    because they are only navigation: tables of contents, indexes, search pages.
    `metadata` holds the document's own properties (front matter, author, dates, keywords; see tools/metadata.py).
    """

    text: str
    title: str | None
    sections: list[Section]
    pages: tuple[int, ...] = ()
    page_numbers: tuple[int, ...] = ()  # the number each page carries where it is not 1, 2, 3... (a sheet's rows)
    navigation: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class Unreadable(Exception):
    """The file cannot be indexed; the message is the reason shown to the user (the file is skipped)."""


TIME_BUDGET_S = 60.0  # CPU a reader may spend on one file (a 500-page manual takes about 1 s)
_DEADLINE: ContextVar[tuple[float, float]] = ContextVar("reader_deadline", default=(math.inf, math.inf))


@contextmanager
def time_budget(seconds: float = TIME_BUDGET_S) -> Iterator[None]:
    """Around one file's read: past `seconds`, `check_time` makes the read give up with a reason."""
    token = _DEADLINE.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_time() -> None:
    """Called now and then in a reader's costly loops (PDF outlines, large tables): a file that would take
    minutes is skipped with a reason, not read at the expense of every other call."""
    deadline, seconds = _DEADLINE.get()
    if time.monotonic() > deadline:
        raise Unreadable(f"took more than {seconds:g} s to read (the time one file may take; its layout is too costly)")


class Reader(ABC):
    """Reads one family of file types, named by their suffixes (lower case, with the dot)."""

    suffixes: tuple[str, ...]
    page_label = "p."  # how a citation names a page: "manual.pdf p. 12", "deck.pptx slide 3"

    def cite(self, source: str, first: int, last: int, headings: tuple[str, ...] | list[str]) -> str:
        """`manual.pdf p. 12`, `manual.pdf pp. 12-13`, `deck.pptx slide 3`, or the source alone without a page."""
        if not first:
            return source
        if last <= first:
            return f"{source} {self.page_label} {first}"
        return f"{source} {'pp.' if self.page_label == 'p.' else self.page_label + 's'} {first}-{last}"

    @abstractmethod
    def read(self, data: bytes, max_pages: int) -> Document:
        """The document in `data`; raises `Unreadable` with the reason when it cannot be indexed, or when it has
        more than `max_pages` pages (formats without pages ignore the limit)."""


_BOMS = (  # UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE)
# Browsers decode pages labelled Latin-1 or ASCII as windows-1252 (WHATWG Encoding), and so do we.
_WHATWG = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}
# What Western European text in cp1252 / Latin-1 holds besides ASCII: accented letters and typographic marks.
_WESTERN = re.compile("[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e]")
_WESTERN_MARKS = set(
    "\u00a0\u00a1\u00a2\u00a3\u00a5\u00a7\u00a9\u00aa\u00ab\u00ae\u00b0\u00b1\u00b2\u00b3\u00b4\u00b5"
    "\u00b7\u00ba\u00bb\u00bc\u00bd\u00be\u00bf\u00d7\u00f7\u2013\u2014\u2018\u2019\u201a\u201c"
    "\u201d\u201e\u2022\u2026\u20ac\u2122"
)
_ASCII_LETTER = re.compile("[A-Za-z]")
_SAMPLE = 65536


def decode_text(data: bytes, html: bool = False) -> str:
    """Text in any common encoding: a byte-order mark (UTF-8, UTF-16, UTF-32), an HTML page's `<meta charset>`,
    UTF-8, UTF-16 without a mark (told by its NUL bytes, or for Chinese and Japanese by the byte order that reads
    as their scripts), Western European cp1252 / Latin-1, else what charset-normalizer finds. UTF-8 input decodes
    exactly as `data.decode("utf-8-sig")`."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _decode(data[len(bom) :], name)
    if html and (declared := _declared_charset(data[:4096])):
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass  # mislabelled: find the encoding as for any text
    head = data[:8192]
    if b"\x00" in head:
        return _decode(data, _utf16_by_nuls(head))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if (cjk := _cjk_utf16(data)) is not None:
        return cjk
    if (western := _as_western(data)) is not None:
        return western
    return _detected(data)


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not {encoding.upper()} text (invalid bytes at offset {exc.start})") from None


def _declared_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head)
    if not match:
        return None
    name = match.group(1).decode("ascii").lower()
    name = _WHATWG.get(name, name)
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _utf16_by_nuls(sample: bytes) -> str:
    """UTF-16 without a byte-order mark: mostly-ASCII text has a NUL in every other byte. Chinese, Japanese or
    Korean text has fewer (its ASCII: spaces, digits, line breaks): it is UTF-16 in the byte order that reads as
    those scripts and ASCII."""
    half = len(sample) // 2
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if half >= 8 and odd > 0.3 * half and even < 0.05 * half:
        return "utf-16-le"
    if half >= 8 and even > 0.3 * half and odd < 0.05 * half:
        return "utf-16-be"
    if half >= 8 and (encoding := _utf16_order(sample, _EAST_ASIAN_OR_ASCII)):
        return encoding
    raise Unreadable("binary file, not text")


_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"  # CJK punctuation, kana, ideographs, full width
_EAST_ASIAN = re.compile(f"[{_CJK}]")
_EAST_ASIAN_OR_ASCII = re.compile(f"[{_CJK}\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\x20-\x7e\r\n\t]")  # + Hangul


def _utf16_order(data: bytes, blocks: re.Pattern[str]) -> str | None:
    """The UTF-16 byte order in which nine characters in ten of `data` fall in `blocks`, if one does: the other
    order reads as a mix of scripts."""
    sample = data[: min(len(data), _SAMPLE) // 2 * 2]
    for encoding in ("utf-16-le", "utf-16-be"):
        text = sample.decode(encoding, errors="replace")
        if text and len(blocks.findall(text)) >= 0.9 * len(text):
            return encoding
    return None


def _cjk_utf16(data: bytes) -> str | None:
    """UTF-16 without a mark and without ASCII (so without NULs): Chinese or Japanese text. (Korean has spaces, so
    NULs; leaving Hangul out here keeps GB2312 or Big5 text from reading as UTF-16 Hangul.)"""
    encoding = _utf16_order(data, _EAST_ASIAN) if len(data) % 2 == 0 else None
    return _decode(data, encoding) if encoding else None


def _as_western(data: bytes) -> str | None:
    """cp1252 (a superset of Latin-1's printable range) when it reads as Western European text: every non-ASCII
    character an accented letter or a typographic mark, and most letters plain ASCII. A Cyrillic or Greek
    single-byte text decodes to accented letters only, so it fails the second test and goes to the detector."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    sample = text[:_SAMPLE]
    accented = len(_WESTERN.findall(sample))
    other = sum(1 for c in sample if ord(c) > 127 and c not in _WESTERN_MARKS) - accented
    if other or accented > 0.4 * (accented + len(_ASCII_LETTER.findall(sample))):
        return None
    return text


def _detected(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise Unreadable("not text in any encoding known here (binary?)")
    best = matches[0]
    # charset-normalizer often ranks a Central European or Baltic code page first for Western text that
    # cp1252 reads as well; prefer cp1252 (what browsers assume) when it is about as clean.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.05:
            best = match
            break
    return str(best)


def lazy(name: str) -> ModuleType:
    """A module imported on its first use: the server starts (and stays smaller) without loading the library of
    every format it could read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}")
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
