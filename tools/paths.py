"""Turning ingest inputs (files, folders, globs) into files inside the allowed roots.

Every path is resolved (symlinks and `..`) before it is checked, and a glob's fixed leading
folder is checked before anything is listed, so nothing outside the roots is read.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from tools.errors import UserError
from tools.readers import reader_for, supported_suffixes

SKIP_DIRS = {"node_modules", "__pycache__"}


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest: its real path and its source name (relative to its root)."""

    path: Path
    source: str


class SkippedFile(BaseModel):
    """A file passed over, and why."""

    path: str
    reason: str


def within(path: Path, roots: list[Path]) -> Path | None:
    """The root that contains `path` (already resolved), if any."""
    return next((root for root in roots if path == root or path.is_relative_to(root)), None)


def source_name(path: Path, roots: list[Path]) -> str:
    """The name a file is stored under: its path relative to the root that holds it."""
    root = within(path, roots)
    assert root is not None
    return path.relative_to(root).as_posix()


def _outside(raw: str, roots: list[Path]) -> UserError:
    listed = os.pathsep.join(str(r) for r in roots)
    return UserError(f"{raw!r} is outside the folders this server may read (INGEST_ROOTS={listed})")


@dataclass
class Collected:
    """The files to ingest, what was passed over, and the folders named (as source prefixes)."""

    files: list[FoundFile]
    skipped: list[SkippedFile]
    folders: list[str]


def collect(inputs: list[str], roots: list[Path]) -> Collected:
    """All supported files named by `inputs`; refuses any input that is missing or outside the roots."""
    if not inputs:
        raise UserError("Give at least one file, folder or glob in `paths`")
    found: dict[Path, FoundFile] = {}
    skipped: list[SkippedFile] = []
    folders: list[str] = []
    for raw in inputs:
        if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
            raise UserError(f"Invalid path {raw!r}")
        folder = _folder(raw, roots)
        if folder is not None:
            folders.append(folder)
        for path, explicit in _expand(raw, roots):
            if reader_for(path) is not None:
                found.setdefault(path, FoundFile(path, source_name(path, roots)))
            elif explicit:
                supported = ", ".join(supported_suffixes())
                skipped.append(
                    SkippedFile(path=str(path), reason=f"unsupported file type {path.suffix or '(none)'}; supported: {supported}")
                )
    return Collected(sorted(found.values(), key=lambda f: f.source), skipped, folders)


def _folder(raw: str, roots: list[Path]) -> str | None:
    """The source prefix of an input that names a folder inside the roots ("" for a root itself)."""
    if glob.has_magic(raw):
        return None
    path = Path(os.path.expanduser(raw))
    resolved = (path if path.is_absolute() else roots[0] / path).resolve()
    if not resolved.is_dir() or within(resolved, roots) is None:
        return None
    prefix = source_name(resolved, roots)
    return "" if prefix == "." else prefix


def _expand(raw: str, roots: list[Path]) -> list[tuple[Path, bool]]:
    """(resolved file, named explicitly?) for one input."""
    base = Path(os.path.expanduser(raw))
    if not base.is_absolute():
        base = roots[0] / base
    if glob.has_magic(raw):
        return _expand_glob(raw, base, roots)
    resolved = base.resolve()
    if within(resolved, roots) is None:
        raise _outside(raw, roots)
    if resolved.is_dir():
        return [(f, False) for f in _walk(resolved, roots)]
    if not resolved.is_file():
        raise UserError(f"{raw!r} does not exist" if not resolved.exists() else f"{raw!r} is not a file or folder")
    return [(resolved, True)]


def _expand_glob(raw: str, pattern: Path, roots: list[Path]) -> list[tuple[Path, bool]]:
    fixed = Path(*[part for part in _fixed_parts(pattern)])
    if within(fixed.resolve(), roots) is None:
        raise _outside(raw, roots)
    matches: list[tuple[Path, bool]] = []
    for match in sorted(glob.iglob(str(pattern), recursive=True)):
        resolved = Path(match).resolve()
        if within(resolved, roots) is None:
            continue  # a symlink pointing out of the roots
        if resolved.is_dir():
            matches.extend((f, False) for f in _walk(resolved, roots))
        elif resolved.is_file():
            matches.append((resolved, True))
    if not matches:
        raise UserError(f"{raw!r} matched no files")
    return matches


def _fixed_parts(pattern: Path) -> list[str]:
    parts: list[str] = []
    for part in pattern.parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return parts


def _walk(folder: Path, roots: list[Path]) -> list[Path]:
    """Files under a folder, recursively, not following folder symlinks, skipping hidden folders."""
    files: list[Path] = []
    for current, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(names):
            path = Path(current, name)
            if reader_for(path) is None:
                continue
            resolved = path.resolve()
            if within(resolved, roots) is not None and resolved.is_file():
                files.append(resolved)
    return files
