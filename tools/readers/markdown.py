"""Markdown: headings from a real parser (markdown-it-py), so a `#` inside a fenced code block is never a
heading; YAML front matter is left out of the text, and kept as the document's metadata (its `title` is the
title)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin

from tools import metadata
from tools.readers.base import Document, Reader, Section, decode_text

_md = MarkdownIt("commonmark").use(front_matter_plugin)
_NEWLINE = re.compile(r"\r\n|\r|\n")  # as markdown-it counts lines


class MarkdownReader(Reader):
    suffixes = (".md", ".markdown", ".mdx")

    def read(self, data: bytes, max_pages: int) -> Document:
        return parse_markdown(decode_text(data))


READER = MarkdownReader()


def parse_markdown(text: str) -> Document:
    """Sections by heading, each with its heading path; the title from front matter, else the first `#`."""
    tokens = _md.parse(text)
    line_starts = _line_starts(text)
    body_start, title, front = 0, None, {}
    headings: list[tuple[int, int, int, str]] = []  # (start offset, end offset, level, text)
    for i, token in enumerate(tokens):
        if token.type == "front_matter" and token.map:
            body_start = line_starts[token.map[1]]
            front = _front_matter(token.content)
            title = str(front.get("title") or "").strip() or None
        elif token.type == "heading_open" and token.map:
            start, end = line_starts[token.map[0]], line_starts[token.map[1]]
            headings.append((start, end, int(token.tag[1]), tokens[i + 1].content.strip()))
    if title is None:
        title = next((h[3] for h in headings if h[2] == 1), None)
    return Document(text, title, _sections(text, body_start, headings), metadata=metadata.clean(front))


def _line_starts(text: str) -> list[int]:
    """Offset of each line start, plus one past the end (markdown-it maps are line numbers)."""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    if starts[-1] != len(text):
        starts.append(len(text))
    return starts


def _front_matter(content: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _sections(text: str, body_start: int, headings: list[tuple[int, int, int, str]]) -> list[Section]:
    """One section per heading (plus the preamble), each carrying its heading path."""
    sections: list[Section] = []
    if not headings or headings[0][0] > body_start:
        first = headings[0][0] if headings else len(text)
        sections.append(Section(body_start, first, (), body_start))
    stack: list[tuple[int, str]] = []
    for i, (start, end, level, title) in enumerate(headings):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        next_start = headings[i + 1][0] if i + 1 < len(headings) else len(text)
        sections.append(Section(start, next_start, tuple(t for _, t in stack), end))
    return sections
