"""Watching Milvus Lite engines from the outside, for the tests that start, share and kill them."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import until


def engines(db: Path) -> list[int]:
    """Live milvus-lite engines serving `db`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if len(argv) > 1 and argv[0].endswith(b"/milvus") and argv[1] == str(db).encode() and state not in "ZX":
            found.append(int(entry))
    return found


def no_engine_left(db: Path, timeout: float = 10) -> None:
    until(lambda: not engines(db), timeout, f"every engine on {db} exits (left: {engines(db)})")
