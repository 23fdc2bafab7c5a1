"""Opening Milvus: a Lite file (its engine shared by every process of ours that opens it, see `lite_engine`), a
server or Zilliz Cloud; reconnecting.

Every call runs in a worker thread so the event loop stays free, and is retried after a lost connection (every call
the store makes is idempotent). On a Lite file a lost connection means the engine is gone: the retry finds the one
another process started, or starts one.
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
from typing import IO, Any, TypeVar

import anyio

from tools.errors import UserError
from tools.redact import redact_url, redact_urls_in
from tools.store.lite_engine import GRPC_OPTIONS, EngineStatus, LiteEngine, runtime_dir

log = logging.getLogger(__name__)
T = TypeVar("T")

# After a lost connection: wait, reconnect and retry, this many times (a restarted server takes a moment).
RECONNECT_PAUSES_S = (0.5, 1.0, 2.0)
# A lost Lite engine is found again, or restarted, in about 0.1 s (the retry waits for that itself).
LITE_RECONNECT_PAUSES_S = (0.02, 0.2, 1.0)
LITE_OPEN_ATTEMPTS = 3
# Sharing one engine needs Linux (/proc, OFD locks); elsewhere a Lite file is open in one process at a time.
SHARED_LITE = sys.platform.startswith("linux")
_LITE_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,33}\.db$")


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
            client = self.client()
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
            if SHARED_LITE:
                return self._open_shared(path)
            self._hold_lite_file(path)
        try:
            return MilvusClient(uri=self.uri, token=self._token, db_name=self._db_name)
        except ConnectionConfigException as exc:
            if self.is_lite:
                raise _in_use(self.where()) from exc
            raise UserError(f"Could not connect to Milvus at {self.where()}: {redact_urls_in(str(exc.message or exc))}") from exc
        except MilvusException as exc:
            raise UserError(f"Could not connect to Milvus at {self.where()}: {redact_urls_in(str(exc.message or exc))}") from exc

    def check_lite_name(self) -> Path:
        """The Lite file's path, if its name is one Milvus Lite accepts."""
        path = Path(self.uri).resolve()
        if not _LITE_NAME.match(path.name):
            raise UserError(
                f"MILVUS_URI {self.uri!r}: a Milvus Lite file name ends in .db, is at most 36 characters, and "
                "uses only letters, digits, '.', '-' and '_' (for a server, use http://host:19530)"
            )
        return path

    def _lite_path(self) -> Path:
        """The Lite file, checked; its folder made if need be."""
        path = self.check_lite_name()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"Cannot make the folder of the Milvus Lite file {path}: {exc}") from exc
        if not path.exists() and not os.access(path.parent, os.W_OK):
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
                client = MilvusClient(uri=f"unix:{engine.socket}", grpc_options=GRPC_OPTIONS, dedicated=True)
            except MilvusException as exc:  # the engine went away in between
                if attempt + 1 == LITE_OPEN_ATTEMPTS or not _engine_lost(exc):
                    raise UserError(
                        f"Could not connect to Milvus Lite at {path}: {redact_urls_in(str(exc.message or exc))}"
                    ) from exc
                continue
            if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
                return client
            log.warning("the Milvus Lite file %s cannot be written: searches work, writes are refused", path)
            return _ReadOnlyClient(client, str(path))
        raise AssertionError("unreachable")

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


class _ReadOnlyClient:
    """A client of a Lite file that cannot be written: reads pass; writes are refused, since the engine would
    acknowledge them and lose them ("attempt to write a readonly database" in its log)."""

    WRITES = frozenset(
        {"insert", "upsert", "delete", "create_collection", "drop_collection", "rename_collection", "create_index", "drop_index"}
    )

    def __init__(self, client: Any, where: str) -> None:
        self._client = client
        self._where = where

    def __getattr__(self, name: str) -> Any:
        if name in self.WRITES:
            raise UserError(
                f"The Milvus Lite file {self._where} cannot be written (the file or its folder is read-only): it can be "
                "searched, but ingest and delete cannot change it"
            )
        return getattr(self._client, name)


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
