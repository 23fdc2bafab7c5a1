"""One glob language for every tool: ingest paths, and the `source` filters of search, describe and delete.

- `*` matches within one folder or file name, `?` one character of it, `[abc]` / `[!abc]` one of a set;
- `**` matches any number of folders (`docs/**/*.md`, or `**` alone for everything);
- a source filter matches at any folder boundary unless it starts with `/`: `faq/*.md` matches
  `data/en/faq/a.md`, a bare name `a.md` matches that file in any folder, `/en/*.md` only `en/...`.
"""

from __future__ import annotations

import re

_MAGIC = re.compile(r"[*?[]")
RULES = "`*` within a name, `**` across folders, matched at any folder boundary unless it starts with /"


def has_magic(pattern: str) -> bool:
    return bool(_MAGIC.search(pattern))


def translate(pattern: str, *, hidden: bool = True) -> str:
    """A glob as a regular expression over `/`-separated paths; with `hidden=False` no wildcard matches a
    name starting with `.` (as shells and ingest walks do)."""
    name_start = "" if hidden else r"(?![.])"
    out: list[str] = []
    i = 0
    while i < len(pattern):
        at_name_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_name_start and (i + 2 == len(pattern) or pattern[i + 2] == "/"):
            if i + 2 < len(pattern):  # `**/`: any number of folders, none included
                out.append(rf"(?:{name_start}[^/]+/)*")
                i += 3
            else:  # a trailing `**`: anything below
                out.append(rf"(?:{name_start}[^/]+(?:/{name_start}[^/]+)*)?")
                i += 2
        elif pattern[i] == "*":
            while i < len(pattern) and pattern[i] == "*":  # `**` inside a name is `*`
                i += 1
            out.append((name_start if at_name_start else "") + "[^/]*")
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body[0] in "!^"
            out.append("[" + ("^/" if negate else "") + re.escape(body[1:] if negate else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def source_regex(pattern: str) -> re.Pattern[str]:
    """A source filter: anchored at the start with a leading `/`, else at any folder boundary."""
    if pattern.startswith("/"):
        return re.compile(translate(pattern.lstrip("/")))
    return re.compile(r"(?:.*/)?" + translate(pattern))


def matches(source: str, pattern: str) -> bool:
    """Whether a stored source name matches a source filter."""
    return source_regex(pattern).fullmatch(source) is not None
