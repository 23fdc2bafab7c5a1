"""The reader registry: every module in this package that defines `READER` adds the file types it reads.

To add a format, add one module here with a `Reader` subclass and `READER = YourReader()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from tools.readers.base import Document, Reader, Section, Unreadable

__all__ = ["Document", "Reader", "Section", "Unreadable", "reader_for", "supported_suffixes"]


def _discover() -> dict[str, Reader]:
    by_suffix: dict[str, Reader] = {}
    for module in pkgutil.iter_modules(__path__):
        reader = getattr(importlib.import_module(f"{__name__}.{module.name}"), "READER", None)
        if isinstance(reader, Reader):
            by_suffix.update(dict.fromkeys(reader.suffixes, reader))
    return by_suffix


_READERS = _discover()


def reader_for(path: Path) -> Reader | None:
    """The reader for a file, by its suffix; None when no reader takes it."""
    return _READERS.get(path.suffix.lower())


def supported_suffixes() -> list[str]:
    """Every file suffix some reader takes, sorted."""
    return sorted(_READERS)
