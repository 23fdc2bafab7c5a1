"""Milvus filter expressions built from user text: quoting, globs, `in [...]` lists.

Milvus Lite 2.5.1 crashes on filter templates (`{p}` parameters), so values are quoted and escaped here,
and characters Milvus cannot escape are refused. Its `like` cannot escape `%` or `_`, has no character
classes and its `%` crosses `/`, so a source filter becomes a `like` that matches a superset, and results
are checked with `globs.matches`.

The typed filters (`Where`: language, pages, title, ingest time, contains, metadata) are built here too, each
part quoted the same way; the caller never writes an expression.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools import globs
from tools.checks import has_control
from tools.errors import UserError
from tools.result import _drop_titles

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


# Typed filters: what a caller may ask for, never a Milvus expression. Each part becomes a Milvus expression that
# matches a superset (quoted here), plus, where Milvus cannot say it exactly, a check of each row.

META_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,127}$")
MAX_VALUES = 100
MAX_CONTAINS = 200
ContainsBy = Literal["like"]


class PageRange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_titles)

    first: int | None = Field(None, description="First page (or slide), from 1")
    last: int | None = Field(None, description="Last page (or slide)")


class NumberRange(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_titles)

    min: float | None = Field(None, description="At least this")
    max: float | None = Field(None, description="At most this")


MetaCondition = str | int | float | bool | list[str | int | float] | NumberRange


class Where(BaseModel):
    """Which chunks a call considers, beyond the source glob; every part given must hold."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_titles)

    lang: list[str] | None = Field(
        None, description='Chunk languages, e.g. ["en"] or ["zh", "ko"] (describe_collection lists them)'
    )
    pages: PageRange | None = Field(None, description="Chunks on these pages (or slides); documents without pages have none")
    title: str | None = Field(None, description="A glob over the document title, ignoring case: *manual*, Release ?.*")
    after: str | None = Field(None, description="Chunks written at or after this date or time (ISO 8601, e.g. 2026-12-01)")
    before: str | None = Field(None, description="Chunks written before this date or time")
    contains: str | None = Field(None, description="Passages whose text holds this word or phrase (ignoring case)")
    metadata: dict[str, MetaCondition] | None = Field(
        None,
        description="Conditions on the document's metadata keys: a value (equal, or in a list it holds), a list (any "
        'of them), or {"min": .., "max": ..}; e.g. {"author": "Ada", "tags": ["ops", "db"], "year": {"min": 2020}}',
    )


@dataclass(frozen=True)
class Part:
    """One condition: a label for notes, a Milvus expression (a superset where `check` is set), the exact check."""

    name: str  # the argument it comes from: source, lang, pages, title, after, before, contains, metadata
    label: str
    expr: str
    check: Callable[[Mapping[str, Any]], bool] | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filter:
    """The conditions a search, listing or delete applies, all together."""

    parts: tuple[Part, ...] = ()
    contains_by: ContainsBy | None = None  # how `contains` was tested, where it was given

    @property
    def expr(self) -> str:
        return " and ".join(f"({part.expr})" for part in self.parts if part.expr)

    @property
    def exact_expr(self) -> str:
        """The expression of the parts Milvus says exactly (no row check covers them)."""
        return " and ".join(f"({part.expr})" for part in self.parts if part.expr and part.check is None)

    @property
    def fields(self) -> list[str]:
        """The row fields the checks read."""
        return sorted({name for part in self.parts for name in part.fields})

    @property
    def exact(self) -> bool:
        """Whether Milvus's expression alone is the whole filter (no row needs checking)."""
        return all(part.check is None for part in self.parts)

    def matches(self, entity: Mapping[str, Any]) -> bool:
        return all(part.check is None or part.check(entity) for part in self.parts)

    def __bool__(self) -> bool:
        return bool(self.parts)


def build(where: Where | None, source: str | None, fields: frozenset[str], collection: str = "") -> Filter:
    """The filter for a source glob and typed conditions, over a collection with `fields`; a condition on a field
    the collection lacks (made by an older version) is refused with what to do."""
    parts: list[Part] = []
    if source:
        glob = source

        def in_source(entity: Mapping[str, Any]) -> bool:
            return globs.matches(entity["source"], glob)

        parts.append(Part("source", f"source={source!r}", like("source", source), in_source, ("source",)))
    if where is None:
        return Filter(tuple(parts))

    def need(field: str, what: str) -> None:
        if field not in fields:
            raise UserError(
                f"Collection {collection!r} was made before chunks recorded their {what}, so it cannot be filtered by it; "
                "ingest into a new collection to use this filter"
            )

    contains_by: ContainsBy | None = None
    if where.lang:
        need("lang", "language")
        codes = [code.strip().lower() for code in where.lang]
        parts.append(Part("lang", f"lang={where.lang!r}", is_in("lang", codes[:MAX_VALUES])))
    if where.pages is not None:
        parts.append(_pages(where.pages, fields, need))
    if where.title:
        parts.append(_text_glob("title", where.title))
    for label, value, op in (("after", where.after, ">="), ("before", where.before, "<")):
        if value:
            need("ingested_at", "ingest time")
            parts.append(Part(label, f"{label}={value!r}", f"ingested_at {op} {_timestamp(label, value)}"))
    if where.contains:
        parts.append(_contains(where.contains))
        contains_by = "like"
    for key, condition in (where.metadata or {}).items():
        need("metadata", "metadata")
        parts.append(_metadata(key, condition))
    return Filter(tuple(parts), contains_by)


def _pages(pages: PageRange, fields: frozenset[str], need: Callable[[str, str], None]) -> Part:
    need("page_start", "pages")
    first, last = pages.first, pages.last
    for name, n in (("first", first), ("last", last)):
        if n is not None and not 1 <= n <= 10**9:
            raise UserError(f"pages.{name} must be a page number from 1, not {n!r}")
    if first is None and last is None:
        raise UserError('pages needs "first", "last" or both, e.g. {"first": 3, "last": 7}')
    if first is not None and last is not None and last < first:
        raise UserError(f"pages.last ({last}) comes before pages.first ({first})")
    terms = ["page_start > 0"]
    terms += [f"page_end >= {int(first)}"] if first is not None else []
    terms += [f"page_start <= {int(last)}"] if last is not None else []
    label = f"pages {first or 1}-{last or ''}"
    return Part("pages", label, " and ".join(terms))


def _spellings(text: str) -> list[str]:
    """The ways a word or phrase is commonly written: as given, lower case, Capitalised, Title Case, UPPER."""
    return list(dict.fromkeys([text, text.lower(), text.capitalize(), text.title(), text.upper()]))


def _text_glob(field: str, pattern: str) -> Part:
    """A case-insensitive glob over a whole text field (`*` any run of characters, `?` one)."""
    if len(pattern) > MAX_CONTAINS:
        raise UserError(f"The {field} glob is longer than {MAX_CONTAINS} characters")
    regex = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.I | re.S)
    likes = [f"{field} like {quote(s.replace('*', '%').replace('?', '_'))}" for s in _spellings(pattern)]
    expr = "" if not pattern.strip("*") else " or ".join(likes)
    return Part(field, f"{field}={pattern!r}", expr, lambda e: bool(regex.fullmatch(e.get(field) or "")), (field,))


def _contains(phrase: str) -> Part:
    """Passages holding `phrase`, ignoring case. Milvus Lite 2.5.1 refuses text_match (even on a field made with
    enable_match) and Milvus 2.3 has none, so Milvus narrows with `like` over the common spellings and each row
    is checked here."""
    phrase = " ".join(phrase.split())
    if not phrase or len(phrase) > MAX_CONTAINS:
        raise UserError(f"contains must be a word or phrase of 1 to {MAX_CONTAINS} characters")
    wanted = phrase.casefold()
    expr = " or ".join(f"text like {quote('%' + s + '%')}" for s in _spellings(phrase))
    return Part(
        "contains",
        f"contains={phrase!r}",
        expr,
        lambda e: wanted in " ".join((e.get("text") or "").split()).casefold(),
        ("text",),
    )


def _timestamp(label: str, value: str) -> int:
    """Unix seconds of an ISO 8601 date or time; without a zone, UTC."""
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{label} must be an ISO 8601 date or time such as 2026-12-01 or 2026-12-01T09:30, not {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UserError("metadata values must be finite numbers")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise UserError(f"metadata values must be text, numbers or true/false, not {value!r}")


def _metadata(key: str, condition: MetaCondition) -> Part:
    """Equality (a value, or a list holding it), membership (any of a list), or a numeric range on one key."""
    if not META_KEY.match(key):
        raise UserError(f"metadata key {key!r} cannot be filtered on: use keys of letters, digits, spaces, '_', '.' and '-'")
    field = f"metadata[{quote(key)}]"
    label = f"metadata {key!r}"
    if isinstance(condition, NumberRange):
        if condition.min is None and condition.max is None:
            raise UserError(f'metadata {key!r} range needs "min", "max" or both')
        terms = [f"{field} >= {_literal(condition.min)}"] if condition.min is not None else []
        terms += [f"{field} <= {_literal(condition.max)}"] if condition.max is not None else []
        return Part("metadata", f"{label} in {condition.min}..{condition.max}", " and ".join(terms))
    if isinstance(condition, list):
        if not condition or len(condition) > MAX_VALUES:
            raise UserError(f"metadata {key!r} needs 1 to {MAX_VALUES} values to choose from")
        values = "[" + ", ".join(_literal(v) for v in condition) + "]"
        return Part("metadata", f"{label} in {condition!r}", f"{field} in {values} or json_contains_any({field}, {values})")
    value = _literal(condition)
    return Part("metadata", f"{label} = {condition!r}", f"{field} == {value} or json_contains({field}, {value})")
