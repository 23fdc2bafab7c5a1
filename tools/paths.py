"""Turning ingest inputs (files, folders, globs) into files inside the allowed roots.

Every path is resolved (symlinks and `..`) before it is checked, and a glob's fixed leading folder is
checked before anything is listed, so nothing outside the roots is read. Walks never follow a symbolic
link to a folder (so a link loop cannot make them endless), are bounded in the entries they visit, and
stop when the call is cancelled. What a walk passes over is reported with the reason, except hidden
files and folders and `SKIP_DIRS`, which are left out on purpose.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools import globs
from tools.checks import has_control, shown
from tools.errors import UserError
from tools.readers import reader_for
from tools.result import Result
from tools.store.schema import SOURCE_MAX

SKIP_DIRS = {"node_modules", "__pycache__"}
MAX_ENTRIES = 1_000_000  # files and folders one ingest call may look at
MAX_FILES = 100_000  # files one ingest call may take


class SkippedFile(Result):
    """A file passed over, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest: its real path, the root that holds it, and its source name (relative to that root)."""

    path: Path
    root: Path
    source: str


@dataclass
class Collected:
    """The files to ingest, what was passed over, and the folders named (root and source prefix, for prune)."""

    files: list[FoundFile]
    skipped: list[SkippedFile]
    folders: list[tuple[Path, str]]
    found: int = 0  # files seen with a name ingest could take, before reading them


@dataclass
class _Walk:
    """State shared by one call: the roots, what was found and skipped, the entry budget, the stop check."""

    roots: list[Path]
    check_cancelled: Callable[[], None]
    files: dict[Path, FoundFile] = field(default_factory=dict)
    skipped: list[SkippedFile] = field(default_factory=list)
    entries: int = 0

    def visit(self) -> None:
        self.entries += 1
        if self.entries % 1000 == 0:
            self.check_cancelled()
        if self.entries > MAX_ENTRIES:
            raise UserError(f"The paths given cover more than {MAX_ENTRIES:,} files and folders; ingest smaller folders")

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append(SkippedFile(path=os.fsdecode(path).encode("utf-8", "backslashreplace").decode(), reason=reason))

    def take(self, path: Path) -> None:
        """Add a regular file (its real path) if a reader takes it and its name can be stored."""
        root = within(path, self.roots)
        assert root is not None
        source = path.relative_to(root).as_posix()
        if reader_for(path) is None:
            self.skip(path, f"unsupported file type {path.suffix.lower() or '(none)'}")
        elif has_control(source):
            self.skip(path, "file name contains control characters (newline, tab)")
        elif not _is_utf8(source):
            self.skip(path, "file name is not valid UTF-8")
        elif len(source.encode()) > SOURCE_MAX:
            self.skip(path, f"path longer than {SOURCE_MAX} bytes")
        elif path not in self.files:
            if len(self.files) >= MAX_FILES:
                raise UserError(f"The paths given hold more than {MAX_FILES:,} files; ingest smaller folders")
            self.files[path] = FoundFile(path, root, source)


def within(path: Path, roots: list[Path]) -> Path | None:
    """The root that contains `path` (already resolved), if any."""
    return next((root for root in roots if path == root or path.is_relative_to(root)), None)


def collect(inputs: list[str], roots: list[Path], check_cancelled: Callable[[], None] = lambda: None) -> Collected:
    """All files named by `inputs`; refuses any input that is missing or outside the roots.

    `check_cancelled` is called now and then during walks and raises to stop them.
    """
    if not inputs:
        raise UserError("Give at least one file, folder or glob in `paths`")
    walk = _Walk(roots, check_cancelled)
    folders: list[tuple[Path, str]] = []
    for raw in inputs:
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise UserError(f"Invalid path {shown(raw)}")
        path = Path(os.path.expanduser(raw))
        path = path if path.is_absolute() else roots[0] / path
        if globs.has_magic(raw) and not os.path.lexists(path):  # a name with `[` that exists is taken as it is
            _expand_glob(raw, path, walk)
            continue
        try:
            resolved = path.resolve()
            kind = "folder" if resolved.is_dir() else "file" if resolved.is_file() else "other" if resolved.exists() else ""
        except OSError as exc:  # a name too long for the file system, or a folder on the way that cannot be read
            raise UserError(f"{shown(raw)} cannot be read: {exc.strerror or exc}") from None
        root = within(resolved, roots)
        if root is None:
            raise _outside(raw, roots)
        if kind == "folder":
            folders.append((root, "" if resolved == root else resolved.relative_to(root).as_posix()))
            _walk(resolved, walk)
        elif kind == "file":
            walk.take(resolved)
        elif kind:
            walk.skip(path, f"not a regular file ({_kind(resolved)})")
        else:
            raise UserError(f"{shown(raw)} does not exist")
    files = sorted(walk.files.values(), key=lambda f: (f.source, str(f.root)))
    seen = len(files) + sum(1 for s in walk.skipped if not s.reason.startswith("unsupported file type"))
    return Collected(files, walk.skipped, folders, seen)


def _outside(raw: str, roots: list[Path]) -> UserError:
    listed = os.pathsep.join(str(r) for r in roots)
    return UserError(f"{shown(raw)} is outside the folders this server may read (INGEST_ROOTS={listed})")


def _walk(folder: Path, walk: _Walk, prefix_match: Callable[[str], bool] | None = None) -> None:
    """Every file under `folder` (not following links to folders), or only those whose path relative to
    `folder` satisfies `prefix_match`."""
    for entry, rel in _entries(folder, walk):
        if prefix_match is not None and not prefix_match(rel):
            continue
        _consider(Path(entry.path), entry, walk)


def _entries(folder: Path, walk: _Walk) -> Iterator[tuple[os.DirEntry[str], str]]:
    """(entry, path relative to `folder`) for every non-folder entry below it, in sorted order."""
    stack: list[tuple[Path, str]] = [(folder, "")]
    while stack:
        current, rel = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            walk.skip(current, f"folder cannot be read: {exc.strerror or exc}")
            continue
        for entry in entries:
            walk.visit()
            name_rel = f"{rel}{entry.name}"
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    stack.append((Path(entry.path), name_rel + "/"))
                continue
            yield entry, name_rel


def _consider(path: Path, entry: os.DirEntry[str], walk: _Walk) -> None:
    """Take a file met in a walk, or say why not (links are resolved and must stay inside the roots)."""
    try:
        if entry.is_symlink():
            resolved = path.resolve()
            if within(resolved, walk.roots) is None:
                walk.skip(path, "symbolic link to a place outside INGEST_ROOTS")
            elif resolved.is_dir():
                walk.skip(path, "symbolic link to a folder (not followed)")
            elif resolved.is_file():
                walk.take(resolved)
            else:
                walk.skip(
                    path, "symbolic link to nothing" if not resolved.exists() else f"not a regular file ({_kind(resolved)})"
                )
        elif entry.is_file(follow_symlinks=False):
            walk.take(path.resolve())
        else:
            walk.skip(path, f"not a regular file ({_kind(path)})")
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop met by resolve()
        walk.skip(path, f"cannot be read: {getattr(exc, 'strerror', None) or exc}")


def _expand_glob(raw: str, pattern: Path, walk: _Walk) -> None:
    """Files matching a glob (see tools/globs.py); a folder that matches brings every file below it."""
    parts = pattern.parts
    fixed_count = next(i for i, part in enumerate(parts) if globs.has_magic(part))
    fixed = Path(*parts[:fixed_count]).resolve()
    if within(fixed, walk.roots) is None:
        raise _outside(raw, walk.roots)
    glob = globs.Glob("/".join(parts[fixed_count:]))  # hidden names need no rule here: walks leave them out
    before = len(walk.files) + len(walk.skipped)
    if fixed.is_dir():
        _walk(fixed, walk, lambda rel: any(glob.fullmatch(prefix) for prefix in _prefixes(rel)))
    if len(walk.files) + len(walk.skipped) == before:
        raise UserError(f"{shown(raw)} matched no files")


def _prefixes(rel: str) -> Iterator[str]:
    """`a/b/c.md` → `a`, `a/b`, `a/b/c.md`: a match on a folder takes everything below it."""
    at = rel.find("/")
    while at != -1:
        yield rel[:at]
        at = rel.find("/", at + 1)
    yield rel


def _kind(path: Path) -> str:
    mode = path.lstat().st_mode
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):  # fmt: skip
        if test(mode):
            return name
    return "special file"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
