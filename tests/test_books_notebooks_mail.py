"""EPUB (made by pandoc), Jupyter notebooks (pandoc's ipynb writer) and e-mail (Python's email package writing a
MIME message with an attachment); hostile ones too (an EPUB whose spine names a chapter the archive lacks)."""

from __future__ import annotations

import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.documents import need, run
from tools.chunking import chunk_document
from tools.readers import Document, Unreadable, reader_for

BOOK = """---
title: The Vector Cookbook
---

# Storing vectors

Segments are sealed once they reach five hundred megabytes.

## Compaction

Compaction merges small sealed segments at night.

# Searching vectors

A search probes the nearest clusters first.
"""

NOTEBOOK = """# Loading data

We load the vectors first.

::: {.cell .code execution_count=1}
``` {.python .cell-code}
# not a heading
vectors = load("vectors.npy")
```

::: {.output .stream .stdout}
```
LOADED 1000 VECTORS
```
:::
:::

## Index choice

HNSW suits small collections.
"""


def read(path: Path) -> Document:
    reader = reader_for(path)
    assert reader is not None, path
    return reader.read(path.read_bytes(), 2000)


def pandoc(tmp_path: Path, markdown: str, name: str) -> Path:
    need("pandoc")
    source = tmp_path / "source.md"
    source.write_text(markdown, encoding="utf-8")
    target = tmp_path / name
    run("pandoc", "-s", source, "-o", target)
    return target


def test_epub_chapters_headings_and_title(tmp_path: Path) -> None:
    doc = read(pandoc(tmp_path, BOOK, "book.epub"))
    assert doc.title == "The Vector Cookbook"
    by_heading = {c.headings: c.text for c in chunk_document(doc)}
    assert "five hundred megabytes" in by_heading[("Storing vectors",)]
    assert "merges small sealed segments" in by_heading[("Storing vectors", "Compaction")]
    assert "nearest clusters" in by_heading[("Searching vectors",)]


def test_epub_with_a_missing_spine_item_reads_the_rest(tmp_path: Path) -> None:
    book = pandoc(tmp_path, BOOK, "book.epub")
    damaged = tmp_path / "damaged.epub"
    with zipfile.ZipFile(book) as original, zipfile.ZipFile(damaged, "w") as out:
        chapters = sorted(n for n in original.namelist() if n.endswith(".xhtml") and "ch0" in n)
        assert len(chapters) == 2, original.namelist()
        for item in original.infolist():
            if item.filename != chapters[1]:  # the chapter "Searching vectors"
                out.writestr(item, original.read(item))
    doc = read(damaged)
    assert "five hundred megabytes" in doc.text
    assert "nearest clusters" not in doc.text
    no_chapters = tmp_path / "empty.epub"
    with zipfile.ZipFile(book) as original, zipfile.ZipFile(no_chapters, "w") as out:
        for item in original.infolist():
            if not item.filename.endswith(".xhtml") or "nav" in item.filename:
                out.writestr(item, original.read(item))
    with pytest.raises(Unreadable, match="none of its spine's chapters is in the archive"):
        read(no_chapters)


def test_a_notebook_keeps_markdown_headings_and_fenced_code_without_outputs(tmp_path: Path) -> None:
    doc = read(pandoc(tmp_path, NOTEBOOK, "tuning.ipynb"))
    assert "LOADED 1000 VECTORS" not in doc.text  # outputs left out
    chunks = chunk_document(doc)
    assert [c.headings for c in chunks] == [("Loading data",), ("Loading data", "Index choice")]
    assert '```\n# not a heading\nvectors = load("vectors.npy")\n```' in chunks[0].text  # a comment, not a heading
    assert doc.title == "Loading data"


def test_a_notebook_that_is_not_json_is_skipped_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    with pytest.raises(Unreadable, match=r"^not a readable notebook \(not JSON"):
        read(path)


def test_an_email_has_its_subject_headers_text_and_attachments_listed(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Milvus upgrade on Friday"
    message["From"] = "Ada Lovelace <ada@example.org>"
    message["To"] = "ops@example.org"
    message["Date"] = "Tue, 01 Dec 2026 09:30:00 +0000"
    message.set_content("Hello all,\n\nThe rolling upgrade starts at 22:00 and needs no downtime.\n\nAda\n")
    message.add_alternative("<p>Hello all,</p><p>The <b>rolling upgrade</b> starts at 22:00.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 " + bytes(3000), maintype="application", subtype="pdf", filename="runbook.pdf")
    path = tmp_path / "upgrade.eml"
    path.write_bytes(message.as_bytes())

    doc = read(path)
    assert doc.title == "Milvus upgrade on Friday"
    [chunk] = chunk_document(doc)
    assert chunk.headings == ("Milvus upgrade on Friday",)
    assert chunk.text == (
        "Milvus upgrade on Friday\n\n"
        "From: Ada Lovelace <ada@example.org>\nTo: ops@example.org\nDate: Tue, 01 Dec 2026 09:30:00 +0000\n\n"
        "Hello all,\n\nThe rolling upgrade starts at 22:00 and needs no downtime.\n\nAda\n\n"
        "Attachments (not read):\n- runbook.pdf (application/pdf, 3 KB)"
    )


def test_an_html_only_email_reads_its_page(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Newsletter"
    message["From"] = "news@example.org"
    message.set_content("<html><body><nav>Menu</nav><h2>Release 2.5</h2><p>BM25 is faster.</p></body></html>", subtype="html")
    path = tmp_path / "news.eml"
    path.write_bytes(message.as_bytes())
    doc = read(path)
    assert "Release 2.5\n\nBM25 is faster." in doc.text
    assert "Menu" not in doc.text
    not_mail = tmp_path / "notes.eml"
    not_mail.write_bytes(b"just some words\n")
    with pytest.raises(Unreadable, match="not an e-mail message"):
        read(not_mail)
