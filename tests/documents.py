"""Test documents made with real tools at test time: pandoc (Markdown → DOCX, HTML, reStructuredText), LibreOffice
(DOCX → PDF with bookmarks), qpdf (encryption, an outline removed), poppler's pdftoppm and img2pdf (a scanned,
image-only PDF), python-docx and python-pptx (DOCX and PPTX written through their APIs), `head -c` (truncated
files) and Python's codecs (text in other encodings). Nothing here is a hand-written stand-in for a format.

A test that needs a tool that is not installed is skipped with the reason, naming the `make` target that
installs them (`make test` runs it).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_HINT = (
    "run `make test` (its target .cache/doc-tools.installed installs pandoc, LibreOffice, qpdf, poppler-utils, img2pdf)"
)
TIMEOUT_S = 180

MANUAL_TITLE = "Vector Store Operations Manual"
# (level, heading, sentences that only this section says); each section gets enough text that the PDF runs to
# several pages. The first sentence of each is what tests search for.
MANUAL_SECTIONS: list[tuple[int, str, list[str]]] = [
    (1, "Installation", ["The installer verifies the checksum of every archive before unpacking it."]),
    (2, "Requirements", ["Every query node needs at least sixteen gigabytes of memory for the default segment size."]),
    (2, "First start", ["On the first start the coordinator writes a fresh cluster identifier to the metadata store."]),
    (1, "Operations", ["Day-to-day operations need no downtime when the rolling upgrade procedure is followed."]),
    (2, "Backups", ["Snapshots of sealed segments are copied to cold storage every night at two o'clock."]),
    (2, "Monitoring", ["The latency dashboard turns amber when the ninety-ninth percentile passes forty milliseconds."]),
    (3, "Alert rules", ["A pager alert fires only after three consecutive failed health probes."]),
    (1, "Troubleshooting", ["Most start-up failures come from a metadata store that cannot be reached."]),
    (2, "Slow searches", ["A search slows down when the collection is not loaded into memory before querying."]),
    (2, "Lost connections", ["Clients reconnect on their own after the proxy restarts, retrying with exponential back-off."]),
]
FILLER = [
    "This paragraph describes the {topic} procedure in the detail an operator needs on a busy day.",
    "Each step of {topic} is written so that it can be repeated safely if it is interrupted half-way.",
    "Operators should record what they changed during {topic} in the shared change log.",
    "The defaults for {topic} suit a small cluster; larger deployments tune them after measuring.",
    "When in doubt about {topic}, compare the cluster's state with the checklist at the end of the chapter.",
]
REQUIREMENTS_TABLE = [("Component", "Minimum", "Recommended"), ("CPU", "4 cores", "16 cores"), ("Memory", "16 GB", "64 GB")]


def need(*tools: str) -> None:
    """Skip the calling test when a tool is missing."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: {INSTALL_HINT}")


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT_S)


def manual_markdown() -> str:
    """The manual's Markdown: a title in front matter, three levels of headings, a table, a numbered list."""
    lines = ["---", f"title: {MANUAL_TITLE}", "---", ""]
    for level, heading, own in MANUAL_SECTIONS:
        lines += ["#" * level + " " + heading, ""]
        topic = heading.lower()
        for paragraph in range(3):
            sentences = [*own] if paragraph == 0 else []
            sentences += [FILLER[(paragraph + k) % len(FILLER)].format(topic=topic) for k in range(4)]
            lines += [" ".join(sentences), ""]
        if heading == "Requirements":
            lines += ["| " + " | ".join(row) + " |" for row in REQUIREMENTS_TABLE[:1]]
            lines += ["|---|---|---|"] + ["| " + " | ".join(row) + " |" for row in REQUIREMENTS_TABLE[1:]] + [""]
        if heading == "First start":
            lines += ["1. Start the metadata store.", "2. Start the coordinators.", "3. Start the worker nodes.", ""]
    return "\n".join(lines)


class Documents:
    """Makes each document once per test session, in one folder, on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / name

    @functools.cached_property
    def manual_md(self) -> Path:
        path = self.path("manual.md")
        path.write_text(manual_markdown(), encoding="utf-8")
        return path

    @functools.cached_property
    def manual_docx(self) -> Path:
        """pandoc: heading styles, a Title paragraph, a table, a numbered list, core properties' title."""
        need("pandoc")
        out = self.path("manual.docx")
        run("pandoc", self.manual_md, "-o", out)
        return out

    def to_pdf(self, source: Path) -> Path:
        """LibreOffice: a document printed to PDF (from a DOCX: bookmarks from the headings, the title in the metadata)."""
        need("soffice")
        profile = self.folder / "libreoffice-profile"  # its own profile: runs in parallel do not share one
        out_dir = self.folder / "pdf"
        run(
            "soffice",
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            out_dir,
            source,
        )
        return out_dir / source.with_suffix(".pdf").name

    @functools.cached_property
    def manual_pdf(self) -> Path:
        return self.to_pdf(self.manual_docx)

    @functools.cached_property
    def manual_pdf_without_outline(self) -> Path:
        """qpdf: the same pages copied into a new PDF, which leaves the outline (bookmarks) behind."""
        need("qpdf")
        out = self.path("manual-no-outline.pdf")
        run("qpdf", "--empty", "--pages", self.manual_pdf, "1-z", "--", out)
        return out

    @functools.cached_property
    def plain_pdf(self) -> Path:
        """LibreOffice: a plain text file printed to PDF, one font throughout (no outline, no headings)."""
        words = ["vector", "segment", "index", "query", "node", "cluster", "memory", "disk", "replica", "shard"]
        paragraphs = [" ".join(words[(i * 7 + k * 3) % len(words)] for k in range(60)).capitalize() + "." for i in range(40)]
        source = self.path("plain.txt")
        source.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        return self.to_pdf(source)

    @functools.cached_property
    def encrypted_pdf(self) -> Path:
        """qpdf: AES-256 with a user password."""
        need("qpdf")
        out = self.path("encrypted.pdf")
        run("qpdf", "--encrypt", "user-secret", "owner-secret", "256", "--", self.manual_pdf, out)
        return out

    @functools.cached_property
    def encrypted_pdf_open(self) -> Path:
        """qpdf: AES-256 with an empty user password (opens without one; only the owner's rights are locked)."""
        need("qpdf")
        out = self.path("encrypted-open.pdf")
        run("qpdf", "--encrypt", "", "owner-secret", "256", "--", self.manual_pdf, out)
        return out

    @functools.cached_property
    def scanned_pdf(self) -> Path:
        """pdftoppm renders two pages to images, img2pdf wraps them into a PDF with no text layer."""
        need("pdftoppm", "img2pdf")
        images = self.folder / "scan"
        images.mkdir(exist_ok=True)
        run("pdftoppm", "-r", "50", "-f", "1", "-l", "2", "-png", self.manual_pdf, images / "page")
        out = self.path("scanned.pdf")
        run("img2pdf", *sorted(images.glob("page-*.png")), "-o", out)
        return out

    def truncated(self, source: Path, name: str) -> Path:
        """`head -c`: the first half of a file."""
        out = self.path(name)
        with out.open("wb") as sink:
            subprocess.run(["head", "-c", str(source.stat().st_size // 2), str(source)], stdout=sink, check=True, timeout=60)
        return out

    @functools.cached_property
    def handbook_docx(self) -> Path:
        """python-docx: core title, a Title paragraph, Heading 1-3 styles, a table, bullets and numbers."""
        import docx

        document = docx.Document()
        document.core_properties.title = "Cluster Handbook"
        document.add_paragraph("Cluster Handbook", style="Title")
        document.add_paragraph("This handbook is for the people who run the cluster.")
        document.add_heading("Installation", level=1)
        document.add_paragraph("Install the packages on every node before joining it to the cluster.")
        document.add_paragraph("Download the archive", style="List Number")
        document.add_paragraph("Verify the checksum", style="List Number")
        document.add_heading("Sizing", level=2)
        document.add_paragraph("Size each node for the largest collection it will serve.")
        table = document.add_table(rows=0, cols=3)
        for row in REQUIREMENTS_TABLE:
            for cell, text in zip(table.add_row().cells, row, strict=True):
                cell.text = text
        document.add_heading("Disk layout", level=3)
        document.add_paragraph("Keep the write-ahead log on its own disk, away from the segment files.")
        document.add_heading("Operations", level=1)
        document.add_paragraph("Check the logs daily", style="List Bullet")
        document.add_paragraph("Rotate credentials monthly", style="List Bullet")
        out = self.path("handbook.docx")
        document.save(str(out))
        return out

    @functools.cached_property
    def deck_pptx(self) -> Path:
        """python-pptx: a title slide, a bullet slide with speaker notes, a table in a slide, a group, an untitled slide."""
        from pptx import Presentation
        from pptx.util import Inches

        deck = Presentation()
        deck.core_properties.title = "Roadmap Review"
        slide = deck.slides.add_slide(deck.slide_layouts[0])
        slide.shapes.title.text = "Roadmap 2025"
        slide.placeholders[1].text = "Readers for every format"
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = "Goals"
        body = slide.placeholders[1].text_frame
        body.text = "Read PDF page by page"
        sub = body.add_paragraph()
        sub.text, sub.level = "Keep the bookmarks as headings", 1
        slide.notes_slide.notes_text_frame.text = "Stress that every chunk cites its page."
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = "Schedule"
        table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(1.5)).table
        for r, row in enumerate([("Quarter", "Deliverable"), ("Q1", "PDF reader"), ("Q2", "HTML reader")]):
            for c, text in enumerate(row):
                table.cell(r, c).text = text
        group = slide.shapes.add_group_shape()
        group.shapes.add_textbox(Inches(1), Inches(4), Inches(4), Inches(0.5)).text_frame.text = "Grouped remark"
        slide = deck.slides.add_slide(deck.slide_layouts[6])
        slide.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1)).text_frame.text = "A slide without a title"
        out = self.path("deck.pptx")
        deck.save(str(out))
        return out

    @functools.cached_property
    def page_html(self) -> Path:
        """pandoc, standalone, with a table of contents (`<nav>`) and, through its include options, a site's
        navigation bar, cookie banner and a hidden element before the body, a footer and a script after it, and a script and a
        style in the head."""
        need("pandoc")
        head = self.path("head.html")
        head.write_text("<script>console.log('analytics code, not content');</script>\n<style>nav { color: gray }</style>\n")
        before = self.path("before.html")
        before.write_text(
            '<header><nav><a href="/">Site home</a> <a href="/docs">All documentation</a></nav></header>\n'
            '<div class="cookie-banner"><p>This site uses cookies for statistics.</p></div>\n'
            '<div style="display: none"><p>A hidden survey prompt.</p></div>\n'
        )
        after = self.path("after.html")
        after.write_text(
            "<footer><p>Copyright Example Corp, all rights reserved.</p></footer>\n"
            "<script>window.tracker = 'tracking code, not content';</script>\n"
        )
        out = self.path("manual.html")
        run(
            "pandoc", "-s", "--toc", "-H", head, "--include-before-body", before, "--include-after-body", after,
            self.manual_md, "-o", out,
        )  # fmt: skip
        return out

    @functools.cached_property
    def manual_rst(self) -> Path:
        """pandoc: the manual as reStructuredText (the title over- and underlined, sections underlined)."""
        need("pandoc")
        out = self.path("manual.rst")
        run("pandoc", "-s", "-t", "rst", self.manual_md, "-o", out)
        return out

    def rst_from_markdown(self, markdown: str, name: str) -> Path:
        """pandoc: any Markdown as reStructuredText."""
        need("pandoc")
        source, out = self.path(name + ".md"), self.path(name + ".rst")
        source.write_text(markdown, encoding="utf-8")
        run("pandoc", "-f", "markdown", "-t", "rst", source, "-o", out)
        return out
