"""Word (.docx), on python-docx (MIT; lxml underneath): the body in document order, which python-docx has no
call for, so its XML is walked: paragraphs, tables (a row a line, cells joined by " | "), list items (bullet or
number), content controls (a table of contents among them is left out).

A paragraph is a heading when its style, or a style it is based on, is "Heading 1".."Heading 9", or when it or
its style has an outline level (`w:outlineLvl`): that covers localised style names ("Überschrift 1", "Titre 1"),
whose built-in definitions keep the level. The title is the core properties' title, else the first paragraph
in the Title style, else the first level-1 heading. Deleted tracked changes and field codes are not text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tools import metadata
from tools.readers.base import Document, Reader, Unreadable, check_time, lazy
from tools.readers.build import MAX_ELEMENTS, DocumentBuilder, office_package, one_line

if TYPE_CHECKING:
    import docx.document

docx = lazy("docx")  # loaded on the first DOCX read
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"  # a copy of the Choice
_NOT_TEXT = {W + "del", W + "instrText", W + "pPr", W + "rPr", W + "delInstrText", _MC_FALLBACK}


class DocxReader(Reader):
    suffixes = (".docx",)

    def read(self, data: bytes, max_pages: int) -> Document:
        stream = office_package(data, "DOCX", MAX_ELEMENTS)
        try:
            document = docx.Document(stream)
            walker = _Walker(document)
            walker.walk(document.element.body)
            core_title = document.core_properties.title
            properties = metadata.from_core_properties(document.core_properties)
        except Unreadable:
            raise
        except Exception as exc:  # python-docx and lxml raise many kinds on damaged parts
            raise Unreadable(f"not a readable DOCX (damaged: {type(exc).__name__}: {exc})") from None
        first_heading = next((title for level, title in walker.out.headings if level == 1), None)
        return walker.out.build(one_line(core_title or "") or walker.title or first_heading, metadata=properties)


READER = DocxReader()


class _Walker:
    def __init__(self, document: docx.document.Document) -> None:
        self.out = DocumentBuilder()
        self.title: str | None = None
        self.styles = {s.get(W + "styleId"): s for s in document.styles.element.iterchildren(W + "style")}
        self.style_info: dict[str, tuple[int, str]] = {}
        self.numbering = _Numbering(document, self.styles)

    def walk(self, parent: Any) -> None:
        for child in parent.iterchildren():
            if child.tag == W + "p":
                self.paragraph(child)
            elif child.tag == W + "tbl":
                self.out.block(_table(child))
            elif child.tag == W + "sdt":  # a content control: a cover page, a table of contents...
                gallery = child.find(f"{W}sdtPr/{W}docPartObj/{W}docPartGallery")
                is_toc = gallery is not None and "Table of Contents" in (gallery.get(W + "val") or "")
                content = child.find(W + "sdtContent")
                if content is not None and not is_toc:
                    self.walk(content)
            elif child.tag == W + "customXml":
                self.walk(child)

    def paragraph(self, p: Any) -> None:
        text = _text(p)
        properties = p.find(W + "pPr")
        style = properties.find(W + "pStyle") if properties is not None else None
        level, name = self.style(style.get(W + "val") if style is not None else None)
        own = properties.find(W + "outlineLvl") if properties is not None else None
        if own is not None and int(own.get(W + "val", "9")) < 9:
            level = int(own.get(W + "val")) + 1
        name = name.lower()
        if not text.strip() or name.startswith("toc ") or name == "toc heading":
            return  # a table of contents written out as paragraphs
        if name == "title":
            self.title = self.title or one_line(text)
            self.out.label(text)
        elif level:
            self.out.heading(level, text)
        else:
            marker = self.numbering.marker(properties)
            self.out.block(marker + text.strip(), item=bool(marker))

    def style(self, style_id: str | None) -> tuple[int, str]:
        """(heading level or 0, style name) of a paragraph style, following `w:basedOn`."""
        if not style_id:
            return 0, ""
        if style_id not in self.style_info:
            level, name, seen = 0, "", set()
            current: str | None = style_id
            while current and current not in seen and (element := self.styles.get(current)) is not None:
                seen.add(current)
                own_name = element.find(W + "name")
                this = own_name.get(W + "val", "") if own_name is not None else ""
                name = name or this
                outline = element.find(f"{W}pPr/{W}outlineLvl")
                if this.lower().startswith("heading ") and this[8:].strip().isdigit():
                    level = int(this[8:])
                elif outline is not None and int(outline.get(W + "val", "9")) < 9:
                    level = int(outline.get(W + "val")) + 1
                if level:
                    break
                based = element.find(W + "basedOn")
                current = based.get(W + "val") if based is not None else None
            self.style_info[style_id] = (level, name)
        return self.style_info[style_id]


def _text(element: Any) -> str:
    """The visible text of a paragraph (or any part of one): runs, also inside hyperlinks, insertions and text
    boxes, tabs and line breaks; not deleted text, field codes, or the fallback copy of a drawing."""
    parts: list[str] = []
    for child in element.iterchildren():
        tag = child.tag
        if tag == W + "t":
            parts.append(child.text or "")
        elif tag == W + "tab":
            parts.append("\t")
        elif tag in (W + "br", W + "cr"):
            parts.append("\n")
        elif tag == W + "noBreakHyphen":
            parts.append("-")
        elif isinstance(tag, str) and tag not in _NOT_TEXT:
            parts.append(_text(child))
    return "".join(parts)


def _table(table: Any) -> str:
    """A row a line, cells joined by " | "; a nested table goes inline, in brackets."""
    rows = []
    for row in table.iterchildren(W + "tr"):
        check_time()
        cells = []
        for cell in row.iterchildren(W + "tc"):
            parts = []
            for child in cell.iterchildren():
                if child.tag == W + "p":
                    parts.append(one_line(_text(child)))
                elif child.tag == W + "tbl":
                    parts.append("[" + _table(child).replace("\n", "; ") + "]")
            cells.append(" ".join(p for p in parts if p))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


class _Numbering:
    """The bullet or number in front of a list item, from the numbering part (numId → abstractNum → level)."""

    def __init__(self, document: docx.document.Document, styles: dict[str, Any]) -> None:
        self.formats: dict[tuple[str, int], tuple[str, int]] = {}  # (numId, level) → (format, start)
        self.counters: dict[tuple[str, int], int] = {}
        self.style_lists: dict[str, tuple[str, int]] = {}  # paragraph style id → (numId, level): "List Number"
        for style_id, style in styles.items():
            num, ilvl = style.find(f"{W}pPr/{W}numPr/{W}numId"), style.find(f"{W}pPr/{W}numPr/{W}ilvl")
            if num is not None:
                self.style_lists[style_id] = (num.get(W + "val"), int(ilvl.get(W + "val", "0")) if ilvl is not None else 0)
        try:
            numbering = document.part.numbering_part.element
        except (KeyError, NotImplementedError):
            return
        abstract: dict[str, dict[int, tuple[str, int]]] = {}
        for definition in numbering.iterchildren(W + "abstractNum"):
            levels = {}
            for lvl in definition.iterchildren(W + "lvl"):
                fmt, start = lvl.find(W + "numFmt"), lvl.find(W + "start")
                levels[int(lvl.get(W + "ilvl", "0"))] = (
                    fmt.get(W + "val", "decimal") if fmt is not None else "decimal",
                    int(start.get(W + "val", "1")) if start is not None else 1,
                )
            abstract[definition.get(W + "abstractNumId")] = levels
        for num in numbering.iterchildren(W + "num"):
            ref = num.find(W + "abstractNumId")
            if ref is not None:
                for level, fmt in abstract.get(ref.get(W + "val"), {}).items():
                    self.formats[(num.get(W + "numId"), level)] = fmt

    def marker(self, properties: Any) -> str:
        if properties is None:
            return ""
        num_pr = properties.find(W + "numPr")
        num_id, level = None, 0
        if num_pr is not None:
            num, ilvl = num_pr.find(W + "numId"), num_pr.find(W + "ilvl")
            num_id = num.get(W + "val") if num is not None else None
            level = int(ilvl.get(W + "val", "0")) if ilvl is not None else 0
        elif (style := properties.find(W + "pStyle")) is not None:
            num_id, level = self.style_lists.get(style.get(W + "val"), (None, 0))
        if not num_id or num_id == "0":
            return ""
        fmt, start = self.formats.get((num_id, level), ("bullet", 1))
        indent = "  " * level
        if fmt in ("bullet", "none"):
            return indent + "- "
        key = (num_id, level)
        self.counters[key] = self.counters.get(key, start - 1) + 1
        for deeper in [k for k in self.counters if k[0] == num_id and k[1] > level]:
            del self.counters[deeper]  # a sublist restarts when its parent item advances
        return f"{indent}{self.counters[key]}. "
