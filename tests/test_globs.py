"""The one glob language: source filters match at folder boundaries, `*` stays within a name, `**` crosses."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tools.globs import matches
from tools.store.filters import like

SOURCES = [
    "data/milvus_docs/en/faq/product_faq.md",
    "data/milvus_docs/en/faq/performance_faq.md",
    "data/milvus_docs/en/guide/install.md",
    "notes/standup.md",
    "readme.md",
    "x_1.md",
    "xa1.md",
]


def matching(pattern: str) -> list[str]:
    return [s for s in SOURCES if matches(s, pattern)]


def test_source_filters() -> None:
    assert matching("en/faq/*.md") == SOURCES[:2]  # the README's example, from the repo root
    assert matching("faq/*") == SOURCES[:2]
    assert matching("*") == matching("**") == matching("?*") == SOURCES  # everything, in every tool
    assert matching("*.md") == SOURCES
    assert matching("product_faq.md") == SOURCES[:1]  # a bare name, in any folder
    assert matching("/readme.md") == ["readme.md"] and matching("/en/**") == []  # a leading / anchors
    assert matching("data/**/install.md") == ["data/milvus_docs/en/guide/install.md"]
    assert matching("en/*.md") == []  # `*` does not cross a folder
    assert matching("en/**/*.md") == SOURCES[:3]
    assert matching("x_1.md") == ["x_1.md"]  # `_` is a character, not a wildcard
    assert matching("x[!_]1.md") == ["xa1.md"] and matching("*_faq.md") == SOURCES[:2]
    assert matching("faq.md") == []  # names match whole, not as suffixes


_piece = st.sampled_from(["a", "b", "_", "%", ".md", "/", "x", "*", "**", "?", "[ab]", "**/"])


@given(pattern=st.lists(_piece, min_size=1, max_size=6).map("".join), source=st.lists(_piece.filter(
    lambda p: p not in ("*", "**", "?", "[ab]", "**/")), min_size=1, max_size=8).map("".join))  # fmt: skip
def test_the_milvus_like_is_a_superset_of_the_glob(pattern: str, source: str) -> None:
    expr = like("source", pattern) or 'source like "%"'
    body = expr.split(" like ", 1)[1][1:-1].replace('\\"', '"').replace("\\\\", "\\")
    as_regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in body)
    if matches(source, pattern):
        assert re.fullmatch(as_regex, source, re.DOTALL), (pattern, source, body)
