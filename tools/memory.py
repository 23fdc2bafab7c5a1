"""glibc's allocator, told to keep less: few arenas, and freed memory handed back. No-ops where glibc is absent
(macOS's allocator returns freed memory by itself)."""

from __future__ import annotations

import ctypes
from typing import Any

M_ARENA_MAX = -8  # mallopt's parameter for the most malloc arenas


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(arenas: int = 1) -> None:
    """At most `arenas` malloc arenas. glibc gives each thread that allocates one of its own (up to 8 a core), and
    the worker threads that embed, search and write each kept tens of MB freed but not returned: 30 MB less per
    server here with one. Call before threads start."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, arenas)


def give_back_freed_memory() -> None:
    """Return the free memory at the top and inside the heap to the system (after a large, passing allocation)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
