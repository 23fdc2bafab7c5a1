"""Opening Milvus: a Lite file (its engine shared by every process of ours that opens it, see `lite_engine`), a
server or Zilliz Cloud; reconnecting.

Every call runs in a worker thread so the event loop stays free, and is retried after a lost connection (every call
the store makes is idempotent). On a Lite file a lost connection means the engine is gone: the retry finds the one
another process started, or starts one.

A write to a Lite file is checked before and after (`lite_writes`): a write that was not stored is an error, never
a count of chunks that a restart would not find.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio

from tools.errors import UserError
from tools.redact import redact_url, redact_urls_in
from tools.store.client import MilvusClientLike, connection_lost, engine_lost
from tools.store.lite_engine import GRPC_OPTIONS, EngineStatus, LiteEngine
from tools.store.lite_writes import CheckedClient
from tools.store.locks import file_error, runtime_dir

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
_LITE_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,33}\.db$")
# The longest path of a Lite file milvus-lite 2.5.1 opens, in bytes (SQLite's 512 with room for "-journal"; measured:
# 504 opens, 505 does not), and the longest name of a file or folder (NAME_MAX).
LITE_PATH_MAX = 504
NAME_MAX = 255


class Connection:
    """One MilvusClient, opened on first use and reopened after a lost connection."""

    def __init__(self, uri: str, token: str | None = None, db_name: str | None = None) -> None:
        self.uri = uri
        self._token = token or ""
        self._db_name = db_name or ""
        self._client: MilvusClientLike | None = None
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

        shared = self.is_lite
        for pause in (*(LITE_RECONNECT_PAUSES_S if shared else RECONNECT_PAUSES_S), None):
            try:
                client = self.client()
            except UserError as exc:  # a server that is still coming back: wait for it like a lost connection
                cause = exc.__cause__
                if shared or pause is None or not (isinstance(cause, MilvusException) and connection_lost(cause)):
                    raise
                log.warning("Milvus at %s does not answer yet; trying again in %g s", self.where(), pause)
                time.sleep(pause)
                continue
            try:
                return fn(client, *args, **kwargs)
            except MilvusException as exc:
                if pause is None or not (engine_lost(exc) if shared else connection_lost(exc)):
                    raise UserError(f"Milvus at {self.where()} failed: {redact_urls_in(str(exc.message or exc))}") from exc
                if not shared:
                    log.warning("lost the connection to Milvus at %s; reconnecting in %g s", self.where(), pause)
                if self._reset(client) and shared:  # once per loss, though calls in flight at once all see it
                    log.warning("lost the Milvus Lite engine for %s (%s); finding or starting one", self.where(), exc.message)
                time.sleep(pause)
        raise AssertionError("unreachable")

    def client(self) -> MilvusClientLike:
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
            if self._engine is not None:
                self._engine.release()
                self._engine = None

    def engine_status(self) -> EngineStatus | None:
        """The shared Milvus Lite engine this connection uses (None on a server, or before the first call)."""
        with self._lock:
            engine = self._engine if self._client is not None else None
        return engine.status() if engine is not None else None

    def _reset(self, client: MilvusClientLike) -> bool:
        """Drop a broken client so the next call opens a new one; False if another call already did."""
        with self._lock:
            current = self._client is client
            if current:
                self._client = None
                self.on_reconnect()
        with contextlib.suppress(Exception):  # the connection is already broken; closing it may fail too
            client.close()
        return current

    def _open(self) -> MilvusClientLike:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        _quiet_pymilvus()
        if self.is_lite:
            path = self._lite_path()
            try:
                return self._open_shared(path)
            except OSError as exc:
                raise file_error(f"Cannot open the Milvus Lite file {path}", exc, "fix that, or use another MILVUS_URI") from exc
        try:
            client: MilvusClientLike = MilvusClient(
                uri=self.uri, token=self._token, db_name=self._db_name, grpc_options=KEEPALIVE
            )
        except MilvusException as exc:
            raise UserError(f"Could not connect to Milvus at {self.where()}: {redact_urls_in(str(exc.message or exc))}") from exc
        return client

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

    def _open_shared(self, path: Path) -> MilvusClientLike:
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
                if attempt + 1 == LITE_OPEN_ATTEMPTS or not engine_lost(exc):
                    raise UserError(
                        f"Could not connect to Milvus Lite at {path}: {redact_urls_in(str(exc.message or exc))}"
                    ) from exc
                continue
            if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                log.warning("the Milvus Lite file %s cannot be written: searches work, writes are refused", path)
            return CheckedClient(client, self._engine, self._reset)
        raise AssertionError("unreachable")


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
