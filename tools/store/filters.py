"""Milvus filter expressions built from user text: quoting, globs, `in [...]` lists.

Milvus Lite 2.5.1 crashes on filter templates (`{p}` parameters), so values are quoted and escaped here,
and characters Milvus cannot escape are refused. Its `like` cannot escape `%` or `_`, has no character
classes and its `%` crosses `/`, so a source filter becomes a `like` that matches a superset, and results
are checked with `globs.matches`.
"""

from __future__ import annotations

import re

from tools.checks import has_control
from tools.errors import UserError

# Milvus turns a `like` into a backtracking regular expression with bounds of its own: `%` 14 times in a row, or
# `%a%a%ab` over a 4,000-character name, fail with "regular expression exceeded predefined bounds"; two `%` never
# did. So runs of `%` are one, and past two the `like` keeps only the pattern's longest fixed part.
MAX_PERCENTS = 2


def quote(value: str) -> str:
    """A Milvus expression string literal; refuses characters Milvus cannot escape."""
    if has_control(value):
        raise UserError("Filter values may not contain control characters (newlines, tabs, NUL)")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_in(field: str, values: list[str]) -> str:
    """`field in ["a", "b"]`."""
    return f"{field} in [" + ", ".join(quote(v) for v in values) + "]"


def like(field: str, pattern: str) -> str:
    """`field like "..."` matching a superset of the sources the source filter `pattern` matches (see
    tools/globs.py), or "" when that superset is everything; check each result with `globs.matches`."""
    body = re.sub(r"\[[^\]]*\]", "_", pattern.lstrip("/")).replace("**/", "*").replace("*", "%").replace("?", "_")
    body = re.sub("%+", "%", body if pattern.startswith("/") else "%" + body)
    if body.count("%") > MAX_PERCENTS:  # keep its longest fixed part: still a superset
        longest = max(re.split("[%_]", body), key=len)
        body = f"%{longest}%" if longest else "%"
    if not body.strip("%"):  # Milvus Lite's `like "%"` matches nothing
        return ""
    return f"{field} like {quote(body)}"
