"""One glob language for every tool: ingest paths, and the `source` filters of search, describe and delete.

- `*` matches within one folder or file name, `?` one character of it, `[abc]` / `[!abc]` one of a set;
- `**` matches any number of folders (`docs/**/*.md`, or `**` alone for everything);
- a source filter matches at any folder boundary unless it starts with `/`: `faq/*.md` matches
  `data/en/faq/a.md`, a bare name `a.md` matches that file in any folder, `/en/*.md` only `en/...`.

Matching runs the pattern as a small automaton over the path, one character at a time, with every position the
pattern may be at kept as a set: time grows with the path's length times the pattern's, never more. (As a
backtracking regular expression, `**/**/...**/x` took time exponential in the `**`s: 13 of them did not finish.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from tools.checks import shown
from tools.errors import UserError

_MAGIC = re.compile(r"[*?[]")
RULES = "`*` within a name, `**` across folders, matched at any folder boundary unless it starts with /"
MAX_GLOB_CHARS = 1024  # a source name is at most 4096 bytes; a pattern far longer is a mistake
_CACHED_STEPS = 4096  # transitions remembered per pattern (sources share their characters)

# Steps of a pattern: ("lit", c), ("one", ""), ("set", chars), ("notset", chars), ("star", ""): `*` within a name,
# ("dirs", ""): `**/`, any number of folders, ("rest", ""): a trailing `**`, anything below or nothing.
_Step = tuple[str, str]
# A position: (step index, phase); phase 0 at the step's start, 1 inside a name it takes, 2 after a `/` in `rest`.
_State = tuple[int, int]


def has_magic(pattern: str) -> bool:
    return bool(_MAGIC.search(pattern))


def _steps(pattern: str) -> list[_Step]:
    out: list[_Step] = []
    i = 0
    while i < len(pattern):
        at_name_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_name_start and (i + 2 == len(pattern) or pattern[i + 2] == "/"):
            if i + 2 < len(pattern):  # `**/`: any number of folders; `**/**/` is the same
                if not out or out[-1] != ("dirs", ""):
                    out.append(("dirs", ""))
                i += 3
            else:
                out.append(("rest", ""))
                i += 2
        elif pattern[i] == "*":
            while i < len(pattern) and pattern[i] == "*":  # `**` inside a name is `*`
                i += 1
            out.append(("star", ""))
        elif pattern[i] == "?":
            out.append(("one", ""))
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            out.append(("notset", body[1:]) if body[0] in "!^" else ("set", body))
            i = end + 1
        else:
            out.append(("lit", pattern[i]))
            i += 1
    return out


@dataclass
class Glob:
    """A compiled glob; `anywhere`: it may start at any folder boundary (a source filter without a leading `/`)."""

    pattern: str
    anywhere: bool = False
    steps: list[_Step] = field(init=False)
    start: frozenset[_State] = field(init=False)
    _next: dict[tuple[frozenset[_State], str], frozenset[_State]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.pattern) > MAX_GLOB_CHARS:
            raise UserError(f"The glob {shown(self.pattern)} is longer than {MAX_GLOB_CHARS} characters: give a shorter one")
        self.steps = _steps(self.pattern)
        self.start = self._closure({(-1, 0)} if self.anywhere else {(0, 0)})

    def fullmatch(self, text: str) -> bool:
        states = self.start
        for char in text:
            key = (states, char)
            found = self._next.get(key)
            if found is None:
                found = self._closure(self._step(states, char))
                if len(self._next) < _CACHED_STEPS:
                    self._next[key] = found
            if not found:
                return False
            states = found
        return (len(self.steps), 0) in states

    def _closure(self, states: set[_State]) -> frozenset[_State]:
        """The positions reachable without reading a character."""
        todo, seen = list(states), set(states)
        while todo:
            i, phase = todo.pop()
            kind = self.steps[i][0] if 0 <= i < len(self.steps) else ""
            optional = (i == -1 or kind in ("star", "dirs", "rest")) and phase == 0
            done = kind in ("star", "rest") and phase == 1  # a `*` or a trailing `**` may end anywhere in a name
            if (optional or done) and (i + 1, 0) not in seen:
                seen.add((i + 1, 0))
                todo.append((i + 1, 0))
        return frozenset(seen)

    def _step(self, states: frozenset[_State], char: str) -> set[_State]:
        out: set[_State] = set()
        for i, phase in states:
            if i == -1:  # before the pattern: anything up to a `/`, where it may start
                out.add((-1, 0) if char == "/" else (-1, 1))
                continue
            if i >= len(self.steps):
                continue
            kind, arg = self.steps[i]
            in_name = char != "/"
            if (
                (kind == "lit" and char == arg)
                or (kind == "one" and in_name)
                or (kind == "set" and char in arg)
                or (kind == "notset" and in_name and char not in arg)
            ):
                out.add((i + 1, 0))
            elif kind == "star" and in_name:
                out.add((i, 1))
            elif kind == "dirs":  # names followed by `/`; phase 1: inside one
                if in_name:
                    out.add((i, 1))
                elif phase == 1:
                    out.add((i, 0))
            elif kind == "rest":  # name(/name)*; phase 2: after a `/`, a name must follow
                if in_name:
                    out.add((i, 1))
                elif phase == 1:
                    out.add((i, 2))
        return out


@lru_cache(maxsize=256)
def source_glob(pattern: str) -> Glob:
    """A source filter: anchored at the start with a leading `/`, else at any folder boundary."""
    if pattern.startswith("/"):
        return Glob(pattern.lstrip("/"))
    return Glob(pattern, anywhere=True)


def matches(source: str, pattern: str) -> bool:
    """Whether a stored source name matches a source filter."""
    return source_glob(pattern).fullmatch(source)
