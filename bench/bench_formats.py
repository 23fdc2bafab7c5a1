"""Format fidelity and reader speed: the Milvus FAQ (../shared/corpus) converted with real tools to HTML (pandoc),
DOCX (pandoc), PDF (LibreOffice, from the DOCX) and reStructuredText (pandoc); each version is ingested into its own
Milvus Lite file and asked the 60 dev questions, scored as bench/eval_retrieval.py scores them (its functions,
imported), with the gold file's suffix changed to the format's.

Headings are compared as they read: a gold heading written "How to set `nlist`..." in Markdown is rendered
"How to set nlist..." by every other format, and pandoc's smart quotes turn "What's" into "What’s"; so both
sides drop backticks and straighten quotes before `score` compares them (the strict R@3, as eval_retrieval
scores it, is printed too).

Printed: recall@k and MRR@10 per format next to the Markdown original, the share of PDF hits that carry a page,
ingest throughput (whole ingest, with embedding) and reader throughput (read and chunk only), files/s and
pages/s for the PDF.

    .venv/bin/python bench/bench_formats.py
    .venv/bin/python bench/bench_formats.py --modes dense,hybrid --json /tmp/formats.json
    .venv/bin/python bench/bench_formats.py --corpus all     # the FAQ among all 224 English pages (slow: ~1 h)
    .venv/bin/python bench/bench_formats.py --manuals        # Debian's manuals only: running headers, navigation
    .venv/bin/python bench/bench_formats.py --hostile        # each reader's time and peak memory on hostile files

With --manuals (`make .cache/manuals.installed` fetches them): for the R manuals (PDF) the share of pages whose
running header or footer survives in the text (aim: none) and the chunks of navigation only (tables of contents,
indexes; aim: none), and for the Python 3.11 HTML docs the chunks of navigation only (tests/manuals.py measures).

With `--new` it measures the formats added since instead, beside Markdown: the FAQ as a spreadsheet and a CSV
(a row per question: Question | Answer), as EPUB (pandoc), notebooks (a Markdown cell per section), e-mails (Python's email
package, the Markdown as the text part), and as scanned pages (the PDF rendered at 300 dpi by pdftoppm, wrapped by
img2pdf, read back through OCR) next to its text-layer PDF. A table hit is right when its rows hold the gold
question; a PDF or scan hit when it lies on a page of the gold section in the text-layer PDF (so both are scored
alike). It also prints OCR pages/s and the memory peak of each reader on its largest file (in a fresh process).

    nice -n 19 .venv/bin/python bench/bench_formats.py --new

Needs pandoc, LibreOffice, poppler, img2pdf and Tesseract (`make .cache/doc-tools.installed`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from eval_retrieval import CORPORA, SHARED, score, search

from server.settings import Settings
from tools.chunking import chunk_document
from tools.ingest import ingest_documents
from tools.readers import reader_for
from tools.search import SearchHit
from tools.services import Services
from tools.store import Store

FORMATS = ("md", "html", "docx", "pdf", "rst")
TIMEOUT_S = 300


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=TIMEOUT_S)


def convert(markdown: list[Path], out: Path) -> dict[str, float]:
    """Each Markdown file into every format, in out/<format>/<its path>; seconds per format."""
    for tool in ("pandoc", "soffice"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: run `make .cache/doc-tools.installed`")
    seconds: dict[str, float] = {}
    for fmt in FORMATS:
        started = time.perf_counter()
        for source in markdown:
            target = out / fmt / source.relative_to(out / "src").with_suffix("." + fmt)
            target.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "md":
                shutil.copy(source, target)
            elif fmt in ("html", "docx", "rst"):
                run("pandoc", "-f", "markdown", *(["-s"] if fmt != "docx" else []), "-t", fmt, source, "-o", target)
        if fmt == "pdf":  # LibreOffice prints the DOCX versions, all in one run
            for folder in sorted({d.parent for d in (out / "docx").rglob("*.docx")}):
                target = out / "pdf" / folder.relative_to(out / "docx")
                profile = (out / "libreoffice-profile").as_uri()
                run("soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir", target,
                    *sorted(folder.glob("*.docx")))  # fmt: skip
        seconds[fmt] = time.perf_counter() - started
    return seconds


def pdf_pages(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*.pdf"):
        reader = reader_for(path)
        assert reader is not None
        total += len(reader.read(path.read_bytes(), 10_000).pages)
    return total


def reader_speed(folder: Path, min_seconds: float = 1.0) -> tuple[float, int]:
    """(seconds per pass over the folder, chunks), reading and chunking every file, repeated for at least a second."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    passes, chunks, started = 0, 0, time.perf_counter()
    while passes < 200 and (passes == 0 or time.perf_counter() - started < min_seconds):
        chunks = 0
        for path in files:
            reader = reader_for(path)
            assert reader is not None
            chunks += len(chunk_document(reader.read(path.read_bytes(), 10_000)))
        passes += 1
    return (time.perf_counter() - started) / passes, chunks


def rendered(text: str) -> str:
    """A heading as it reads once rendered: no Markdown code backticks, straight quotes."""
    return text.replace("`", "").translate(str.maketrans("‘’“”", "''\"\""))


def retarget(items: list[dict[str, Any]], fmt: str, headings_rendered: bool) -> list[dict[str, Any]]:
    """The questions with each gold file named in the format's suffix (and the headings as rendered)."""
    out = []
    for item in items:
        gold = []
        for g in item["relevant"]:
            heading = rendered(g["heading"]) if headings_rendered else g["heading"]
            gold.append({**g, "file": g["file"].rsplit(".", 1)[0] + "." + fmt, "heading": heading})
        out.append({**item, "relevant": gold})
    return out


def as_rendered(hits: list[SearchHit]) -> list[SearchHit]:
    return [h.model_copy(update={"headings": [rendered(x) for x in h.headings], "text": rendered(h.text)}) for h in hits]


async def evaluate(fmt: str, folder: Path, items: list[dict[str, Any]], modes: list[str], db: Path) -> list[dict[str, Any]]:
    services = Services(store=Store(str(db)), embedder=Settings().embedder(), roots=[folder])
    await services.embedder.warm_up()
    started = time.perf_counter()
    ingested = await ingest_documents(services, ["."])
    ingest_s = time.perf_counter() - started
    rows = []
    for mode in modes:
        ranked: list[list[SearchHit]] = [await search(services, item["question"], mode) for item in items]
        row: dict[str, Any] = {"format": fmt, "mode": mode, **score(retarget(items, fmt, True), [as_rendered(r) for r in ranked])}
        row["R@3 strict"] = score(retarget(items, fmt, False), ranked)["R@3"]
        row.update(files=ingested.files, chunks=ingested.chunks_added, skipped=len(ingested.skipped), ingest_s=ingest_s)
        if fmt == "pdf":
            top3 = [h for hits in ranked for h in hits[:3]]
            stored = await services.store.fetch(services.collection, sorted({h.chunk_id for h in top3}))
            row["pdf_top3_with_page"] = sum(stored[h.chunk_id].page_start >= 1 for h in top3) / len(top3)
        rows.append(row)
    services.store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder with corpus/ and eval/")
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="faq", help="the FAQ alone, or in all pages")
    parser.add_argument("--modes", default="hybrid", help="search modes to score (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--manuals", action="store_true", help="only the figures on Debian's manuals")
    parser.add_argument("--hostile", action="store_true", help="only each reader's time and memory on hostile files")
    parser.add_argument("--read-one", type=Path, help=argparse.SUPPRESS)  # a child of --hostile: one file
    parser.add_argument("--new", action="store_true", help="the formats added since: tables, EPUB, notebooks, e-mail, scans")
    args = parser.parse_args()
    if args.read_one:
        read_one(args.read_one)
        return
    if args.manuals:
        print_manuals()
        return
    if args.hostile:
        print_hostile()
        return
    items = [json.loads(line) for line in (args.shared / "eval" / "eval_dev.jsonl").open() if line.strip()]
    if args.new:
        main_new(args, items)
        return
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with tarfile.open(args.shared / "corpus" / CORPORA[args.corpus]) as tar:
            tar.extractall(work / "src", filter="data")
        markdown = sorted((work / "src").rglob("*.md"))
        conversion = convert(markdown, work)
        pages = pdf_pages(work / "pdf")
        print(f"{len(items)} questions; {len(markdown)} Markdown files ({args.corpus}); the PDF versions have {pages} pages")
        print("conversion: " + ", ".join(f"{fmt} {s:.1f} s" for fmt, s in conversion.items() if fmt != "md"))
        rows = []
        for fmt in FORMATS:
            found = asyncio.run(evaluate(fmt, work / fmt, items, modes, work / f"{fmt}.db"))
            per_pass, chunks = reader_speed(work / fmt)
            for row in found:
                row.update(read_s=per_pass, read_chunks=chunks)
            rows += found
    print_table(rows, len(markdown), pages)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def print_table(rows: list[dict[str, Any]], files: int, pages: int) -> None:
    base = {r["mode"]: r for r in rows if r["format"] == "md"}
    print(f"\n{'format':<7} {'mode':<7} {'R@1':>6} {'R@3':>6} {'ΔR@3':>6} {'strict':>6} {'R@5':>6} {'MRR@10':>7} {'chunks':>7} "
          f"{'ingest files/s':>15} {'read files/s':>13} {'PDF pages/s ingest, read':>26}")  # fmt: skip
    for r in rows:
        delta = r["R@3"] - base[r["mode"]]["R@3"] if r["mode"] in base else float("nan")
        pdf = f"{pages / r['ingest_s']:>10.1f}, {pages / r['read_s']:>8.0f}" if r["format"] == "pdf" else ""
        print(
            f"{r['format']:<7} {r['mode']:<7} {r['R@1']:>6.3f} {r['R@3']:>6.3f} {delta:>+6.3f} {r['R@3 strict']:>6.3f} "
            f"{r['R@5']:>6.3f} "
            f"{r['MRR@10']:>7.3f} {r['chunks']:>7} {files / r['ingest_s']:>15.2f} {files / r['read_s']:>13.1f} {pdf:>26}"
        )
    for r in rows:
        if "pdf_top3_with_page" in r:
            print(f"PDF ({r['mode']}): {r['pdf_top3_with_page']:.1%} of the top-3 hits carry a page")


def print_manuals() -> None:
    """Running headers left in and navigation chunks, on real manuals nobody here wrote."""
    from tests import manuals

    if reason := manuals.missing():
        sys.exit(reason)
    survived = with_header = navigation = chunks = 0
    print(f"{'manual':<22} {'pages':>6} {'header survives':>16} {'navigation chunks':>18} {'navigation pages':>17}")
    for name in manuals.R_MANUALS:
        pdf = manuals.R_PDF / f"{name}.pdf"
        reader = reader_for(pdf)
        assert reader is not None
        document = reader.read(pdf.read_bytes(), 10_000)
        left, have = manuals.header_survival(pdf, document)
        found = chunk_document(document)
        nav = sum(manuals.is_navigation(pdf.name, c.text) for c in found)
        print(
            f"{pdf.name:<22} {len(document.pages):>6} {left:>7} of {have:>5} {nav:>8} of {len(found):>6} "
            f"{document.navigation:>17}"
        )
        survived, with_header, navigation, chunks = survived + left, with_header + have, navigation + nav, chunks + len(found)
    share = survived / with_header if with_header else 0.0
    print(
        f"R manuals: the running header survives on {survived} of {with_header} pages ({share:.1%}); "
        f"{navigation} of {chunks} chunks are navigation"
    )
    html_nav = html_chunks = pages_left_out = 0
    files = sorted(manuals.PYTHON_HTML.rglob("*.html"))
    for path in files:
        reader = reader_for(path)
        assert reader is not None
        document = reader.read(path.read_bytes(), 10_000)
        found = chunk_document(document)
        source = path.relative_to(manuals.PYTHON_HTML).as_posix()
        html_nav += sum(manuals.is_navigation(source, c.text) for c in found)
        html_chunks += len(found)
        pages_left_out += document.navigation
    print(
        f"Python 3.11 HTML docs: {len(files)} pages, {pages_left_out} left out as navigation; "
        f"{html_nav} of {html_chunks} chunks are navigation"
    )


def hostile_files(folder: Path) -> dict[str, Path]:
    """The review's hostile files (issue 26), made here: the largest of each kind the tests use, or larger."""
    import docx
    import pptx

    from tests.test_hostile import bloated_office, outline_pdf

    made = {
        "html-anchors.html": ("<h2>Intro" + " #" * 500_000 + "x</h2><p>body</p>").encode(),  # 1 MB
        "html-deep.html": ("<p>before</p>" + "<div>" * 100_000 + "deep" + "</div>" * 100_000 + "<p>after</p>").encode(),
        "pdf-outline.pdf": outline_pdf(
            [f"Line {i} of the body text" for i in range(3000)], [f"Missing {i}" for i in range(20000)]
        ),
        "utf16-cjk.txt": ("数据存储在 Milvus 中，分为 3 类。\n" * 2000).encode("utf-16-le"),
    }
    for name, data in made.items():
        (folder / name).write_bytes(data)
    document = docx.Document()
    document.add_paragraph("A real paragraph.")
    document.save(folder / "real.docx")
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[1]).placeholders[1].text_frame.text = "A real paragraph."
    deck.save(folder / "real.pptx")
    bloated_office(folder / "real.docx", "word/document.xml", b"<w:p/>", 250, folder / "docx-250mb-paragraphs.docx")
    bloated_office(folder / "real.pptx", "ppt/slides/slide1.xml", b"<a:p/>", 200, folder / "pptx-200mb-paragraphs.pptx")
    with (folder / "sparse-2gb.txt").open("wb") as f:
        f.truncate(2 * 2**30)
    return {p.name: p for p in sorted(folder.iterdir()) if not p.name.startswith("real.")}


def read_one(path: Path) -> None:
    """In a child process, so its peak memory is this read's: seconds, peak RSS, and what came of it."""
    import resource

    from tools.ingest import read_document
    from tools.readers import Unreadable

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        outcome = f"read: {len(read_document(path, 10 * 2**20, 1000).text):,} characters"
    except Unreadable as exc:
        outcome = f"skipped: {exc}"
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "grew_mb": (peak - baseline) / 1024, "outcome": outcome}))


def print_hostile() -> None:
    """Each hostile file read by a fresh process: time, peak RSS (and its growth during the read), outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        files = hostile_files(Path(tmp))
        print(f"{'file':<28} {'size':>9} {'seconds':>8} {'peak MB':>8} {'read +MB':>9}  outcome")
        for name, path in files.items():
            child = subprocess.run(
                [sys.executable, __file__, "--read-one", str(path)], capture_output=True, text=True, timeout=TIMEOUT_S, check=True
            )
            got = json.loads(child.stdout.strip().splitlines()[-1])
            size = f"{path.stat().st_size / 2**10:,.0f} KB"
            figures = f"{got['seconds']:>8.2f} {got['peak_mb']:>8.0f} {got['grew_mb']:>9.0f}"
            print(f"{name:<28} {size:>9} {figures}  {got['outcome'][:90]}")


# --- the formats added since: tables, EPUB, notebooks, e-mail, scans ----------------------------------------

NEW_FORMATS = ("md", "csv", "xlsx", "epub", "ipynb", "eml", "pdf", "scan")


def convert_new(markdown: list[Path], out: Path) -> dict[str, float]:
    """Each Markdown file as every new format, in out/<format>/<its path>; seconds per format."""
    import csv as csv_module
    from email.message import EmailMessage

    import xlsxwriter

    from tools.readers.build import one_line
    from tools.readers.markdown import parse_markdown

    seconds: dict[str, float] = {}
    convert(markdown, out)  # md, html, docx, pdf, rst: the PDF is the scan's source
    for fmt in NEW_FORMATS[1:]:
        started = time.perf_counter()
        for source in markdown:
            rel = source.relative_to(out / "src")
            target = out / fmt / rel.with_suffix("." + fmt)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text(encoding="utf-8")
            doc = parse_markdown(text)
            rows = [("Question", "Answer")] + [
                (s.headings[-1], one_line(doc.text[s.body_start : s.end])) for s in doc.sections if s.headings
            ]
            if fmt == "csv":
                with target.open("w", newline="", encoding="utf-8") as sink:
                    csv_module.writer(sink).writerows(rows)
            elif fmt == "xlsx":
                book = xlsxwriter.Workbook(target)
                sheet = book.add_worksheet("FAQ")
                for r, row in enumerate(rows):
                    sheet.write_row(r, 0, row)
                book.close()
            elif fmt == "epub":
                run("pandoc", "-f", "markdown", "-s", source, "-o", target)
            elif fmt == "ipynb":  # pandoc's ipynb writer fails on some FAQ pages (exit 99): a cell per section
                cells = [{"cell_type": "markdown", "metadata": {}, "source": doc.text[s.start : s.end]} for s in doc.sections]
                target.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
            elif fmt == "eml":
                message = EmailMessage()
                message["Subject"], message["From"] = doc.title or rel.stem, "docs@example.org"
                message.set_content(text)
                target.write_bytes(message.as_bytes())
            elif fmt == "scan":
                images = out / "scan-images" / rel.stem
                images.mkdir(parents=True, exist_ok=True)
                run("pdftoppm", "-r", "300", "-gray", "-png", out / "pdf" / rel.with_suffix(".pdf"), images / "page")
                run("img2pdf", *sorted(images.glob("page-*.png")), "-o", target.with_suffix(".pdf"))
                target.unlink(missing_ok=True)
        seconds[fmt] = time.perf_counter() - started
    return seconds


def gold_pages(folder: Path) -> dict[tuple[str, str], set[int]]:
    """(file stem, heading) → the pages its section's chunks lie on in the text-layer PDF."""
    pages: dict[tuple[str, str], set[int]] = {}
    for path in folder.rglob("*.pdf"):
        reader = reader_for(path)
        assert reader is not None
        for chunk in chunk_document(reader.read(path.read_bytes(), 10_000)):
            for heading in chunk.headings:
                pages.setdefault((path.stem, rendered(heading)), set()).update(range(chunk.page_start, chunk.page_end + 1))
    return pages


def new_hit(fmt: str, hit: SearchHit, gold: dict[str, str], pages: dict[tuple[str, str], set[int]]) -> bool:
    stem = gold["file"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if hit.source.rsplit("/", 1)[-1].rsplit(".", 1)[0] != stem:
        return False
    heading = rendered(gold["heading"])
    if fmt in ("csv", "xlsx"):
        return any(line.startswith(f"Question: {heading} |") for line in rendered(hit.text).splitlines())
    if fmt in ("pdf", "scan"):
        return bool(pages.get((stem, heading), set()) & set(range(hit.page_start, hit.page_end + 1)))
    return any(rendered(h) == heading for h in hit.headings) or any(
        rendered(line.lstrip("# ").strip()) == heading for line in hit.text.splitlines() if line.startswith("#")
    )


async def evaluate_new(
    fmt: str, folder: Path, items: list[dict[str, Any]], db: Path, pages: dict[tuple[str, str], set[int]]
) -> dict[str, Any]:
    services = Services(store=Store(str(db)), embedder=Settings().embedder(), roots=[folder])
    await services.embedder.warm_up()
    started = time.perf_counter()
    ingested = await ingest_documents(services, ["."])
    ingest_s = time.perf_counter() - started
    ranked = [await search(services, item["question"], "hybrid") for item in items]
    row: dict[str, Any] = {"format": fmt, "files": ingested.files, "chunks": ingested.chunks_added, "ingest_s": ingest_s}
    row["skipped"] = [f"{s.path}: {s.reason}" for s in ingested.skipped]
    for k in (1, 3, 5):
        row[f"R@{k}"] = sum(
            sum(any(new_hit(fmt, h, g, pages) for h in hits[:k]) for g in item["relevant"]) / len(item["relevant"])
            for item, hits in zip(items, ranked, strict=True)
        ) / len(items)
    services.store.close()
    return row


def memory_peak(path: Path) -> float:
    """MB the reader's process grows by while it reads and chunks `path`, its library loaded on first use included
    (peak RSS after, minus RSS before; Linux)."""
    code = (
        "import resource, sys; from pathlib import Path; from tools.readers import reader_for; "
        "from tools.chunking import chunk_document; p = Path(sys.argv[1]); r = reader_for(p); data = p.read_bytes(); "
        "before = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() // 1024; "
        "chunk_document(r.read(data, 10_000)); "
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def main_new(args: argparse.Namespace, items: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with tarfile.open(args.shared / "corpus" / CORPORA[args.corpus]) as tar:
            tar.extractall(work / "src", filter="data")
        markdown = sorted((work / "src").rglob("*.md"))
        conversion = convert_new(markdown, work)
        pages = gold_pages(work / "pdf")
        scan_pages = pdf_pages(work / "scan")
        rows = []
        for fmt in NEW_FORMATS:
            started = time.perf_counter()
            row = asyncio.run(evaluate_new(fmt, work / fmt, items, work / f"{fmt}.db", pages))
            files = sorted((p for p in (work / fmt).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
            row["largest"] = f"{files[-1].name} ({files[-1].stat().st_size / 1024:.0f} KB)"
            row["memory_mb"] = memory_peak(files[-1])
            row["wall_s"] = time.perf_counter() - started
            print(json.dumps(row), flush=True)  # as it goes: the whole run takes minutes
            rows.append(row)
        print(f"{len(items)} questions; {len(markdown)} FAQ files; scanned: {scan_pages} pages")
        print("conversion: " + ", ".join(f"{fmt} {s:.1f} s" for fmt, s in conversion.items()))
        print(f"\n{'format':<7} {'R@1':>6} {'R@3':>6} {'ΔR@3':>6} {'R@5':>6} {'chunks':>7} {'ingest s':>9}  peak MB")
        base = rows[0]["R@3"]
        for r in rows:
            delta = r["R@3"] - base
            print(f"{r['format']:<7} {r['R@1']:>6.3f} {r['R@3']:>6.3f} {delta:>+6.3f} {r['R@5']:>6.3f} {r['chunks']:>7} "
                  f"{r['ingest_s']:>9.1f}  {r['memory_mb']:.1f} ({r['largest']})")  # fmt: skip
            for skipped in r["skipped"]:
                print(f"   skipped {skipped}")
        scan = next(r for r in rows if r["format"] == "scan")
        print(f"OCR (ingest of the scanned PDFs, embedding included): {scan_pages / scan['ingest_s']:.2f} pages/s")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
