"""The reader interface: a file's bytes in, its text with its structure out.

A `Document` is one text with sections over it (each with its heading path), so every chunk made from it
is an exact slice of `Document.text`, whatever the format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


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

    `pages` holds the offset in `text` where each page (or slide) starts, the first at 0; it is empty for
    formats without pages.
    """

    text: str
    title: str | None
    sections: list[Section]
    pages: tuple[int, ...] = ()


class Unreadable(Exception):
    """The file cannot be indexed; the message is the reason shown to the user (the file is skipped)."""


class Reader(ABC):
    """Reads one family of file types, named by their suffixes (lower case, with the dot)."""

    suffixes: tuple[str, ...]
    page_label = "p."  # how a citation names a page: "manual.pdf p. 12", "deck.pptx slide 3"

    @abstractmethod
    def read(self, data: bytes, max_pages: int) -> Document:
        """The document in `data`; raises `Unreadable` with the reason when it cannot be indexed, or when it has
        more than `max_pages` pages (formats without pages ignore the limit)."""


def decode_text(data: bytes) -> str:
    """UTF-8 text, with or without a byte-order mark."""
    if b"\x00" in data[:8192]:
        raise Unreadable("binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
