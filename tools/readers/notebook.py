"""Jupyter notebooks (.ipynb, nbformat 4 JSON): Markdown cells as Markdown (their headings make the heading path),
code cells as fenced code in the kernel's language, outputs left out (they are results, often large, and
re-made on every run). Read as one Markdown text, so headings come from the same parser as `.md` files."""

from __future__ import annotations

import json
from typing import Any

from tools.readers.base import Document, Reader, Unreadable, decode_text
from tools.readers.markdown import parse_markdown


class NotebookReader(Reader):
    suffixes = (".ipynb",)

    def read(self, data: bytes, max_pages: int) -> Document:
        try:
            notebook = json.loads(decode_text(data))
        except json.JSONDecodeError as exc:
            raise Unreadable(f"not a readable notebook (not JSON: {exc})") from None
        cells = notebook.get("cells") if isinstance(notebook, dict) else None
        if not isinstance(cells, list):
            raise Unreadable("not a readable notebook (no list of cells: nbformat 4 is read)")
        language = _language(notebook.get("metadata"))
        parts = []
        for cell in cells:
            if not isinstance(cell, dict):
                continue
            source = _source(cell.get("source")).strip("\n")
            if not source.strip():
                continue
            if cell.get("cell_type") == "markdown":
                parts.append(source)
            elif cell.get("cell_type") == "code":
                fence = "`" * max(3, _longest_backtick_run(source) + 1)
                parts.append(f"{fence}{language}\n{source}\n{fence}")
        doc = parse_markdown("\n\n".join(parts) + "\n" if parts else "")
        title = notebook.get("metadata", {}).get("title") if isinstance(notebook.get("metadata"), dict) else None
        return Document(doc.text, str(title) if title else doc.title, doc.sections)


READER = NotebookReader()


def _source(source: Any) -> str:
    """A cell's source: one string, or (as Jupyter saves it) a list of lines."""
    if isinstance(source, list):
        return "".join(str(line) for line in source)
    return source if isinstance(source, str) else ""


def _language(metadata: Any) -> str:
    if not isinstance(metadata, dict):
        return ""
    for key, field in (("language_info", "name"), ("kernelspec", "language")):
        value = metadata.get(key)
        if isinstance(value, dict) and isinstance(value.get(field), str):
            return "".join(c for c in value[field] if c.isalnum() or c in "+-_")
    return ""


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest
