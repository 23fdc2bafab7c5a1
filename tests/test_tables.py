"""The table readers (CSV, TSV, XLSX, XLS, ODS) on files made by real tools: LibreOffice (CSV → XLSX, XLS, ODS,
computing the formulas' values), XlsxWriter (a hidden sheet), Python's csv and codecs; hostile ones too (a sheet
of more than a million rows packed small, a 10 MB cell, too many rows)."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import time
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from tests.documents import need, run
from tools.chunking import chunk_document
from tools.ingest import ingest_documents
from tools.readers import Document, Unreadable, reader_for
from tools.readers.rows import MAX_CELL_CHARS, MAX_ROWS
from tools.search import citation, search_milvus_docs
from tools.services import Services

FAQ = [
    ("Question", "Answer", "Votes"),
    ("Where does Milvus store data?", "Milvus keeps inserted data in object storage such as MinIO, S3 or Azure Blob.", "=2*21"),
    ("Can I change the index after creation?", "Drop the index, then create a new one; the data stays.", "=C2+1"),
    ("Does Milvus support Chinese text?", "Yes: the jieba analyzer splits Chinese words for BM25.", "7"),
]


def read(path: Path) -> Document:
    reader = reader_for(path)
    assert reader is not None, path
    return reader.read(path.read_bytes(), 2000)


def reason(path: Path) -> str:
    with pytest.raises(Unreadable) as raised:
        read(path)
    return str(raised.value)


def libreoffice(source: Path, fmt: str) -> Path:
    """`source` converted by LibreOffice Calc, which computes the formulas and saves their values."""
    need("soffice")
    profile = (source.parent / "lo-profile").as_uri()
    run("soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", fmt, "--outdir", source.parent, source)
    return source.with_suffix("." + fmt)


@pytest.fixture(scope="module")
def faq_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "faq.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(FAQ)
    return path


@pytest.mark.parametrize("fmt", ["xlsx", "xls", "ods"])
def test_a_libreoffice_workbook_reads_row_by_row_with_its_header(faq_csv: Path, fmt: str) -> None:
    doc = read(libreoffice(faq_csv, fmt))
    lines = doc.text.splitlines()
    assert lines[0] == (
        "Question: Where does Milvus store data? | Answer: Milvus keeps inserted data in object storage such as MinIO, "
        "S3 or Azure Blob. | Votes: 42"
    )  # the formula as its computed value
    assert lines[1].endswith("| Votes: 43")
    [chunk] = chunk_document(doc)
    assert chunk.headings == ("faq",)  # LibreOffice names the sheet after the file
    assert (chunk.page_start, chunk.page_end) == (2, 4)  # the rows under the header
    assert citation(f"faq.{fmt}", chunk.page_start, chunk.page_end, chunk.headings) == f"faq.{fmt} faq rows 2-4"


def test_sheets_are_sections_rows_stay_whole_and_hidden_sheets_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "handbook.xlsx"
    book = xlsxwriter.Workbook(path)
    faq = book.add_worksheet("FAQ")
    faq.write_row(2, 1, ["Question", "Answer"])  # the table starts at B3
    for i in range(40):
        faq.write_row(3 + i, 1, [f"How do I reset widget {i}?", f"Hold the button of widget {i} for {i + 3} seconds. " * 2])
    book.add_worksheet("Empty")
    staff = book.add_worksheet("Staff")
    staff.write_row(0, 0, ["Name", "", "Room"])
    staff.write_row(1, 0, ["Ada", "on leave", 12, "extra"])
    secret = book.add_worksheet("Salaries")
    secret.write_row(0, 0, ["Name", "Salary"])
    secret.write_row(1, 0, ["Ada", "a hidden sum"])
    secret.hide()
    book.close()

    doc = read(path)
    assert "hidden sum" not in doc.text
    chunks = chunk_document(doc)
    assert {c.headings for c in chunks} == {("FAQ",), ("Staff",)}
    faq_chunks = [c for c in chunks if c.headings == ("FAQ",)]
    assert len(faq_chunks) > 3
    for chunk in faq_chunks:  # every chunk is whole rows, each with its header
        assert all(line.startswith("Question: How do I reset widget ") for line in chunk.text.splitlines())
        assert chunk.text.endswith("seconds.")
    assert faq_chunks[0].page_start == 4  # B3 holds the header: the first answer is on row 4
    assert faq_chunks[-1].page_end == 43
    ranges = [(c.page_start, c.page_end) for c in faq_chunks]
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))  # no row twice, none lost
    [staff_chunk] = [c for c in chunks if c.headings == ("Staff",)]
    assert staff_chunk.text == "Name: Ada | Column 2: on leave | Room: 12 | Column 4: extra"
    assert citation("handbook.xlsx", 2, 2, ("Staff",)) == "handbook.xlsx Staff row 2"


def test_csv_and_tsv_delimiters_and_encodings_are_sniffed(tmp_path: Path) -> None:
    rows = [("Frage", "Antwort"), ("Wo liegt die Datei?", "Im Ordner „Übersicht“, 3. Fach; rechts"), ("Wer?", "Jörg")]
    semicolons = tmp_path / "fragen.csv"
    with io.StringIO(newline="") as out:
        csv.writer(out, delimiter=";").writerows(rows)
        semicolons.write_bytes(codecs.encode(out.getvalue(), "cp1252"))
    tabs = tmp_path / "fragen.tsv"
    with io.StringIO(newline="") as out:
        csv.writer(out, dialect="excel-tab").writerows(rows)
        tabs.write_bytes(codecs.encode(out.getvalue(), "utf-16"))
    for path in (semicolons, tabs):
        doc = read(path)
        assert doc.text == (
            "Frage: Wo liegt die Datei? | Antwort: Im Ordner „Übersicht“, 3. Fach; rechts\nFrage: Wer? | Antwort: Jörg"
        )
        [chunk] = chunk_document(doc)
        assert citation(path.name, chunk.page_start, chunk.page_end, chunk.headings) == f"{path.name} rows 2-3"


def test_a_10_mb_cell_is_cut_and_read_quickly(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    path.write_text('Key,Value\nsmall,"one line"\nbig,"' + "word " * (2 * 2**20) + '"\n', encoding="utf-8")
    assert path.stat().st_size > 10 * 2**20
    started = time.perf_counter()
    doc = read(path)
    assert time.perf_counter() - started < 10  # generous: about 1 s here
    first, second = doc.text.split("\n\n")  # the long row is a group of its own
    assert first == "Key: small | Value: one line"
    assert second.startswith("Key: big | Value: word word") and second.endswith(" [cut]")
    assert len(second) < MAX_CELL_CHARS + 100


def test_too_many_rows_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(MAX_ROWS + 1)), encoding="utf-8")
    assert reason(path) == f"it has more than {MAX_ROWS:,} rows: a data export, not a document to search"


def test_a_workbook_zip_bomb_and_a_million_row_sheet_are_refused_before_loading(faq_csv: Path, tmp_path: Path) -> None:
    """A real workbook whose sheet is replaced by 1.2 million rows (80 MB of XML, a few MB packed)."""
    source = libreoffice(faq_csv, "xlsx")
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for item in original.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                out.writestr(item, original.read(item))
                continue
            with out.open(item.filename, "w") as sheet:
                sheet.write(
                    b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                )
                for block in range(1200):
                    numbers = range(block * 1000 + 1, block * 1000 + 1001)
                    sheet.write("".join(f'<row r="{n}"><c r="A{n}" t="n"><v>{n}</v></c></row>' for n in numbers).encode())
                sheet.write(b"</sheetData></worksheet>")
    assert bomb.stat().st_size < 10 * 2**20
    started = time.perf_counter()
    assert reason(bomb).startswith("xl/worksheets/sheet1.xml unpacks to ")
    assert time.perf_counter() - started < 2


@pytest.mark.anyio
async def test_ingest_and_search_cite_the_sheet_and_rows(faq_csv: Path, services: Services, docs: Path) -> None:
    folder = docs / "tables"
    folder.mkdir()
    (folder / "faq.xlsx").write_bytes(libreoffice(faq_csv, "xlsx").read_bytes())
    (folder / "faq.csv").write_bytes(faq_csv.read_bytes())
    result = await ingest_documents(services, ["tables"])
    assert (result.files, result.skipped) == (2, [])
    hits = (await search_milvus_docs(services, "Where is inserted data kept?", top_k=2, source="tables/*")).results
    assert {h.citation for h in hits} == {"tables/faq.xlsx faq rows 2-4", "tables/faq.csv rows 2-4"}
