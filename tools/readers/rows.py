"""Tables (CSV, TSV, spreadsheets) into a `Document`: each row written with its header as `Question: … | Answer: …`,
so any run of rows reads on its own, and rows grouped whole into sections of at most `GROUP_CHARS` so the chunker
never cuts one (a row longer than that is a section alone, and only it is split). Each row is a page whose
number is its row number in the sheet (the header is row 1 where it is the first row), so a chunk's citation
names its rows: `faq.xlsx Sheet1 rows 12-14`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tools.readers.base import Document, Section, Unreadable, check_time
from tools.readers.build import one_line

GROUP_CHARS = 1000  # the chunker's MAX_CHARS: a group of rows is one chunk
MAX_ROWS = 100_000  # a sheet with more rows is not a document to search but data (a million-row export)
MAX_CELLS = 2_000_000  # in the whole file
MAX_CELL_CHARS = 20_000  # longer cells are cut: a cell that long is a document pasted into a table
CUT = " [cut]"


def cell_text(value: object) -> str:
    """A cell as it reads, on one line: whole floats without `.0`, dates in ISO form, whitespace collapsed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        text = str(int(value))
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
        text = text.removesuffix("T00:00:00")
    else:
        text = str(value)
    text = one_line(text)
    return text[:MAX_CELL_CHARS] + CUT if len(text) > MAX_CELL_CHARS else text


@dataclass
class TableBuilder:
    """Collects sheets of rows; `build` returns the `Document`."""

    label: str  # what the file is called in errors: "CSV", "XLSX"
    _parts: list[str] = field(default_factory=list)
    _length: int = 0
    _sections: list[Section] = field(default_factory=list)
    _pages: list[int] = field(default_factory=list)
    _numbers: list[int] = field(default_factory=list)
    _cells: int = 0

    def sheet(self, name: str | None, rows: Iterable[Sequence[object]]) -> None:
        """One sheet (`name` None for a CSV file), from its first row: its first non-empty row is the header."""
        headings = (name,) if name else ()
        header: list[str] | None = None
        group_start, group_chars = -1, 0
        for number, row in enumerate(rows, start=1):
            check_time()
            if number > MAX_ROWS + 1:
                where = f"sheet {name!r} has" if name else "it has"
                raise Unreadable(f"{where} more than {MAX_ROWS:,} rows: a data export, not a document to search")
            self._cells += len(row)
            if self._cells > MAX_CELLS:
                raise Unreadable(f"more than {MAX_CELLS:,} cells in the {self.label}: a data export, not a document to search")
            cells = [cell_text(value) for value in row]
            if not any(cells):
                continue
            if header is None:
                header = [c or f"Column {i}" for i, c in enumerate(cells, start=1)]
                continue
            labels = header + [f"Column {i}" for i in range(len(header) + 1, len(cells) + 1)]
            line = " | ".join(f"{label}: {c}" for label, c in zip(labels, cells, strict=False) if c)
            if group_start < 0 or group_chars + 1 + len(line) > GROUP_CHARS:
                separator = "\n\n" if self._length else ""
                group_start, group_chars = self._length + len(separator), len(line)
                self._append(separator)
                self._sections.append(Section(group_start, group_start, headings, group_start))
            else:
                group_chars += 1 + len(line)
                self._append("\n")
            self._pages.append(self._length)
            self._numbers.append(number)
            self._append(line)

    def _append(self, text: str) -> None:
        self._parts.append(text)
        self._length += len(text)

    def build(self, title: str | None = None) -> Document:
        text = "".join(self._parts)
        if not text.strip():
            raise Unreadable(f"no rows with text in the {self.label}")
        ends = [s.start for s in self._sections[1:]] + [len(text)]
        sections = [Section(s.start, end, s.headings, s.body_start) for s, end in zip(self._sections, ends, strict=True)]
        return Document(text, title, sections, tuple(self._pages), tuple(self._numbers))
