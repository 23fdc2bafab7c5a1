"""The readers on real documents made by real tools (tests/documents.py): PDF, DOCX, PPTX, HTML, reStructuredText,
text in several encodings; then an ingest of a folder of them into Milvus Lite."""

from __future__ import annotations

import codecs
import re
import shutil
import subprocess
import threading
import unicodedata
import zipfile
from pathlib import Path

import pytest

from tests.documents import MANUAL_SECTIONS, MANUAL_TITLE, Documents, manual_markdown, need
from tools.chunking import Chunk, chunk_document
from tools.ingest import ingest_documents
from tools.readers import Document, Section, Unreadable, ocr, reader_for, supported_suffixes
from tools.readers.markdown import parse_markdown
from tools.readers.pdf import SCANNED
from tools.search import search_milvus_docs
from tools.services import Services

REPO = Path(__file__).resolve().parent.parent
MANY = 2000


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Documents:
    return Documents(tmp_path_factory.mktemp("documents"))


def read(path: Path, max_pages: int = MANY) -> Document:
    reader = reader_for(path)
    assert reader is not None, path
    return reader.read(path.read_bytes(), max_pages)


def reason(path: Path, max_pages: int = MANY) -> str:
    with pytest.raises(Unreadable) as raised:
        read(path, max_pages)
    return str(raised.value)


def chunk_with(chunks: list[Chunk], words: str) -> Chunk:
    """The first chunk with these words (compared on letters and digits only: typographic quotes differ)."""
    return next(c for c in chunks if _norm(words) in _norm(c.text))


def markdown_paths() -> list[tuple[str, ...]]:
    """The heading path of each section of the manual's Markdown source."""
    doc = parse_markdown(manual_markdown())
    return [s.headings for s in doc.sections if s.headings]


def section_paths(doc: Document) -> list[tuple[str, ...]]:
    return [s.headings for s in doc.sections if s.headings]


def _norm(text: str) -> str:
    """Letters and digits only, so that two extractions of the same page compare equal."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).casefold()


# --- PDF -------------------------------------------------------------------------------------------------


def test_pdf_chunks_know_their_pages(made: Documents) -> None:
    """Each chunk's page range, checked against poppler's own text of each page: the chunk lies within its
    pages, and would not if its first or last page were dropped."""
    need("pdftotext", "pdfinfo")
    pdf = made.manual_pdf
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=60).stdout
    count = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))  # type: ignore[union-attr]
    doc = read(pdf)
    assert count >= 4 and len(doc.pages) == count and doc.pages[0] == 0
    pages = [
        _norm(subprocess.run(["pdftotext", "-raw", "-f", str(n), "-l", str(n), str(pdf), "-"], **_TEXT).stdout)
        for n in range(1, count + 1)
    ]
    chunks = chunk_document(doc)
    assert {c.page_start for c in chunks} == set(range(1, count + 1))
    assert any(c.page_end > c.page_start for c in chunks)  # some chunk runs over a page break

    def on(first: int, last: int) -> str:
        return "".join(pages[first - 1 : last])

    for chunk in chunks:
        text = _norm(chunk.text)
        assert 1 <= chunk.page_start <= chunk.page_end <= count
        assert text in on(chunk.page_start, chunk.page_end), chunk
        if chunk.page_end > chunk.page_start:
            assert text not in on(chunk.page_start + 1, chunk.page_end) and text not in on(chunk.page_start, chunk.page_end - 1)


_TEXT = {"capture_output": True, "text": True, "check": True, "timeout": 60}


def test_pdf_headings_from_the_outline_and_title_from_the_metadata(made: Documents) -> None:
    doc = read(made.manual_pdf)
    assert doc.title == MANUAL_TITLE
    assert section_paths(doc) == markdown_paths()
    chunks = chunk_document(doc)
    backups = chunk_with(chunks, MANUAL_SECTIONS[4][2][0])
    assert backups.headings == ("Operations", "Backups") and backups.text.startswith("Backups\n\n")
    assert all(c.text != MANUAL_TITLE for c in chunks)  # the printed title is no chunk of its own
    requirements = chunk_with(chunks, "CPU")
    assert "Component Minimum Recommended" in " ".join(requirements.text.split())


def test_pdf_without_an_outline_gets_headings_from_its_fonts(made: Documents) -> None:
    doc = read(made.manual_pdf_without_outline)
    expected = [(MANUAL_TITLE, *path) for path in markdown_paths()]  # the printed title is the largest heading
    assert section_paths(doc) == [(MANUAL_TITLE,), *expected]
    assert doc.text == read(made.manual_pdf).text and doc.pages == read(made.manual_pdf).pages


def test_pdf_without_headings_has_a_section_per_page(made: Documents) -> None:
    doc = read(made.plain_pdf)
    assert len(doc.pages) >= 3 and doc.title is None
    assert [s.start for s in doc.sections] == list(doc.pages) and all(s.headings == () for s in doc.sections)
    chunks = chunk_document(doc)
    assert all(c.page_start == c.page_end for c in chunks)  # a page is a section: no chunk runs over a page break
    assert {c.page_start for c in chunks} == set(range(1, len(doc.pages) + 1))


def test_pdf_skip_reasons(made: Documents, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr.SETTINGS, "mode", "off")  # with OCR: tests/test_ocr.py
    assert reason(made.scanned_pdf) == f"{SCANNED}: OCR is off (OCR=off; set OCR=auto to read it with Tesseract)"
    locked = reason(made.encrypted_pdf)
    assert locked.startswith("encrypted PDF") and "password" in locked
    assert reason(made.truncated(made.manual_pdf, "half.pdf")).startswith("not a readable PDF (damaged or truncated")
    assert reason(made.manual_pdf, max_pages=3) == "more than 3 pages (MAX_PAGES)"
    renamed = made.path("not-really.pdf")
    renamed.write_bytes(made.manual_docx.read_bytes())
    assert reason(renamed).startswith("not a readable PDF")


def test_an_encrypted_pdf_without_a_user_password_is_read(made: Documents) -> None:
    assert read(made.encrypted_pdf_open).text == read(made.manual_pdf).text


def test_pdf_reads_in_parallel_threads(made: Documents) -> None:
    """PDFium is not thread-safe; the reader serialises it, so threads get the same documents as one at a time."""
    data = made.manual_pdf.read_bytes()
    reader = reader_for(made.manual_pdf)
    assert reader is not None
    expected = reader.read(data, MANY)
    results: list[Document | BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(reader.read(data, MANY))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 12 and all(r == expected for r in results)


# --- DOCX, PPTX, HTML, RST ---------------------------------------------------------------------------------


def test_docx_from_pandoc_has_the_markdown_headings(made: Documents) -> None:
    doc = read(made.manual_docx)
    assert doc.title == MANUAL_TITLE and doc.pages == ()
    assert section_paths(doc) == markdown_paths()
    chunks = chunk_document(doc)
    assert "CPU | 4 cores | 16 cores" in chunk_with(chunks, "Component").text
    assert "1. Start the metadata store.\n2. Start the coordinators." in chunk_with(chunks, "Start the coordinators").text


def test_docx_from_python_docx_heading_styles_table_and_lists(made: Documents) -> None:
    doc = read(made.handbook_docx)
    assert doc.title == "Cluster Handbook"
    assert section_paths(doc) == [
        ("Installation",),
        ("Installation", "Sizing"),
        ("Installation", "Sizing", "Disk layout"),
        ("Operations",),
    ]
    chunks = chunk_document(doc)
    sizing = chunk_with(chunks, "Memory | 16 GB | 64 GB")
    assert sizing.headings == ("Installation", "Sizing")
    assert "Component | Minimum | Recommended\nCPU | 4 cores | 16 cores\nMemory | 16 GB | 64 GB" in sizing.text
    assert "1. Download the archive\n2. Verify the checksum" in doc.text
    assert "- Check the logs daily\n- Rotate credentials monthly" in doc.text
    assert chunks[0].text.startswith("Cluster Handbook\n\nThis handbook")  # the title paragraph, folded into the next


def test_pptx_slides_titles_tables_groups_and_notes(made: Documents) -> None:
    reader = reader_for(made.deck_pptx)
    assert reader is not None and reader.page_label == "slide"
    doc = read(made.deck_pptx)
    assert doc.title == "Roadmap Review" and len(doc.pages) == 4
    chunks = chunk_document(doc)
    assert [(c.headings, c.page_start, c.page_end) for c in chunks] == [
        (("Roadmap 2025",), 1, 1),
        (("Goals",), 2, 2),
        (("Schedule",), 3, 3),
        ((), 4, 4),
    ]
    assert "Read PDF page by page\n  Keep the bookmarks as headings" in chunks[1].text
    assert "Speaker notes:\nStress that every chunk cites its page." in chunks[1].text
    assert "Quarter | Deliverable\nQ1 | PDF reader\nQ2 | HTML reader" in chunks[2].text and "Grouped remark" in chunks[2].text
    assert chunks[3].text == "A slide without a title"
    assert reason(made.deck_pptx, max_pages=3) == "more than 3 slides (MAX_PAGES)"


def test_html_keeps_the_main_content_only(made: Documents) -> None:
    doc = read(made.page_html)
    assert doc.title == MANUAL_TITLE
    assert section_paths(doc) == markdown_paths()
    for chrome in ("analytics code", "tracking code", "Site home", "cookies", "hidden survey", "Copyright", "color: gray"):
        assert chrome not in doc.text
    contents = [line for line in doc.text.splitlines() if line.strip() in ("- Installation", "- Requirements")]
    assert contents == []  # pandoc's table of contents (a <nav>) is gone
    assert "CPU | 4 cores | 16 cores" in doc.text


def test_html_in_a_declared_legacy_charset(made: Documents) -> None:
    page = made.page_html.read_text(encoding="utf-8").replace('<meta charset="utf-8" />', '<meta charset="iso-8859-1" />')
    page = page.replace("Backups</h2>", "Sauvegardes régulières</h2>")
    latin = made.path("latin.html")  # browsers read a page labelled Latin-1 as windows-1252, and so do we
    latin.write_bytes(codecs.encode(page, "cp1252"))
    assert ("Operations", "Sauvegardes régulières") in section_paths(read(latin))


def test_rst_underlined_titles_become_the_heading_path(made: Documents) -> None:
    doc = read(made.manual_rst)
    assert doc.title == MANUAL_TITLE
    assert section_paths(doc) == [(MANUAL_TITLE,), *[(MANUAL_TITLE, *path) for path in markdown_paths()]]
    assert doc.text == made.manual_rst.read_text(encoding="utf-8")  # kept as it is: chunks are slices of the file
    backups = chunk_with(chunk_document(doc), MANUAL_SECTIONS[4][2][0])
    assert backups.headings == (MANUAL_TITLE, "Operations", "Backups")


def test_rst_rubrics_are_headings_under_their_section(made: Documents) -> None:
    """pandoc writes a heading it cannot nest (inside a list item) as a `.. rubric::`."""
    markdown = "# Guide\n\nIntro.\n\n-   A list item\n\n    #### Heading inside the item\n\n    Text under the nested heading.\n"
    rst = made.rst_from_markdown(markdown, "rubric")
    assert ".. rubric:: Heading inside the item" in rst.read_text(encoding="utf-8")
    chunks = chunk_document(read(rst))
    assert chunk_with(chunks, "Text under the nested heading").headings == ("Guide", "Heading inside the item")


def test_truncated_office_files(made: Documents) -> None:
    assert reason(made.truncated(made.manual_docx, "half.docx")) == (
        "not a readable DOCX (damaged or truncated: not a whole ZIP package)"
    )
    assert reason(made.truncated(made.deck_pptx, "half.pptx")) == (
        "not a readable PPTX (damaged or truncated: not a whole ZIP package)"
    )
    renamed = made.path("deck-named.docx")
    renamed.write_bytes(made.deck_pptx.read_bytes())
    assert reason(renamed).startswith("not a readable DOCX (damaged:")


def test_a_zip_bomb_is_refused(made: Documents) -> None:
    """A real DOCX with 300 MB of zeros added (zipfile deflates them to 300 KB) is refused before it is unpacked."""
    bomb = made.path("bomb.docx")
    shutil.copy(made.handbook_docx, bomb)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as package:
        with package.open("word/media/zeros.bin", "w") as out:
            for _ in range(300):
                out.write(bytes(2**20))
    assert bomb.stat().st_size < 2 * 2**20
    assert reason(bomb) == "not a readable DOCX (it unpacks to 300 MB: a ZIP bomb?)"


# --- text ---------------------------------------------------------------------------------------------------

SAMPLE = "Café menu — “déjà vu” prices: crème brûlée 5 €, naïve façade, smørrebrød, Straße.\nÜber Größe: Äpfel, Öl.\n"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("utf-8", SAMPLE),
        ("utf-8-sig", SAMPLE),
        ("utf-16", SAMPLE),  # with a byte-order mark
        ("utf-16-le", "Plain words without a byte-order mark, in UTF-16.\n" * 3),
        ("utf-16-le", "数据存储在 Milvus 中，分为 3 类。\n向量索引建在段上。\n" * 20),  # CJK: NULs only in its ASCII
        ("utf-16-be", "数据存储在 Milvus 中，分为 3 类。\n向量索引建在段上。\n" * 20),
        ("utf-16-le", "데이터는 Milvus 에 저장됩니다.\n" * 20),
        ("utf-16-le", "数据存储在磁盘上一个向量索引建在段上" * 20),  # no ASCII at all: no NULs
        ("utf-16-be", "データはディスクに保存されます" * 20),
        ("cp1252", SAMPLE),
        ("latin-1", SAMPLE.replace("—", "-").replace("“", '"').replace("”", '"').replace("€", "EUR")),
        ("latin-1", "Crème brûlée\n"),
    ],
)
def test_text_in_common_encodings(tmp_path: Path, encoding: str, text: str) -> None:
    for suffix in (".txt", ".md", ".rst"):
        path = tmp_path / f"sample{suffix}"
        path.write_bytes(codecs.encode(text, encoding))
        assert read(path).text == text, (encoding, suffix)


def test_binary_files_are_not_text(made: Documents, tmp_path: Path) -> None:
    need("pdftoppm", "img2pdf")
    made.scanned_pdf  # noqa: B018 - renders the page images
    image = next((made.folder / "scan").glob("page-*.png"))
    for suffix in (".txt", ".md", ".rst", ".html"):
        path = tmp_path / f"image{suffix}"
        path.write_bytes(image.read_bytes())
        assert reason(path) == "binary file, not text"


def test_utf8_markdown_and_text_read_exactly_as_before(tmp_path: Path) -> None:
    """The chunks (and so the chunk ids) of UTF-8 files are those of the plain UTF-8 decoding used before."""
    files = sorted((REPO / "data" / "milvus_docs").rglob("*.md"))
    assert files
    for path in files:
        data = path.read_bytes()
        assert chunk_document(read(path)) == chunk_document(parse_markdown(data.decode("utf-8-sig")))
        as_text = tmp_path / "plain.txt"
        as_text.write_bytes(codecs.BOM_UTF8 + data)
        before = data.decode("utf-8")
        assert chunk_document(read(as_text)) == chunk_document(Document(before, None, [Section(0, len(before), (), 0)]))


def test_the_registry_reads_every_format() -> None:
    assert supported_suffixes() == [
        ".csv", ".docx", ".eml", ".epub", ".htm", ".html", ".ipynb", ".jpeg", ".jpg", ".markdown", ".md", ".mdx", ".ods",
        ".pdf", ".png", ".pptx", ".rst", ".text", ".tif", ".tiff", ".tsv", ".txt", ".xls", ".xlsm", ".xlsx",
    ]  # fmt: skip


# --- ingest ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.slow  # about 15 s on 2 cores: LibreOffice, the model, Milvus Lite
async def test_ingest_a_folder_of_documents(
    made: Documents, services: Services, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of every format, with the unreadable ones skipped for their reasons; search hits in the PDF and
    the deck carry their pages in the stored rows."""
    monkeypatch.setattr(ocr.SETTINGS, "mode", "off")  # the 50 dpi scan is skipped (OCR: tests/test_ocr.py)
    folder = docs / "documents"
    folder.mkdir()
    readable = {
        "manual.pdf": made.manual_pdf,
        "manual.docx": made.manual_docx,
        "manual.html": made.page_html,
        "manual.rst": made.manual_rst,
        "deck.pptx": made.deck_pptx,
        "handbook.docx": made.handbook_docx,
    }
    for name, source in readable.items():
        (folder / name).write_bytes(source.read_bytes())
    (folder / "notes-utf16.txt").write_bytes(codecs.encode(SAMPLE, "utf-16"))
    (folder / "notes-latin1.txt").write_bytes(codecs.encode("Crème brûlée, façade, naïve.\n", "latin-1"))
    unreadable = {
        "scanned.pdf": (made.scanned_pdf, SCANNED),
        "encrypted.pdf": (made.encrypted_pdf, "encrypted PDF"),
        "half.pdf": (made.truncated(made.manual_pdf, "half-for-ingest.pdf"), "not a readable PDF (damaged or truncated"),
        "half.pptx": (made.truncated(made.deck_pptx, "half-for-ingest.pptx"), "not a readable PPTX (damaged or truncated"),
    }
    for name, (source, _) in unreadable.items():
        (folder / name).write_bytes(source.read_bytes())

    result = await ingest_documents(services, ["documents"])
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert result.files == len(readable) + 2
    assert set(reasons) == set(unreadable)
    for name, (_, expected) in unreadable.items():
        assert reasons[name].startswith(expected), (name, reasons[name])

    name = services.collection
    hits = (await search_milvus_docs(services, "How often are sealed segments copied to cold storage?", top_k=10)).results
    pdf_hits = [h for h in hits if h.source.endswith("manual.pdf")]
    assert pdf_hits and pdf_hits[0].heading == "Backups"
    rows = await services.store.fetch(name, [h.chunk_id for h in hits])
    for hit in hits:
        row = rows[hit.chunk_id]
        if hit.source.endswith(".pdf"):
            assert 1 <= row.page_start <= row.page_end
        else:
            assert row.page_start == row.page_end == 0
    backups = rows[pdf_hits[0].chunk_id]
    assert (backups.page_start, backups.page_end) == _pages_of(read(made.manual_pdf), MANUAL_SECTIONS[4][2][0])

    slides = (await search_milvus_docs(services, "Which quarter brings the HTML reader?", top_k=5, source="*.pptx")).results
    assert slides and slides[0].heading == "Schedule"
    slide = (await services.store.fetch(name, [slides[0].chunk_id]))[slides[0].chunk_id]
    assert (slide.page_start, slide.page_end) == (3, 3)


def _pages_of(doc: Document, words: str) -> tuple[int, int]:
    chunk = chunk_with(chunk_document(doc), words)
    return chunk.page_start, chunk.page_end
