"""Chunking: headings, fences, front matter, long sections, and no text lost."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.chunking import _NOISE, Chunk, chunk_document, embedding_text
from tools.readers import Document, Section
from tools.readers.markdown import parse_markdown


class Chunked:
    """A document's title and chunks, as ingest sees them."""

    def __init__(self, title: str | None, chunks: list[Chunk]) -> None:
        self.title, self.chunks = title, chunks


def chunk_markdown(text: str, **limits: int) -> Chunked:
    doc = parse_markdown(text)
    return Chunked(doc.title, chunk_document(doc, **limits))


def chunk_text(text: str, **limits: int) -> Chunked:
    return Chunked(None, chunk_document(Document(text, None, [Section(0, len(text), (), 0)]), **limits))


FENCED = """# Install

Run this:

```bash
# this is a comment, not a heading
pip install pymilvus
```

## Verify
It works.
"""


def test_hash_inside_fence_is_not_a_heading() -> None:
    doc = chunk_markdown(FENCED)
    assert [c.headings for c in doc.chunks] == [("Install",), ("Install", "Verify")]
    assert "# this is a comment" in doc.chunks[0].text


def test_front_matter_is_stripped_and_its_title_kept() -> None:
    text = "---\nid: x.md\ntitle: Product FAQ\n---\n\n# Heading\n\nBody text.\n"
    doc = chunk_markdown(text)
    assert doc.title == "Product FAQ"
    assert all("id: x.md" not in c.text for c in doc.chunks)
    assert doc.chunks[0].text == "# Heading\n\nBody text."


def test_nested_heading_paths() -> None:
    text = "# A\n\nintro\n\n## B\n\nb text\n\n### C\n\nc text\n\n## D\n\nd text\n"
    doc = chunk_markdown(text)
    assert [c.headings for c in doc.chunks] == [("A",), ("A", "B"), ("A", "B", "C"), ("A", "D")]
    assert doc.title == "A"


def test_empty_sections_fold_into_the_next() -> None:
    text = "# Product FAQ\n\n<!-- TOC -->\n\n#### Where?\n\nHere.\n\n#### Fragment\n\n{{fragments/cpu.md}}\n"
    doc = chunk_markdown(text)
    assert len(doc.chunks) == 1
    assert doc.chunks[0].headings == ("Product FAQ", "Where?")
    assert doc.chunks[0].text.startswith("# Product FAQ") and doc.chunks[0].text.endswith("{{fragments/cpu.md}}")


def test_headingless_markdown_and_plain_text() -> None:
    text = "Just a paragraph.\n\nAnd another one.\n"
    for doc in (chunk_markdown(text), chunk_text(text)):
        assert [c.text for c in doc.chunks] == ["Just a paragraph.\n\nAnd another one."]
        assert doc.chunks[0].headings == ()


def test_long_sections_split_with_overlap() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 40 for i in range(30)]
    text = "# Long\n\n" + "\n\n".join(paragraphs)
    doc = chunk_markdown(text, max_chars=500, overlap=100)
    assert len(doc.chunks) > 5
    assert all(len(c.text) <= 500 for c in doc.chunks)
    assert all(c.headings == ("Long",) for c in doc.chunks)
    for prev, nxt in zip(doc.chunks, doc.chunks[1:], strict=False):
        assert 0 < prev.end - nxt.start <= 100  # they overlap, by at most `overlap`


def test_setext_headings_and_hash_stability() -> None:
    text = "Title\n=====\n\nSome text.\n"
    first, second = chunk_markdown(text), chunk_markdown(text)
    assert first.chunks[0].headings == ("Title",)
    assert first.chunks[0].content_hash == second.chunks[0].content_hash
    assert chunk_markdown(text + "more\n").chunks[0].content_hash != first.chunks[0].content_hash


def test_embedding_text_has_title_and_path() -> None:
    doc = chunk_markdown("---\ntitle: Guide\n---\n# Guide\n\n## Setup\n\nDo it.\n")
    assert embedding_text(doc.chunks[0], doc.title) == "Guide > Setup\n\n# Guide\n\n## Setup\n\nDo it."


_line = st.one_of(
    st.text(alphabet="abc xyz.#`-", min_size=0, max_size=60),
    st.sampled_from(["# H1", "## H2", "### H3", "```", "```python", "# comment", "---", "", "   ", "<!-- x -->"]),
    st.text(min_size=0, max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line, max_size=60), max_chars=st.integers(40, 400), markdown=st.booleans())
def test_chunks_cover_the_document_exactly(lines: list[str], max_chars: int, markdown: bool) -> None:
    text = "\n".join(lines)
    overlap = max_chars // 4
    doc = (chunk_markdown if markdown else chunk_text)(text, max_chars=max_chars, overlap=overlap)
    body_start = 0
    if markdown and doc.chunks:
        body_start = min(c.start for c in doc.chunks)
    covered = [False] * len(text)
    for i, chunk in enumerate(doc.chunks):
        assert chunk.index == i
        assert chunk.text == text[chunk.start : chunk.end]  # an exact slice: nothing rewritten
        assert chunk.text.strip() == chunk.text and chunk.text
        assert len(chunk.text) <= max_chars
        for j in range(chunk.start, chunk.end):
            covered[j] = True
    for prev, nxt in zip(doc.chunks, doc.chunks[1:], strict=False):
        assert nxt.start > prev.start and nxt.end > prev.end  # in order, nothing repeated whole
        assert prev.end - nxt.start <= overlap  # overlap is bounded: no duplicated text beyond it
    lost = [i for i in range(body_start, len(text)) if not covered[i] and not text[i].isspace()]
    if markdown and doc.chunks:
        # only front matter may precede the first chunk
        assert text[:body_start].strip() == "" or text.startswith("---")
    if not doc.chunks:  # only a document of comments and blank lines has nothing to index
        assert not _NOISE.sub("", text).replace("---", "").strip() or (markdown and text.startswith("---"))
        return
    assert not lost, f"text lost at {lost[:5]}: {text!r}"


def test_chunks_know_their_pages() -> None:
    pages = ["First page. " * 30, "Second page, short.", "Third page. " * 120]
    text = "\n\n".join(pages)
    starts = tuple(text.index(p) for p in pages)
    doc = Document(text, "Manual", [Section(0, len(text), ("Manual",), 0)], pages=starts)
    chunks = chunk_document(doc, max_chars=500, overlap=50)
    for chunk in chunks:
        on = [n for n, start in enumerate(starts, start=1) if start < chunk.end and start + len(pages[n - 1]) > chunk.start]
        assert (chunk.page_start, chunk.page_end) == (on[0], on[-1])
    assert {n for c in chunks for n in range(c.page_start, c.page_end + 1)} == {1, 2, 3}
    assert any(c.page_end > c.page_start for c in chunks)
    assert all(c.page_start == 0 for c in chunk_markdown("# A\n\ntext\n").chunks)  # no pages, no page numbers
