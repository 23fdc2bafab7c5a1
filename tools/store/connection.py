"""Opening Milvus: a Lite file (its engine shared by every process of ours that opens it, see `lite_engine`), a
server or Zilliz Cloud; reconnecting.

Every call runs in a worker thread so the event loop stays free, and is retried after a lost connection (every call
the store makes is idempotent). On a Lite file a lost connection means the engine is gone: the retry finds the one
another process started, or starts one.

A write to a Lite file is checked before and after (`_LiteClient`): before, that the file, its folder and its disk
can take it (they may change while the server runs); after, that the engine stored it, since it acknowledges writes
its file refused. A write that was not stored is an error, never a count of chunks that a restart would not find.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import anyio

from tools.errors import UserError
from tools.redact import redact_url, redact_urls_in
from tools.store.lite_engine import (
    GRPC_OPTIONS,
    EngineStatus,
    LiteEngine,
    LogMark,
    file_error,
    read_only_fs,
    runtime_dir,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# pymilvus pings every 10 s, calls or none; gRPC servers (the Lite engine among them) allow a ping without data
# every 5 minutes, and after three too soon answer GOAWAY ENHANCE_YOUR_CALM ("too_many_pings"): about two minutes
# into any pause between calls (a long embedding, an idle server). Ping only during calls, every 5 minutes.
KEEPALIVE: dict[str, Any] = {
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 0,
}

# After a lost connection: wait, reconnect and retry, this many times (a restarted server takes a moment).
RECONNECT_PAUSES_S = (0.5, 1.0, 2.0)
# A lost Lite engine is found again, or restarted, in about 0.1 s (the retry waits for that itself).
LITE_RECONNECT_PAUSES_S = (0.02, 0.2, 1.0)
LITE_OPEN_ATTEMPTS = 3
# Sharing one engine needs Linux (/proc, OFD locks); elsewhere a Lite file is open in one process at a time.
SHARED_LITE = sys.platform.startswith("linux")
_LITE_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,33}\.db$")
# The longest path of a Lite file milvus-lite 2.5.1 opens, in bytes (SQLite's 512 with room for "-journal"; measured:
# 504 opens, 505 does not), and the longest name of a file or folder (NAME_MAX).
LITE_PATH_MAX = 504
NAME_MAX = 255
# A disk with less free than this is full: a write to a Lite file there is refused before the engine tries it.
SPACE_MARGIN = 1 << 20


class Connection:
    """One MilvusClient, opened on first use and reopened after a lost connection."""

    def __init__(self, uri: str, token: str | None = None, db_name: str | None = None) -> None:
        self.uri = uri
        self._token = token or ""
        self._db_name = db_name or ""
        self._client: Any = None
        self._guard: IO[str] | None = None
        self._engine: LiteEngine | None = None
        self._lock = threading.Lock()
        self.on_reconnect: Callable[[], None] = lambda: None  # the store forgets what it loaded

    @property
    def is_lite(self) -> bool:
        return not re.match(r"^[a-z]+://", self.uri)

    def where(self) -> str:
        """The file or server, as a person would name it in an error."""
        return str(Path(self.uri).resolve()) if self.is_lite else redact_url(self.uri)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(client, *args, **kwargs)` in a worker thread, reconnecting after a lost connection."""
        return await anyio.to_thread.run_sync(partial(self.call, fn, *args, **kwargs))

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from pymilvus import MilvusException

        shared = self.is_lite and SHARED_LITE
        for pause in (*(LITE_RECONNECT_PAUSES_S if shared else RECONNECT_PAUSES_S), None):
            try:
                client = self.client()
            except UserError as exc:  # a server that is still coming back: wait for it like a lost connection
                cause = exc.__cause__
                if shared or pause is None or not (isinstance(cause, MilvusException) and _connection_lost(cause)):
                    raise
                log.warning("Milvus at %s does not answer yet; trying again in %g s", self.where(), pause)
                time.sleep(pause)
                continue
            try:
                return fn(client, *args, **kwargs)
            except MilvusException as exc:
                if pause is None or not (_engine_lost(exc) if shared else _connection_lost(exc)):
                    raise UserError(f"Milvus at {self.where()} failed: {redact_urls_in(str(exc.message or exc))}") from exc
                if not shared:
                    log.warning("lost the connection to Milvus at %s; reconnecting in %g s", self.where(), pause)
                if self._reset(client) and shared:  # once per loss, though calls in flight at once all see it
                    log.warning("lost the Milvus Lite engine for %s (%s); finding or starting one", self.where(), exc.message)
                time.sleep(pause)
        raise AssertionError("unreachable")

    def client(self) -> Any:
        """The open client, opened now if need be."""
        with self._lock:
            if self._client is None:
                self._client = self._open()
            return self._client

    async def connect(self) -> None:
        """Open the connection now rather than on the first call."""
        await anyio.to_thread.run_sync(self.client)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):  # an engine already gone
                    self._client.close()
                self._client = None
            if self._guard is not None:
                self._guard.close()
                self._guard = None
            if self._engine is not None:
                self._engine.release()
                self._engine = None

    def engine_status(self) -> EngineStatus | None:
        """The shared Milvus Lite engine this connection uses (None on a server, or before the first call)."""
        with self._lock:
            engine = self._engine if self._client is not None else None
        return engine.status() if engine is not None else None

    def _reset(self, client: Any) -> bool:
        """Drop a broken client so the next call opens a new one; False if another call already did."""
        with self._lock:
            current = self._client is client
            if current:
                self._client = None
                self.on_reconnect()
        with contextlib.suppress(Exception):  # the connection is already broken; closing it may fail too
            client.close()
        return current

    def _open(self) -> Any:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import ConnectionConfigException, MilvusException

        _quiet_pymilvus()
        if self.is_lite:
            path = self._lite_path()
            try:
                if SHARED_LITE:
                    return self._open_shared(path)
                self._hold_lite_file(path)
            except OSError as exc:
                raise file_error(f"Cannot open the Milvus Lite file {path}", exc, "fix that, or use another MILVUS_URI") from exc
        try:
            return MilvusClient(uri=self.uri, token=self._token, db_name=self._db_name, grpc_options=KEEPALIVE)
        except ConnectionConfigException as exc:
            if self.is_lite:
                raise _in_use(self.where()) from exc
            raise UserError(f"Could not connect to Milvus at {self.where()}: {redact_urls_in(str(exc.message or exc))}") from exc
        except MilvusException as exc:
            raise UserError(f"Could not connect to Milvus at {self.where()}: {redact_urls_in(str(exc.message or exc))}") from exc

    def check_lite_name(self) -> Path:
        """The Lite file's path, if its name is one Milvus Lite accepts and its path one it can open."""
        path = Path(self.uri).resolve()
        if not _LITE_NAME.match(path.name):
            raise UserError(
                f"MILVUS_URI {self.uri!r}: a Milvus Lite file name ends in .db, is at most 36 characters, and "
                "uses only letters, digits, '.', '-' and '_' (for a server, use http://host:19530)"
            )
        size = len(os.fsencode(path))
        if size > LITE_PATH_MAX:
            raise UserError(
                f"MILVUS_URI {self.uri!r} is too long: Milvus Lite opens a file whose path is at most {LITE_PATH_MAX} "
                f"bytes (SQLite's limit), and {path} is {size}. Use a shorter path"
            )
        for name in path.parts:
            if len(os.fsencode(name)) > NAME_MAX:
                raise UserError(
                    f"MILVUS_URI {self.uri!r} is too long: the folder name {name[:40]}... is {len(os.fsencode(name))} "
                    f"bytes, and names of files and folders are at most {NAME_MAX}. Use a shorter path"
                )
        return path

    def _lite_path(self) -> Path:
        """The Lite file, checked; its folder made if need be."""
        path = self.check_lite_name()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            exists = path.exists()
        except OSError as exc:
            raise file_error(f"Cannot make the folder of the Milvus Lite file {path}", exc, "use another MILVUS_URI") from exc
        if not exists and not os.access(path.parent, os.W_OK):
            raise UserError(f"The Milvus Lite file {path} does not exist, and its folder cannot be written to make it")
        return path

    def _open_shared(self, path: Path) -> Any:
        """A client of the engine that serves the file, found or started (see lite_engine)."""
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        if self._engine is None:
            self._engine = LiteEngine.for_file(path)
            self._engine.acquire()
        for attempt in range(LITE_OPEN_ATTEMPTS):
            engine = self._engine.ensure()
            try:
                # dedicated: pymilvus would otherwise share one channel among this process's clients of the socket
                client = MilvusClient(uri=f"unix:{engine.socket}", grpc_options=GRPC_OPTIONS | KEEPALIVE, dedicated=True)
            except MilvusException as exc:  # the engine went away in between
                if attempt + 1 == LITE_OPEN_ATTEMPTS or not _engine_lost(exc):
                    raise UserError(
                        f"Could not connect to Milvus Lite at {path}: {redact_urls_in(str(exc.message or exc))}"
                    ) from exc
                continue
            if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                log.warning("the Milvus Lite file %s cannot be written: searches work, writes are refused", path)
            return _LiteClient(client, self)
        raise AssertionError("unreachable")

    def write_lite(self, client: _LiteClient, method: str, *args: Any, **kwargs: Any) -> Any:
        """`client.<method>(...)`, a write to the Lite file: refused when the file cannot take it; an error when the
        engine did not store it, after which the engine is restarted (its memory holds what its file does not)."""
        from pymilvus import MilvusException

        engine = self._engine
        assert engine is not None
        db = engine.files.db
        problem = _cannot_write(db)
        if problem is not None:
            raise UserError(problem)
        if method in _RETRIED_ONCE:  # pymilvus retries an engine's failure 75 times (about 4 minutes) otherwise
            kwargs = {"retry_times": 1, **kwargs}
        with engine.writing():  # so the log gained during the write is this write's
            mark = engine.log_mark()
            try:
                result = getattr(client.milvus, method)(*args, **kwargs)
            except MilvusException as exc:
                if _engine_lost(exc):
                    raise  # the engine is gone, and its memory with it: `call` finds or starts another and retries
                failures = engine.write_failures(mark)
                if not failures and not _engine_fault(exc):
                    raise  # the request itself was refused: nothing was written
                self._lost_write(client, mark, failures or [_fault_text(exc)], _payload_bytes((args, kwargs)))
            failures = engine.write_failures(mark)
            if failures:
                self._lost_write(client, mark, failures, _payload_bytes((args, kwargs)))
        return result

    def _lost_write(self, client: _LiteClient, mark: LogMark | None, failures: list[str], size: int) -> NoReturn:
        assert self._engine is not None
        db = self._engine.files.db
        detail = "; ".join(failures)[:500]
        self._engine.discard(mark, f"a write it acknowledged was not stored ({detail})")
        self._reset(client)
        free = _free_bytes(db.parent)
        if "disk is full" in detail or (free is not None and free < 2 * size + SPACE_MARGIN):
            cause = (
                f"The disk holding {db.parent} is full ({_size(free)} free): free some space, or move MILVUS_URI to a larger disk"
            )
        elif "readonly" in detail or _cannot_write(db) is not None:
            cause = f"The file or its folder {db.parent} turned read-only: make both writable again, or use another MILVUS_URI"
        else:
            cause = f"See the engine log {self._engine.files.log} ({_size(free)} free on the disk)"
        raise UserError(
            f"A write to the Milvus Lite file {db} was not stored ({detail}). {cause}. The engine was restarted, so "
            "that every process sees what the file holds; once fixed, run the same call again (an ingest goes on from "
            "where it stopped)"
        )

    def _hold_lite_file(self, path: Path) -> None:
        """Take this process's own lock on a Lite file before milvus-lite does (where the engine is not shared).

        milvus-lite 2.5.1 deletes its lock file when a failed open is cleaned up, after which a second open in
        the same process would start a second engine on the same file; this lock is never deleted.
        """
        if self._guard is not None:
            return
        guard = open(path.parent / f".{path.name}.owner", "a")  # noqa: SIM115 (held until close())
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            guard.close()
            raise _in_use(str(path)) from None
        self._guard = guard


def _in_use(where: str) -> UserError:
    return UserError(
        f"The Milvus Lite file {where} is already open in another process. Milvus Lite allows one process per "
        "file: stop the other one, use another MILVUS_URI file, or run a Milvus server and point every process at "
        "it (MILVUS_URI=http://127.0.0.1:19530)"
    )


def _connection_lost(exc: Any) -> bool:
    """pymilvus reports an unreachable server as code 2 ("Fail connecting to server")."""
    return exc.code == 2 or "Fail connecting" in (exc.message or "")


def _engine_lost(exc: Any) -> bool:
    """A Lite engine that went away mid-call: the channel broke, or nothing listens on the socket any more."""
    text = str(exc.message or "")
    # "closed channel": a call that shared the broken client with one that has already dropped it (see _reset)
    markers = ("UNAVAILABLE", "Socket closed", "Connection reset", "Stream removed", "closed channel")
    return _connection_lost(exc) or any(m in text for m in markers)


_WRITES = frozenset(
    {"insert", "upsert", "delete", "create_collection", "drop_collection", "rename_collection", "create_index", "drop_index"}
)
_RETRIED_ONCE = frozenset({"insert", "upsert", "delete", "create_collection", "drop_collection"})


class _LiteClient:
    """A client of a shared Lite engine: reads pass; writes go through `Connection.write_lite`."""

    def __init__(self, client: Any, connection: Connection) -> None:
        self.milvus = client
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        if name in _WRITES:
            return partial(self._connection.write_lite, self, name)
        return getattr(self.milvus, name)


def _cannot_write(db: Path) -> str | None:
    """Why a write to the Lite file cannot be stored now, or None. (A disk that fills during the write is found by
    the check after it.)"""
    folder = db.parent
    uid = os.getuid()
    if not os.access(folder, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
        elsewhere = "or copy the file to a writable folder and point MILVUS_URI there"
        if read_only_fs(folder):
            why, fix = "its filesystem is mounted read-only", f"remount it read-write, {elsewhere}"
        elif not os.access(folder, os.W_OK):
            why, fix = f"its folder {folder} is read-only for user {uid}", f"make the folder and the file writable, {elsewhere}"
        else:
            why, fix = f"the file is read-only for user {uid}", f"make it writable, {elsewhere}"
        return (
            f"The Milvus Lite file {db} cannot be written ({why}): it can be searched, but ingest and delete cannot "
            f"change it. To write, {fix}"
        )
    free = _free_bytes(folder)
    if free is not None and free < SPACE_MARGIN:
        return (
            f"The disk holding {folder} is full ({_size(free)} free): nothing was written to the Milvus Lite file {db}. "
            "Free some space, or move MILVUS_URI to a larger disk, then try again (an ingest goes on from where it "
            "stopped)"
        )
    return None


def _free_bytes(folder: Path) -> int | None:
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


def _engine_fault(exc: Any) -> bool:
    """A failure inside the engine while it handled a write (as opposed to a refused request): the write may be
    half applied in its memory ("Unexpected error in RPC handling": an exception, such as a full disk's)."""
    text = str(exc.message or "")
    return any(m in text for m in ("Unexpected error", "internal error", "UNKNOWN"))


def _quiet_pymilvus() -> None:
    # Milvus Lite has no MVCC timestamps; pymilvus warns about it on every query iterator.
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    # A refused create_collection is expected on servers without BM25 (the store falls back and says so) and is
    # reported by the store otherwise: no traceback from pymilvus for it.
    logging.getLogger("pymilvus.decorators").addFilter(_not_create_collection)
    # A lost Lite engine is handled (and logged, once) here: no tracebacks from pymilvus's own failed recovery.
    for name in ("pymilvus.decorators", "pymilvus.client.connection_manager"):
        logging.getLogger(name).addFilter(_not_lite_engine_loss)


def _not_create_collection(record: logging.LogRecord) -> bool:
    return "[create_collection]" not in record.getMessage()


def _not_lite_engine_loss(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return f"unix:{runtime_dir()}/" not in f"{record.getMessage()} {error}"
