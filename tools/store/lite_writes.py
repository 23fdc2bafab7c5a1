"""Writes to a shared Lite file, checked before and after.

Before: the file, its folder and its disk can take the write (they may change while the server runs). After: the
engine stored it. Milvus Lite's engine acknowledges a write its file refused (a read-only file, a full disk) and keeps
it in memory, so every process would go on seeing rows that a restart loses. Two signs tell, neither tied to the
wording of a message: the SQLite file's change counter (bytes 24-27 of its header, which every committed transaction
advances) stays put under a write that had something to store; and the engine logs an error (a glog line of
severity E or F) while the write runs. Either makes the call an error ("was not stored") and stops the engine, so
that the next call, in any process, starts one that reads the file as it is.

Writes take turns (`LiteEngine.writing`): the engine applies an upsert as a delete and an insert, so two processes
upserting the same ids at once (two ingests of one folder) left both rows; and with turns, what the log and the file
gained during a write are that write's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from tools.errors import UserError
from tools.store import locks
from tools.store.client import MilvusClientLike, engine_fault, engine_lost
from tools.store.lite_engine import LiteEngine

LOG_READ_MAX = 1 << 16  # the most of the engine log read after one write
SPACE_MARGIN = 1 << 20  # a disk with less free than this is full: a write there is refused before the engine tries it
# A glog line of severity E (error) or F (fatal): "E20261201 07:53:36.255407 31879 collection_data.cpp:84]
# [SERVER][Insert][grpcpp_sync_ser][]Insert data failed, errs: attempt to write a readonly database"
_ERROR_LINE = re.compile(r"^[EF]\d{8} \S+\s+\d+ \S+\] (?:\[[^\]\n]*\])*(?P<message>[^\n]*)$", re.MULTILINE)


@dataclass(frozen=True)
class Mark:
    """The engine log's end and the file's change counter before a write, and the engine that took it."""

    log_inode: int
    log_size: int
    counter: int | None  # None: no file yet, or one whose counter does not tell (WAL mode)
    pid: int | None


class CheckedClient:
    """A client of a shared Lite engine: reads pass; writes are checked before and after (`on_lost` drops the
    client when one was not stored)."""

    def __init__(self, milvus: MilvusClientLike, engine: LiteEngine, on_lost: Callable[[CheckedClient], object]) -> None:
        self.milvus = milvus
        self._engine = engine
        self._on_lost = on_lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self.milvus, name)

    def insert(self, collection_name: str, data: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._write(lambda _: bool(data), "insert", collection_name, data, **kwargs)
        return result

    def upsert(self, collection_name: str, data: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._write(lambda _: bool(data), "upsert", collection_name, data, **kwargs)
        return result

    def delete(self, collection_name: str, **kwargs: Any) -> Any:
        return self._write(_deleted_any, "delete", collection_name, **kwargs)

    def create_collection(self, collection_name: str, dimension: int | None = None, **kwargs: Any) -> None:
        # an existing collection of the same shape is no error, and no change (another process made it first)
        self._write(lambda existed: not existed, "create_collection", collection_name, dimension, **kwargs)

    def drop_collection(self, collection_name: str) -> None:
        self._write(lambda existed: bool(existed), "drop_collection", collection_name)

    def create_index(self, collection_name: str, index_params: Any, **kwargs: Any) -> None:
        # whether an index changes the file is the engine's business: only its errors tell
        self._write(lambda _: False, "create_index", collection_name, index_params, **kwargs)

    def _write(self, changes: Callable[[Any], bool], method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """`milvus.<method>(name, ...)`: refused when the file cannot take it; an error when the engine did not store
        it. `changes(result)` says whether the file must have changed (for a collection's creation or drop, it is
        given whether the collection existed before)."""
        from pymilvus import MilvusException

        db = self._engine.files.db
        problem = cannot_write(db)
        if problem is not None:
            raise UserError(problem)
        if method != "create_index":  # pymilvus retries an engine's failure 75 times (about 4 minutes) otherwise
            kwargs = {"retry_times": 1, **kwargs}
        with self._engine.writing():
            existed = self.milvus.has_collection(name) if method.endswith("_collection") else None
            mark = self._mark()
            try:
                result = getattr(self.milvus, method)(name, *args, **kwargs)
            except MilvusException as exc:
                if engine_lost(exc):
                    raise  # the engine is gone, and its memory with it: the connection finds or starts another and retries
                failures = self._errors_logged(mark)
                if not failures and not engine_fault(exc):
                    raise  # the request itself was refused: nothing was written
                self._lost(mark, failures or [_fault_text(exc)], (args, kwargs))
            failures = self._errors_logged(mark)
            must_change = changes(existed if existed is not None else result)
            if must_change and not failures and mark.counter is not None and _counter(db) == mark.counter:
                failures = ["the engine acknowledged it, but the file did not change"]
            if failures:
                self._lost(mark, failures, (args, kwargs))
        return result

    def _mark(self) -> Mark:
        try:
            st = os.stat(self._engine.files.log)
            inode, size = st.st_ino, st.st_size
        except OSError:
            inode, size = 0, 0  # whatever log there is afterwards is new
        return Mark(inode, size, _counter(self._engine.files.db), self._engine.pid)

    def _errors_logged(self, mark: Mark) -> list[str]:
        """The engine's error lines logged since `mark` (during this write: writes take turns)."""
        try:
            with open(self._engine.files.log, "rb") as f:
                st = os.fstat(f.fileno())
                start = mark.log_size if st.st_ino == mark.log_inode and st.st_size >= mark.log_size else 0  # else a new log
                f.seek(max(start, st.st_size - LOG_READ_MAX))
                text = f.read(LOG_READ_MAX).decode(errors="replace")
        except OSError:
            return []
        return list(dict.fromkeys(m.group("message").strip() for m in _ERROR_LINE.finditer(text)))

    def _lost(self, mark: Mark, failures: list[str], payload: Any) -> NoReturn:
        files = self._engine.files
        db = files.db
        detail = "; ".join(failures)[:500]
        self._engine.discard(mark.pid, f"a write it acknowledged was not stored ({detail})")
        self._on_lost(self)
        free = free_bytes(db.parent)
        if "disk is full" in detail or (free is not None and free < 2 * _payload_bytes(payload) + SPACE_MARGIN):
            cause = (
                f"The disk holding {db.parent} is full ({_size(free)} free): free some space, or move MILVUS_URI to a larger disk"
            )
        elif "readonly" in detail or cannot_write(db) is not None:
            cause = f"The file or its folder {db.parent} turned read-only: make both writable again, or use another MILVUS_URI"
        else:
            cause = f"See the engine log {files.log} ({_size(free)} free on the disk)"
        raise UserError(
            f"A write to the Milvus Lite file {db} was not stored ({detail}). {cause}. The engine was restarted, so "
            "that every process sees what the file holds; once fixed, run the same call again (an ingest goes on from "
            "where it stopped)"
        )


def _deleted_any(result: Any) -> bool:
    """pymilvus returns the deleted ids (Milvus Lite), or their count (servers)."""
    return bool(result.get("delete_count")) if isinstance(result, dict) else bool(result)


def _counter(db: Path) -> int | None:
    """The SQLite file's change counter, or None when it does not tell (no file, not SQLite, WAL mode)."""
    try:
        with open(db, "rb") as f:
            header = f.read(28)
    except OSError:
        return None
    if len(header) < 28 or not header.startswith(b"SQLite format 3\0") or header[18] == 2:
        return None
    return int.from_bytes(header[24:28], "big")


def cannot_write(db: Path) -> str | None:
    """Why a write to the Lite file cannot be stored now, or None. (A disk that fills during the write is found by
    the check after it.)"""
    folder = db.parent
    uid = os.getuid()
    if not os.access(folder, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
        elsewhere = "or copy the file to a writable folder and point MILVUS_URI there"
        if locks.read_only_fs(folder):
            why, fix = "its filesystem is mounted read-only", f"remount it read-write, {elsewhere}"
        elif not os.access(folder, os.W_OK):
            why, fix = f"its folder {folder} is read-only for user {uid}", f"make the folder and the file writable, {elsewhere}"
        else:
            why, fix = f"the file is read-only for user {uid}", f"make it writable, {elsewhere}"
        return (
            f"The Milvus Lite file {db} cannot be written ({why}): it can be searched, but ingest and delete cannot "
            f"change it. To write, {fix}"
        )
    free = free_bytes(folder)
    if free is not None and free < SPACE_MARGIN:
        return (
            f"The disk holding {folder} is full ({_size(free)} free): nothing was written to the Milvus Lite file {db}. "
            "Free some space, or move MILVUS_URI to a larger disk, then try again (an ingest goes on from where it "
            "stopped)"
        )
    return None


def free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _size(n: int | None) -> str:
    if n is None:
        return "unknown space"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def _payload_bytes(value: Any) -> int:
    """About how many bytes a write's arguments take when stored (a float vector as 4 bytes a number)."""
    if isinstance(value, str):
        return len(value.encode(errors="replace"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, dict):
        return sum(_payload_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], float):
            return 4 * len(value)
        return sum(_payload_bytes(v) for v in value)
    return 8


def _fault_text(exc: Any) -> str:
    """What the engine said of a failed write, without pymilvus's retry and channel details."""
    text = str(exc.message or exc)
    for marker in ("Unexpected error in RPC handling", "internal error"):
        if marker in text:
            return f"the engine failed: {marker}"
    return text[:300]
