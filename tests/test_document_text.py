"""Text as a reader wants it: running headers and footers out of PDF text, pages and web pages of navigation only
(tables of contents, indexes, search pages) left out and counted. On real manuals from Debian's packages where
they are fetched (`make .cache/manuals.installed`), and on files made here by python-docx and LibreOffice."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from docx.enum.section import WD_SECTION

from tests import manuals
from tests.documents import Documents
from tools.chunking import chunk_document
from tools.ingest import ingest_documents
from tools.readers import reader_for
from tools.services import Services


def _read(path: Path):  # type: ignore[no-untyped-def]
    reader = reader_for(path)
    assert reader is not None
    return reader.read(path.read_bytes(), 5000)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Documents:
    return Documents(tmp_path_factory.mktemp("made"))


@pytest.mark.skipif(manuals.missing() is not None, reason=manuals.missing() or "")
@pytest.mark.parametrize("name", manuals.R_MANUALS)
def test_r_manuals_lose_their_running_headers_and_contents_pages(name: str) -> None:
    pdf = manuals.R_PDF / f"{name}.pdf"
    document = _read(pdf)
    survived, pages = manuals.header_survival(pdf, document)
    assert pages >= 15 and survived == 0
    assert document.navigation >= 2  # the table of contents, and the indexes at the end
    chunks = chunk_document(document)
    assert [c.text[:80] for c in chunks if manuals.is_navigation(pdf.name, c.text)] == []
    assert len(document.text) > 60_000  # the body is all there


@pytest.mark.skipif(manuals.missing() is not None, reason=manuals.missing() or "")
def test_a_header_inside_a_code_block_across_pages_is_gone() -> None:
    document = _read(manuals.R_PDF / "R-exts.pdf")
    assert "Chapter 7: R Miscellanea" not in document.text.replace("\n", " ")[100_000:]  # once in contents only
    assert "The DESCRIPTION and INDEX files are described in the subsections below." in document.text.replace("\n", " ")


@pytest.mark.skipif(manuals.missing() is not None, reason=manuals.missing() or "")
def test_sphinx_navigation_pages_are_navigation() -> None:
    html = manuals.PYTHON_HTML
    for name in ("genindex.html", "genindex-A.html", "py-modindex.html", "search.html", "contents.html"):
        document = _read(html / name)
        assert (document.navigation, document.text) == (1, ""), name
    for name in ("tutorial/classes.html", "library/os.html", "glossary.html", "faq/programming.html"):
        document = _read(html / name)
        assert document.navigation == 0 and len(document.text) > 5_000, name


def _pdf_from_docx(made: Documents, document: docx.document.Document, name: str) -> Path:
    path = made.path(f"{name}.docx")
    document.save(str(path))
    return made.to_pdf(path)


def test_running_headers_of_chapters_and_odd_even_pages_are_dropped(made: Documents) -> None:
    document = docx.Document()
    document.settings.odd_and_even_pages_header_footer = True
    words = "The engine stores each segment on disk and loads it into memory when a query needs it. "
    for chapter in range(1, 4):
        section = document.sections[-1] if chapter == 1 else document.add_section(WD_SECTION.NEW_PAGE)
        section.header.is_linked_to_previous = section.even_page_header.is_linked_to_previous = False
        section.header.paragraphs[0].text = f"Chapter {chapter}: Part number {chapter}"
        section.even_page_header.paragraphs[0].text = "The Handbook of Segments"
        section.footer.is_linked_to_previous = False
        section.footer.paragraphs[0].text = "Copyright the Segment Society"
        document.add_heading(f"Part number {chapter}", level=1)
        for n in range(24):
            document.add_paragraph(f"Paragraph {chapter}.{n}. " + words * 3)
    pdf = _pdf_from_docx(made, document, "handbook")
    text = _read(pdf).text
    assert len(_read(pdf).pages) >= 9
    for running in ("Chapter 1: Part number 1", "Chapter 3: Part number 3", "The Handbook of Segments", "Copyright the"):
        assert running not in text
    assert all(f"Paragraph {c}.{n}." in text for c in range(1, 4) for n in range(24))


def test_pages_that_each_hold_one_numbered_line_keep_it(made: Documents) -> None:
    """Issue 26 item 8: a line that is its page's whole text is content, however it repeats."""
    document = docx.Document()
    for n in range(1, 31):
        document.add_paragraph(f"Entry {n} of the register")
        if n < 30:
            document.add_page_break()
    pdf = _pdf_from_docx(made, document, "register")
    read = _read(pdf)
    assert len(read.pages) == 30 and all(f"Entry {n} of the register" in read.text for n in range(1, 31))


def test_a_table_of_contents_page_is_left_out(made: Documents) -> None:
    document = docx.Document()
    document.add_paragraph("Contents")
    for n in range(1, 21):
        document.add_paragraph(f"{n}.1 Section about topic {n} " + ". " * 30 + f"{n * 3}")
    document.add_page_break()
    document.add_heading("Topic one", level=1)
    document.add_paragraph("The real text starts here, and a reader wants it. " * 5)
    read = _read(_pdf_from_docx(made, document, "toc"))
    assert read.navigation == 1 and "Section about topic" not in read.text and "The real text starts here" in read.text


def test_web_pages_of_navigation_only_are_counted_in_the_ingest(services: Services, docs: Path) -> None:
    site = docs / "site"
    site.mkdir()
    entries = "".join(f'<tr><td><a href="a.html#{n}">entry{n}()</a></td></tr>' for n in range(40))
    (site / "genindex.html").write_text(
        f'<html><body><div role="main"><h1>Index</h1><table class="indextable">{entries}</table></div></body></html>'
    )
    links = "".join(f'<li><a href="p{n}.html">Chapter {n}</a></li>' for n in range(30))
    (site / "toc.html").write_text(f"<html><body><main><h1>Contents</h1><ul>{links}</ul></main></body></html>")
    (site / "search.html").write_text(
        '<html><body><main><h1>Search</h1><p>Results appear below.</p><div id="mkdocs-search-results"></div></main></body></html>'
    )
    (site / "page.html").write_text(
        "<html><body><main><h1>Guide</h1><p>See <a href='x.html'>the index</a> for more.</p>"
        "<p>Segments are stored on disk and loaded when a query needs them.</p></main></body></html>"
    )
    import anyio

    result = anyio.run(lambda: ingest_documents(services, ["site"]))
    assert result.files == 1 and result.navigation_pages == 3
    assert "3 page(s) of navigation only (contents, indexes) left out" in result.summary
