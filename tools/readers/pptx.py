"""PowerPoint (.pptx), on python-pptx (MIT): one section per slide, the slide's title as its heading (a slide
without one has no heading), then the text of every shape in reading order (top to bottom, then left to right):
text boxes and placeholders with their list levels, tables (a row a line, cells joined by " | "), groups at any
depth, chart titles, pictures' alternative text; then the speaker notes. Each slide is a page, so a chunk knows
its slides. The title is the core properties' title, else the first slide's title.
"""

from __future__ import annotations

from typing import Any

from tools import metadata
from tools.readers.base import Document, Reader, Unreadable, check_time, lazy
from tools.readers.build import MAX_ELEMENTS, DocumentBuilder, office_package, one_line

pptx = lazy("pptx")  # loaded on the first PPTX read


class PptxReader(Reader):
    suffixes = (".pptx",)
    page_label = "slide"

    def read(self, data: bytes, max_pages: int) -> Document:
        stream = office_package(data, "PPTX", MAX_ELEMENTS)
        try:
            presentation = pptx.Presentation(stream)
            if len(presentation.slides) > max_pages:
                raise Unreadable(f"more than {max_pages} slides (MAX_PAGES)")
            builder, first_title = DocumentBuilder(), None
            for slide in presentation.slides:
                title = _slide(builder, slide)
                first_title = first_title or title
            core_title = presentation.core_properties.title
            properties = metadata.from_core_properties(presentation.core_properties)
        except Unreadable:
            raise
        except Exception as exc:  # python-pptx and lxml raise many kinds on damaged parts
            raise Unreadable(f"not a readable PPTX (damaged: {type(exc).__name__}: {exc})") from None
        return builder.build(one_line(core_title or "") or first_title, metadata=properties)


READER = PptxReader()


def _slide(builder: DocumentBuilder, slide: Any) -> str | None:
    """One slide into the builder; its title, if it has one."""
    builder.page()
    title_shape = slide.shapes.title
    title = one_line(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
    if title:
        builder.heading(1, title)
    else:
        builder.section()
    skip = title_shape.shape_id if title_shape is not None else None
    for text in _shapes(slide.shapes, skip):
        builder.block(text)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            builder.block("Speaker notes:\n" + notes.text.strip().replace("\v", "\n"))
    return title or None


def _shapes(shapes: Any, skip: int | None = None) -> list[str]:
    """The text of each shape, in reading order."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    out: list[str] = []
    for shape in sorted(shapes, key=lambda s: (s.top or 0, s.left or 0)):
        if shape.shape_id == skip:
            continue
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            out += _shapes(shape.shapes)
        elif getattr(shape, "has_table", False):
            rows = [_row(row) for row in shape.table.rows]
            out.append("\n".join(row for row in rows if row.strip(" |")))
        elif shape.has_text_frame:
            lines = ["  " * p.level + p.text.replace("\v", "\n").strip() for p in shape.text_frame.paragraphs]
            out.append("\n".join(line for line in lines if line.strip()))
        elif getattr(shape, "has_chart", False) and shape.chart.has_title:
            out.append(shape.chart.chart_title.text_frame.text)
        else:  # a picture or another shape: its alternative text, if any
            described = shape._element.xpath("./*[1]/p:cNvPr/@descr")
            if described and described[0].strip():
                out.append(f"[image: {one_line(described[0])}]")
    return out


def _row(row: Any) -> str:
    check_time()  # a slide's table may be huge: the file's time budget bounds it
    return " | ".join(one_line(cell.text) for cell in row.cells)
