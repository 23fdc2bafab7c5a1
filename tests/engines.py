"""Watching Milvus Lite engines from the outside, for the tests that start, share and kill them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


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


def until(check: Callable[[], T], timeout: float, what: str) -> T:
    """The first true value of `check()`, polled every 20 ms; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)


def no_engine_left(db: Path, timeout: float = 10) -> None:
    until(lambda: not engines(db), timeout, f"every engine on {db} exits (left: {engines(db)})")
