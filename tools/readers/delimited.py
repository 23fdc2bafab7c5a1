"""CSV and TSV: the encoding found as for text, the delimiter found (`,` `;` tab `|`), the first row the header;
rows written and grouped as `rows.py` says."""

from __future__ import annotations

import csv
import io

from tools.readers.base import Document, Reader, Unreadable, decode_text
from tools.readers.rows import TableBuilder

_DELIMITERS = ",;\t|"
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 50
# The csv module refuses fields over 128 KB by default (a process-wide limit); files are bounded by MAX_FILE_MB and
# cells are cut at MAX_CELL_CHARS after reading, so a larger field is read, not refused.
csv.field_size_limit(max(csv.field_size_limit(), 256 * 2**20))


class DelimitedReader(Reader):
    suffixes = (".csv", ".tsv")
    page_label = "row"

    def read(self, data: bytes, max_pages: int) -> Document:
        text = decode_text(data)
        delimiter = sniff_delimiter(text[:_SNIFF_CHARS])
        builder = TableBuilder("CSV")
        try:
            builder.sheet(None, csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as exc:
            raise Unreadable(f"not a readable CSV ({exc})") from None
        return builder.build()


READER = DelimitedReader()


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the sample's first rows into the same number of columns most often (more
    columns breaking ties), read as CSV so quoted delimiters do not count; `,` when none splits anything.
    csv.Sniffer guesses from character counts and picks `,` inside quoted text over the `;` between fields."""
    lines = sample.splitlines(keepends=True)[:_SNIFF_ROWS]
    if len(sample) >= _SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample is cut
    best, best_key = ",", (0, 0)
    for delimiter in _DELIMITERS:
        try:
            widths = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not widths or max(widths) < 2:
            continue
        common = max(set(widths), key=lambda w: (widths.count(w), w))
        key = (widths.count(common), common)
        if key > best_key:
            best, best_key = delimiter, key
    return best
