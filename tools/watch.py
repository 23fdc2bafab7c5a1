"""Watch mode: keep INGEST_ROOTS in sync with the store. New and changed files are ingested, removed ones (or ones
turned into a link that leads out of the roots, or to nothing) have their documents deleted, with the same skip
reasons and log lines as an ingest.

Uses watchfiles (Samuel Colvin's Rust `notify` binding, which uvicorn uses for --reload): inotify / FSEvents /
kqueue events, already debounced and grouped into sets, on an async iterator that anyio can cancel; watchdog would
need a thread and our own debouncing.

One watcher per root and store at a time, whatever process runs it: the watcher holds an exclusive lock on a file
beside the Lite store (or, for a Milvus server, in the temp folder, one per machine). Every other process that
should watch waits for the lock, polling it, so when the holder dies (even by kill -9: the OS drops the lock) one
of them takes over, first syncing the whole root (ingest with prune) to catch what changed in between.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio
from watchfiles import awatch

from tools import defaults
from tools.errors import UserError
from tools.ingest import IngestResult, ingest_documents
from tools.paths import within
from tools.services import Services

log = logging.getLogger(__name__)
LOCK_POLL_S = 1.0  # how often a waiting watcher tries the lock
RUST_TIMEOUT_MS = 200  # the watch yields an empty set this often when nothing changed


def lock_path(services: Services, root: Path) -> Path:
    """The lock file of the watcher of `root` on this store."""
    key = hashlib.sha256(f"{services.store.connection.uri}\x00{root}".encode()).hexdigest()[:16]
    if services.store.connection.is_lite:
        db = Path(services.store.connection.uri).resolve()
        return db.parent / f".{db.name}.watch-{key}.lock"
    return Path(tempfile.gettempdir()) / f"milvus-qwen-watch-{os.getuid()}-{key}.lock"


class WatchLock:
    """An exclusive, non-blocking lock on a file; the OS releases it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


async def watch(
    services: Services,
    *,
    debounce_ms: int = defaults.WATCH_DEBOUNCE_MS,
    on_batch: Callable[[str, IngestResult | None, list[str]], None] | None = None,
) -> None:
    """Watch every root until cancelled: one task per root, each waiting for its lock, then syncing."""
    async with anyio.create_task_group() as tg:
        for root in services.roots:
            tg.start_soon(_watch_root, services, root, debounce_ms, on_batch)


async def _watch_root(
    services: Services,
    root: Path,
    debounce_ms: int,
    on_batch: Callable[[str, IngestResult | None, list[str]], None] | None,
) -> None:
    lock = WatchLock(lock_path(services, root))
    said_waiting = False
    while not await anyio.to_thread.run_sync(lock.try_acquire):
        if not said_waiting:
            log.info("watch %s: another process watches it (lock %s); waiting to take over", root, lock.path)
            said_waiting = True
        await anyio.sleep(LOCK_POLL_S)
    try:
        log.info("watch %s: watching (pid %d); syncing it first", root, os.getpid())
        synced = False
        # The first (empty) yield comes once the OS watch is set up: the sync runs then, so that a change made
        # while it runs is seen by the watch and comes next.
        async for changes in awatch(
            root, debounce=debounce_ms, step=50, recursive=True, rust_timeout=RUST_TIMEOUT_MS, yield_on_timeout=True
        ):
            if not synced:
                result = await ingest_documents(services, [str(root)], prune=True)
                _log_result(root, "sync", result, [])
                if on_batch is not None:
                    on_batch("sync", result, [])
                synced = True
            paths = sorted({Path(path) for _, path in changes})
            if not paths:
                continue
            changed, removed = await sync_paths(services, root, paths)
            _log_result(root, "change", changed, removed)
            if on_batch is not None:
                on_batch("change", changed, removed)
    finally:
        lock.release()


async def sync_paths(services: Services, root: Path, paths: list[Path]) -> tuple[IngestResult | None, list[str]]:
    """Bring the store in line with `paths` under `root` as they are now: ingest what is there, delete the
    documents of what is gone (or is a link out of the roots, or to nothing). Returns the ingest's result and the
    sources removed."""
    ingest, gone = await anyio.to_thread.run_sync(_sort, services, root, paths)
    result = None
    if ingest:
        log.info("watch %s: ingesting %s", root, ", ".join(Path(p).relative_to(root).as_posix() for p in ingest))
        try:
            result = await ingest_documents(services, ingest)
        except UserError as exc:  # a path that vanished between the event and the read: the next event tells
            log.warning("watch %s: %s", root, exc)
    removed = await _remove(services, root, gone) if gone else []
    return result, removed


def _sort(services: Services, root: Path, paths: list[Path]) -> tuple[list[str], list[str]]:
    """The paths to ingest, and the sources (relative to `root`) whose documents go."""
    ingest: list[str] = []
    gone: list[str] = []
    store_file = Path(services.store.connection.uri).resolve() if services.store.connection.is_lite else None
    for path in paths:
        if within(path, [root]) is None or _hidden(path.relative_to(root)) or path == store_file:
            continue
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() and (not path.exists() or within(path.resolve(), services.roots) is None):
            reason = "symbolic link to nothing" if not path.exists() else "symbolic link to a place outside INGEST_ROOTS"
            log.warning("watch %s: skipped %s: %s", root, path, reason)
            gone.append(rel)
        elif path.exists():
            ingest.append(str(path))
        else:
            gone.append(rel)
    return ingest, gone


async def _remove(services: Services, root: Path, gone: list[str]) -> list[str]:
    """Delete the documents stored under `root` at these paths (a file, or every file under a folder)."""
    store, name = services.store, services.collection
    if await store.info(name) is None:
        return []
    stored = await store.sources(name, root=str(root))
    doomed = sorted(key for key in stored if any(key[1] == g or key[1].startswith(g + "/") for g in gone))
    if doomed:
        await store.delete_documents(name, doomed)
        await store.flush(name)
        services.languages.pop(name, None)
    return [source for _, source in doomed]


def _hidden(rel: Path) -> bool:
    """Hidden files and folders, node_modules and __pycache__: left out by walks too."""
    return any(part.startswith(".") or part in ("node_modules", "__pycache__") for part in rel.parts)


def _log_result(root: Path, kind: str, result: IngestResult | None, removed: list[str]) -> None:
    """The ingest's summary and skipped files, as an ingest logs them, and what was removed."""
    if result is not None:
        log.info("watch %s: %s: %s", root, kind, result.summary)
        for skipped in result.skipped:
            log.warning("watch %s: skipped %s: %s", root, skipped.path, skipped.reason)
    if removed:
        log.info("watch %s: removed %s", root, ", ".join(removed))
