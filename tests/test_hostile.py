"""Hostile requests (issue 26): huge arguments, globs Milvus cannot match, bad prompt arguments. Each one is
answered quickly with a clear error or a plain result, and a call made beside it is not held up.

A real stdio server over a real Milvus Lite file; the bounds on time are generous (the old code took 25 s for a
200 KB argument, and did not finish with 1 MB or with 13 `**/` in a glob).
"""

from __future__ import annotations

import os
import resource
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import payload, stdio_session
from tests.engines import no_engine_left
from tools import globs
from tools.embedders import OnnxMiniLM
from tools.errors import UserError
from tools.ingest import ingest_text, read_document
from tools.readers import Unreadable
from tools.readers.base import time_budget
from tools.readers.html import READER as HTML
from tools.readers.pdf import READER as PDF
from tools.redact import redact_urls_in
from tools.services import Services
from tools.store import Store
from tools.store.lite_engine import LiteFiles

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"
HUGE = "a" * 1_000_000


def test_redaction_is_linear() -> None:
    started = time.perf_counter()
    for text in (HUGE, "a." * 500_000, "x://" * 250_000, "https://u:p@h/?" + "k=v&" * 250_000):
        redact_urls_in(text)
    assert time.perf_counter() - started < 2  # the old pattern: 2 s for 20 KB, quadratic
    assert redact_urls_in("see foohttps://u:p@h/x?k=v and https://a:b@c") == "see foohttps://***@h/x?k=*** and https://***@c"


def test_globs_match_in_linear_time() -> None:
    started = time.perf_counter()
    assert not globs.matches("a/" * 1000 + "y", "**/" * 13 + "x")  # exponential as a regex: never finished
    assert globs.matches("a/" * 1000 + "x", "**/" * 13 + "x")
    assert not globs.matches("a" * 4000, "*a" * 30 + "b")  # polynomial of degree 30 as a regex
    assert not globs.matches("a/" * 1000 + "a" * 2000, "a/**/" * 100 + "b")
    assert time.perf_counter() - started < 2


@pytest.mark.processes
async def test_huge_arguments_and_hostile_globs_do_not_hold_up_other_calls(docs: Path, tmp_path: Path) -> None:
    env = {"MILVUS_URI": str(tmp_path / "hostile.db"), "INGEST_ROOTS": str(docs)}
    async with stdio_session(env) as session:
        assert not (await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]})).is_error
        long_name = "deep/" * 700 + "a" * 400 + ".md"  # 4,000 characters of a name that globs backtrack over
        stored = await session.call_tool("ingest_text", {"text": "# Deep\n\nA note stored deep down.", "source": long_name})
        assert not stored.is_error, stored.content

        hostile: list[tuple[str, dict[str, Any]]] = [
            ("read_context", {"chunk_id": HUGE}),
            ("describe_collection", {"collection": HUGE}),
            ("ingest_documents", {"paths": [HUGE]}),
            ("search_milvus_docs", {"query": QUESTION, "source": HUGE}),
        ]
        answered: dict[str, tuple[float, Any]] = {}
        started = time.perf_counter()

        async def call(label: str, tool: str, arguments: dict[str, Any]) -> None:
            result = await session.call_tool(tool, arguments)
            answered[label] = (time.perf_counter() - started, result)

        async with anyio.create_task_group() as tg:
            for i, (tool, arguments) in enumerate(hostile):
                tg.start_soon(call, f"hostile{i}", tool, arguments)
            tg.start_soon(call, "search", "search_milvus_docs", {"query": QUESTION})
        assert time.perf_counter() - started < 20
        assert not answered["search"][1].is_error and payload(answered["search"][1])["results"]
        for i, (tool, _) in enumerate(hostile):
            result = answered[f"hostile{i}"][1]
            text = result.content[0].text
            assert result.is_error, (tool, text[:200])
            assert len(text) < 1000 and "a" * 50 in text and "a" * 200 not in text, (tool, text[:300])  # cut short

        # hostile files, ingested while another call runs: each read in bounded time, the search not held up
        hostile_dir = docs / "hostile"
        hostile_dir.mkdir()
        (hostile_dir / "anchors.html").write_text("<h2>Intro" + " #" * 10_000 + "x</h2><p>body</p>")  # 11 s before
        (hostile_dir / "deep.html").write_text("<p>before</p>" + "<div>" * 100_000 + "deep" + "</div>" * 100_000)
        lines = [f"Line {i} of the body text" for i in range(300)]  # 20,000 bookmarks: over 30 s before
        (hostile_dir / "outline.pdf").write_bytes(outline_pdf(lines, [f"Missing {i}" for i in range(20000)]))
        answered.clear()
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "ingest", "ingest_documents", {"paths": ["hostile"]})
            tg.start_soon(call, "search", "search_milvus_docs", {"query": QUESTION})
        assert answered["search"][0] < 15 and answered["ingest"][0] < 60, answered
        ingested = payload(answered["ingest"][1])
        assert [s["reason"] for s in ingested["skipped"]] == [
            "HTML nested more than 2048 elements deep: the parser stops there, losing the rest"
        ], ingested["skipped"]
        assert ingested["chunks_added"] > 0

        # a glob Milvus's own matcher gives up on: our matching answers, in every tool
        for pattern in ["**/" * 13 + "x", "*a" * 30 + "b", "**/" * 13 + "*.md", "deep/**/a*a*a*a*.md"]:
            t0 = time.perf_counter()
            found = await session.call_tool("search_milvus_docs", {"query": QUESTION, "source": pattern})
            assert not found.is_error, (pattern, found.content[0].text[:300])
            described = await session.call_tool("describe_collection", {"source": pattern})
            deleted = await session.call_tool("delete_documents", {"sources": [pattern], "dry_run": True})
            assert time.perf_counter() - t0 < 10
            listed = [s["source"] for s in payload(described)["listed"]]
            hits = [h["source"] for h in payload(found)["results"]]
            if pattern.endswith("*.md"):
                assert hits and listed and set(hits) <= set(listed), pattern
                assert not deleted.is_error and set(payload(deleted)["sources_removed"]) == set(listed)
            else:
                assert hits == listed == [] and "No document matches" in found.content[0].text, pattern
                assert deleted.is_error and "matches" in deleted.content[0].text
        too_long = await session.call_tool("search_milvus_docs", {"query": QUESTION, "source": "*/" * 600})
        assert too_long.is_error and "longer than 1024 characters" in too_long.content[0].text

        # the prompt's arguments are checked as the tool's are, and a bad one says why
        for arguments, said in [
            ({"question": "x" * 5000}, "the limit is"),
            ({"question": QUESTION, "top_k": "1000"}, "top_k must be a whole number from 1 to"),
            ({"question": QUESTION, "top_k": "three"}, "not 'three'"),
        ]:
            with pytest.raises(MCPError) as raised:
                await session.get_prompt("ask_docs", arguments)
            assert said in raised.value.message and "Error rendering" not in raised.value.message, raised.value.message
        prompt = await session.get_prompt("ask_docs", {"question": QUESTION, "top_k": "2"})
        text = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert "\n[2] " in text and "\n[3] " not in text


# --- hostile files --------------------------------------------------------------------------------------------


def test_an_html_heading_full_of_anchor_signs_reads_in_linear_time() -> None:
    started = time.perf_counter()
    read = HTML.read(("<h2>Intro" + " #" * 40000 + "x</h2><p>body</p>").encode(), 100)  # 80 KB: 79 s before
    assert read.text.endswith("x\n\nbody")
    assert HTML.read(("<h2>Intro" + " #" * 400000 + "</h2><p>body</p>").encode(), 100).text == "Intro\n\nbody"
    assert time.perf_counter() - started < 3


def test_deep_html_is_read_or_skipped_with_a_reason() -> None:
    for depth in (255, 2000):  # lxml stopped at 255 levels, silently: only "before" was indexed
        html = "<p>before</p>" + "<div>" * depth + "deep text" + "</div>" * depth + "<p>after</p>"
        assert HTML.read(html.encode(), 100).text == "before\n\ndeep text\n\nafter"
    deeper = "<p>before</p>" + "<div>" * 100_000 + "deep text" + "</div>" * 100_000 + "<p>after</p>"
    with pytest.raises(Unreadable, match="nested more than 2048 elements deep"):  # was "no text to index"
        HTML.read(deeper.encode(), 100)


def outline_pdf(lines: list[str], titles: list[str]) -> bytes:
    """One page holding `lines` (Helvetica, 1 pt apart), with a bookmark per title pointing at it."""
    objects: list[bytes] = []
    content = "BT /F1 1 Tf 0 3100 Td " + " ".join(f"({t}) Tj 0 -1 Td" for t in lines) + " ET"
    n = len(titles)
    first_bm = 6
    objects.append(b"<< /Type /Catalog /Pages 2 0 R /Outlines 5 0 R >>")
    objects.append(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    resources = b"<< /Font << /F1 %s >> >>" % font
    objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 3200] /Contents 4 0 R /Resources %s >>" % resources)
    stream = content.encode("latin-1")
    objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>" % (first_bm, first_bm + n - 1, n))
    for i, title in enumerate(titles):
        links = b""
        if i:
            links += b" /Prev %d 0 R" % (first_bm + i - 1)
        if i < n - 1:
            links += b" /Next %d 0 R" % (first_bm + i + 1)
        objects.append(b"<< /Title (%s) /Parent 5 0 R /Dest [3 0 R /XYZ 0 3200 0]%s >>" % (title.encode("latin-1"), links))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_outline_is_placed_in_linear_time_and_within_the_time_budget() -> None:
    lines = [f"Line {i} of the body text" for i in range(3000)]
    started = time.perf_counter()
    missing = PDF.read(outline_pdf(lines, [f"Missing {i}" for i in range(20000)]), 100)  # 233 s of CPU before
    assert "Line 2999 of the body text" in missing.text
    matching = PDF.read(outline_pdf(lines, [f"Line {i % 3000} of the body text" for i in range(20000)]), 100)
    assert len(matching.sections) == 3000 and matching.sections[5].headings == ("Line 5 of the body text",)
    assert time.perf_counter() - started < 20
    with time_budget(0.0), pytest.raises(Unreadable, match=r"took more than 0 s to read"):  # what a costlier one gets
        PDF.read(outline_pdf(lines[:10], ["Line 1 of the body text"] * 100), 100)


def test_a_file_swapped_for_a_huge_sparse_one_is_never_loaded(tmp_path: Path) -> None:
    """The size is checked on the opened file and at most the limit + 1 bytes are read, so swapping the file
    between the check and the read gains nothing (3 reads in 100 loaded 2 GB before)."""
    path, small, huge = tmp_path / "notes.txt", tmp_path / "small.txt", tmp_path / "huge.txt"
    small.write_text("A small note.\n")
    with huge.open("wb") as f:
        f.truncate(2 * 2**30)  # sparse: 2 GB of NULs that take no disk
    path.write_text("A small note.\n")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            with path.open("rb") as current:
                is_small = current.read(1) == b"A"
            os.link(huge if is_small else small, tmp_path / "next")
            os.replace(tmp_path / "next", path)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    swapper = threading.Thread(target=swap)
    swapper.start()
    reasons = set()
    try:
        for _ in range(200):
            try:
                assert read_document(path, 10 * 2**20, 100).text == "A small note.\n"
                reasons.add("read")
            except Unreadable as exc:
                reasons.add(str(exc))
    finally:
        stop.set()
        swapper.join()
    assert reasons <= {"read", "larger than the 10 MB limit (MAX_FILE_MB)"}, reasons
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KB: no 2 GB read


def bloated_office(source: Path, part: str, element: bytes, mb: int, out: Path) -> Path:
    """A copy of a real Office file whose `part` has `mb` MB of `element` inside its first paragraph's parent,
    written in chunks (it deflates about 1000:1, as in the review's 334 KB .pptx of 200 MB)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename != part:
                copy.writestr(info, data)
                continue
            cut = data.index(b"</", data.index(element.split(b"/")[0]))  # just before the first element closes
            with copy.open(part, "w", force_zip64=True) as bloated:
                bloated.write(data[:cut])
                block = element * (2**20 // len(element))
                for _ in range(mb):
                    bloated.write(block)
                bloated.write(data[cut:])
    return out


@pytest.mark.parametrize(
    ("suffix", "part", "element"), [(".docx", "word/document.xml", b"<w:p/>"), (".pptx", "ppt/slides/slide1.xml", b"<a:p/>")]
)
def test_office_files_that_inflate_to_millions_of_paragraphs_are_skipped_in_bounded_memory(
    tmp_path: Path, suffix: str, part: str, element: bytes
) -> None:
    if suffix == ".docx":
        import docx

        document = docx.Document()
        document.add_paragraph("A real paragraph.")
        document.save(tmp_path / "real.docx")
    else:
        import pptx

        deck = pptx.Presentation()
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.placeholders[1].text_frame.text = "A real paragraph."
        deck.save(tmp_path / "real.pptx")
    hostile = bloated_office(tmp_path / f"real{suffix}", part, element, 40, tmp_path / f"hostile{suffix}")
    assert hostile.stat().st_size < 400_000  # 40 MB of elements: 7 million, 1.9 GB and a minute before
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(Unreadable, match=r"more than 1,000,000 XML elements \(MAX_ELEMENTS, passed in " + part):
        read_document(hostile, 10 * 2**20, 1000)
    assert time.perf_counter() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KB
    assert "A real paragraph." in read_document(tmp_path / f"real{suffix}", 10 * 2**20, 1000).text


async def test_a_folder_where_the_engine_socket_goes_is_replaced_or_named(tmp_path: Path, embedder: OnnxMiniLM) -> None:
    """An empty folder in the socket's place (left by a mistaken mkdir) is removed; one with files in it is named,
    not blamed on /tmp ("/tmp/mlite-0 cannot be written... make /tmp writable", and every later start failed)."""
    db = tmp_path / "s.db"
    socket = LiteFiles.of(db).socket
    socket.parent.mkdir(mode=0o700, exist_ok=True)
    socket.mkdir()
    services = Services(store=Store(str(db)), embedder=embedder, roots=[tmp_path])
    try:
        stored = await ingest_text(services, "# Note\n\nA note.", "note.md")
        assert stored.chunks_added == 1
    finally:
        services.store.close()
    no_engine_left(db)
    socket.unlink(missing_ok=True)
    socket.mkdir()
    (socket / "keep.txt").write_text("someone's file")
    services = Services(store=Store(str(db)), embedder=embedder, roots=[tmp_path])
    try:
        with pytest.raises(UserError) as raised:
            await ingest_text(services, "# Note\n\nAnother note.", "other.md")
        assert f"{socket} is a folder" in str(raised.value) and "make /tmp writable" not in str(raised.value)
    finally:
        services.store.close()
        (socket / "keep.txt").unlink()
        socket.rmdir()
    no_engine_left(db)


def test_large_tables_are_read_within_the_time_budget(tmp_path: Path) -> None:
    import docx

    from tools.readers.delimited import READER as CSV
    from tools.readers.docx import READER as DOCX

    made = docx.Document()
    table = made.add_table(rows=200, cols=3)
    for i, row in enumerate(table.rows):
        for j, cell in enumerate(row.cells):
            cell.text = f"row {i} cell {j}"
    made.save(tmp_path / "table.docx")
    word = (tmp_path / "table.docx").read_bytes()
    html = "<table>" + "".join(f"<tr><td>row {i}</td><td>x</td></tr>" for i in range(200)) + "</table>"
    csv = "Question,Answer\n" + "".join(f"q{i},a{i}\n" for i in range(200))
    assert "row 199 cell 2" in DOCX.read(word, 100).text  # within the budget, the whole table is read
    for reader, data in ((DOCX, word), (HTML, html.encode()), (CSV, csv.encode())):
        with time_budget(0.0), pytest.raises(Unreadable, match=r"took more than 0 s to read"):  # a costlier one
            reader.read(data, 100)
