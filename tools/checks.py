"""The argument checks several tools share, worded the same everywhere: whole numbers in a range, text without
control characters, collection names. Each raises a UserError that names the argument and what it allows."""

from __future__ import annotations

import re

from tools.errors import UserError

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # newlines, tabs, NUL...: no name, source or filter value holds them
_COLLECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")  # Milvus' own rule
_SHOWN = 60  # characters of a bad value echoed back


def shown(value: object) -> str:
    """A bad value as an error message quotes it: its repr, cut short, so a huge argument stays a short line."""
    text = repr(value[: _SHOWN + 1] if isinstance(value, (str, bytes, list, tuple)) else value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def whole_number(name: str, value: object, low: int, high: int) -> int:
    """`value` if it is an int from `low` to `high` (a JSON true is not 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UserError(f"{name} must be a whole number from {low} to {high}, not {shown(value)}")
    return value


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def collection_name(name: str) -> str:
    """Collection names: letters, digits and underscores, starting with a letter or underscore."""
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise UserError(
            f"Invalid collection name {shown(name)}: use letters, digits and underscores, starting with a letter or underscore"
        )
    return name
