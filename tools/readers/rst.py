"""reStructuredText: section titles (underlined, or over- and underlined) become the heading path.

A small parser of docutils' title rule, not docutils itself: a title is a non-indented line after a blank line
(or at the start), underlined by one punctuation character repeated at least as long as the title, optionally
overlined by the same character. Levels follow the order in which adornment styles first appear, as docutils
assigns them. Indented text (literal blocks, directive bodies) is never a title. A `.. rubric::` (an informal
heading, which pandoc writes for headings it cannot nest, such as those inside a list item) is a heading one level
below the section it is in. The text is kept as it is, titles and adornments included, so every chunk is an exact
slice of the file.
"""

from __future__ import annotations

import re

from tools.readers.base import Document, Reader, Section, decode_text

_NEWLINE = re.compile(r"\r\n|\r|\n")
_ADORNMENT = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])\1+[ \t]*""")
_RUBRIC = re.compile(r"([ \t]*)\.\. rubric::[ \t]*(\S.*)")
_OPTION = re.compile(r"[ \t]+:[\w-]+:.*")
RUBRIC = 0  # the level _titles gives a rubric: placed under the section it is in


class RstReader(Reader):
    suffixes = (".rst",)

    def read(self, data: bytes, max_pages: int) -> Document:
        return parse_rst(decode_text(data))


READER = RstReader()


def parse_rst(text: str) -> Document:
    """Sections by title, each with its heading path; the document title is the first top-level title."""
    titles = _titles(text)
    sections: list[Section] = []
    if not titles or titles[0][0] > 0:
        sections.append(Section(0, titles[0][0] if titles else len(text), (), 0))
    stack: list[tuple[int, str]] = []
    section_level = 0  # the level of the innermost real section title
    for i, (start, body_start, level, title) in enumerate(titles):
        if level == RUBRIC:
            level = section_level + 1
        else:
            section_level = level
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = titles[i + 1][0] if i + 1 < len(titles) else len(text)
        sections.append(Section(start, end, tuple(t for _, t in stack), body_start))
    return Document(text, next((t[3] for t in titles if t[2] == 1), None), sections)


def _titles(text: str) -> list[tuple[int, int, int, str]]:
    """(start offset, offset after the underline's line, level, title) of every section title."""
    starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
    lines = [_NEWLINE.sub("", text[a:b]) for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    styles: list[tuple[str, bool]] = []
    found: list[tuple[int, int, int, str]] = []

    def add(first: int, title_line: int, last: int, style: tuple[str, bool]) -> None:
        if style not in styles:
            styles.append(style)
        end = starts[last + 1] if last + 1 < len(starts) else len(text)
        found.append((starts[first], end, styles.index(style) + 1, lines[title_line].strip()))

    i = 0
    while i + 1 < len(lines):
        after_blank = i == 0 or not lines[i - 1].strip()
        line = lines[i]
        if rubric := _RUBRIC.fullmatch(line):
            words, last, indent, options = [rubric.group(2).strip()], i, len(rubric.group(1)), False
            while last + 1 < len(lines) and (more := lines[last + 1]).strip() and len(more) - len(more.lstrip()) > indent:
                last += 1  # the title wrapped onto more lines, then its options (":name: ...")
                options = options or bool(_OPTION.fullmatch(more))
                if not options:
                    words.append(more.strip())
            end = starts[last + 1] if last + 1 < len(starts) else len(text)
            found.append((starts[i], end, RUBRIC, " ".join(words)))
            i = last + 1
            continue
        over = _ADORNMENT.fullmatch(line)
        if over and after_blank and i + 2 < len(lines):
            title, under = lines[i + 1], lines[i + 2]
            if (
                title.strip()
                and not _ADORNMENT.fullmatch(title)
                and under.rstrip() == line.rstrip()
                and len(line.rstrip()) >= len(title.strip())
            ):
                add(i, i + 1, i + 2, (over.group(1), True))
                i += 3
                continue
        under_match = _ADORNMENT.fullmatch(lines[i + 1])
        if (
            after_blank
            and under_match
            and line.strip()
            and not line[0].isspace()
            and not over
            and len(lines[i + 1].rstrip()) >= len(line.rstrip())
        ):
            add(i, i, i + 1, (under_match.group(1), False))
            i += 2
            continue
        i += 1
    return found
