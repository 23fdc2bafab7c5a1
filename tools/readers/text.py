"""Plain text in any common encoding: one section, split by the chunker at paragraph, line or word breaks."""

from __future__ import annotations

from tools.readers.base import Document, Reader, Section, decode_text


class TextReader(Reader):
    suffixes = (".txt", ".text")

    def read(self, data: bytes, max_pages: int) -> Document:
        text = decode_text(data)
        return Document(text, None, [Section(0, len(text), (), 0)])


READER = TextReader()
