"""Spreadsheets (.xlsx, .xlsm, .xls, .ods), on python-calamine (MIT; Rust's calamine): every visible worksheet is a
section under its name, rows written and grouped as `rows.py` says. Formulas read as the values last computed
and saved with the file (a sheet saved without them reads those cells empty); hidden and very hidden sheets,
and chart sheets, are skipped.

Why calamine: one library reads all four formats (openpyxl reads only .xlsx, xlrd only .xls), it reads a sheet
about ten times faster than openpyxl, and it weighs 2.3 MB with no dependencies. It loads a whole sheet at once,
so a workbook is checked before: a ZIP bomb by `office_package`, and each sheet's XML against `MAX_SHEET_XML_MB`.
"""

from __future__ import annotations

import io
import zipfile

from tools.readers.base import Document, Reader, Unreadable, lazy
from tools.readers.build import office_package
from tools.readers.rows import MAX_ROWS, TableBuilder

calamine = lazy("python_calamine")  # loaded on the first spreadsheet read

# A worksheet's XML over this is a million-row sheet (about 100 bytes a row of three short cells): refused before
# it is loaded, as MAX_ROWS would refuse it after.
MAX_SHEET_XML_MB = 64
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class SpreadsheetReader(Reader):
    suffixes = (".xlsx", ".xlsm", ".xls", ".ods")
    page_label = "row"

    def cite(self, source: str, first: int, last: int, headings: tuple[str, ...] | list[str]) -> str:
        """`faq.xlsx Sheet1 rows 12-14`: the sheet, then the rows."""
        return super().cite(f"{source} {headings[0]}" if headings and first else source, first, last, headings)

    def read(self, data: bytes, max_pages: int) -> Document:
        kind = "XLS" if data.startswith(_OLE) else "spreadsheet"
        stream = io.BytesIO(data) if kind == "XLS" else office_package(data, "spreadsheet")
        if kind != "XLS":
            _check_sheet_sizes(stream)
        builder = TableBuilder(kind)
        try:
            workbook = calamine.CalamineWorkbook.from_filelike(stream)
            for meta in workbook.sheets_metadata:
                if meta.visible != calamine.SheetVisibleEnum.Visible or meta.typ != calamine.SheetTypeEnum.WorkSheet:
                    continue
                sheet = workbook.get_sheet_by_name(meta.name)
                if sheet.height > MAX_ROWS + 1:
                    raise Unreadable(
                        f"sheet {meta.name!r} has more than {MAX_ROWS:,} rows: a data export, not a document to search"
                    )
                builder.sheet(meta.name, sheet.iter_rows())  # from row 1, blank rows above the table included
        except Unreadable:
            raise
        except calamine.PasswordError:
            raise Unreadable(f"encrypted {kind}: it needs a password to open") from None
        except Exception as exc:  # calamine raises CalamineError, XmlError, ZipError and others on damaged files
            raise Unreadable(f"not a readable {kind} (damaged: {type(exc).__name__}: {exc})") from None
        return builder.build()


READER = SpreadsheetReader()


def _check_sheet_sizes(stream: io.BytesIO) -> None:
    with zipfile.ZipFile(stream) as package:
        for info in package.infolist():
            if info.filename.startswith("xl/worksheets/") and info.file_size > MAX_SHEET_XML_MB * 2**20:
                raise Unreadable(
                    f"{info.filename} unpacks to {info.file_size // 2**20} MB (over {MAX_SHEET_XML_MB} MB): a data "
                    "export or a ZIP bomb, not a document to search"
                )
    stream.seek(0)
