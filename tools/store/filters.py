"""Milvus filter expressions built from user text: quoting, globs, `in [...]` lists.

Milvus Lite 2.5.1 crashes on filter templates (`{p}` parameters), so values are quoted and escaped here,
and characters Milvus cannot escape are refused. Its `like` cannot escape `%` or `_` and has no character
classes, so a glob becomes a `like` that matches a superset, and results are checked with `matches`.
"""

from __future__ import annotations

import fnmatch
import re

from tools.errors import UserError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def quote(value: str) -> str:
    """A Milvus expression string literal; refuses characters Milvus cannot escape."""
    if _CONTROL.search(value):
        raise UserError("Filter values may not contain control characters (newlines, tabs, NUL)")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_in(field: str, values: list[str]) -> str:
    """`field in ["a", "b"]`."""
    return f"{field} in [" + ", ".join(quote(v) for v in values) + "]"


def glob_to_like(pattern: str) -> tuple[str, bool]:
    """A `like` pattern matching a superset of the glob, and whether it is exact.

    `*` becomes `%` and `?` becomes `_`; `%`, `_` and character classes make the pattern inexact.
    """
    exact = not any(c in pattern for c in "%_[]")
    like = re.sub(r"\[[^\]]*\]", "_", pattern).replace("*", "%").replace("?", "_")
    return like, exact


def like(field: str, pattern: str) -> tuple[str, bool]:
    """`field like "..."` for a glob, and whether the expression is exact (else check with `matches`)."""
    expr, exact = glob_to_like(pattern)
    return f"{field} like {quote(expr)}", exact


def matches(source: str, pattern: str) -> bool:
    """Whether a stored source name matches a glob (`*` and `?` also cross `/`)."""
    return fnmatch.fnmatchcase(source, pattern)
