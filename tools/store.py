"""The only module that talks to Milvus: schema, upsert, search, delete.

Every call runs in a worker thread so the event loop stays free. A collection records the
embedder that built it (name and dimension) in its description, so a search with another
embedder fails clearly instead of returning garbage.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Callable, Literal, TypeVar

import anyio

from tools.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 1
# After a lost connection: wait, reconnect and retry, this many times (a restarted server takes a moment).
RECONNECT_PAUSES_S = (0.5, 1.0, 2.0)
TEXT_MAX = 65535
SOURCE_MAX = 4096
VECTOR_FIELDS = ("vector", "heading_vector")
OUTPUT_FIELDS = ["source", "title", "headings", "text", "chunk_index", "content_hash"]
QUERY_WINDOW = 16384  # the most rows one Milvus query returns
Consistency = Literal["Strong", "Session", "Bounded", "Eventually"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_LITE_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,33}\.db$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built with."""

    name: str
    embedder: str
    dim: int
    hybrid: bool  # has the BM25 field
    heading_vectors: bool  # has a vector of each chunk's section heading
    headings_object: bool = False  # headings kept as {"path": [...]}: Milvus < 2.4 JSON fields take objects only


@dataclass(frozen=True)
class Hit:
    """One search result as Milvus returns it."""

    chunk_id: str
    score: float
    fields: dict[str, Any]


def quote(value: str) -> str:
    """A Milvus expression string literal; refuses characters Milvus cannot escape."""
    if _CONTROL.search(value):
        raise UserError("Filter values may not contain control characters (newlines, tabs, NUL)")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def glob_to_like(pattern: str) -> tuple[str, bool]:
    """A `like` pattern matching a superset of the glob, and whether it is exact.

    `*` becomes `%` and `?` becomes `_`. Milvus `like` cannot escape `%` or `_`, and has no
    character classes, so those make the pattern inexact: results are then checked with
    fnmatch in Python.
    """
    exact = not any(c in pattern for c in "%_[]")
    like = re.sub(r"\[[^\]]*\]", "_", pattern).replace("*", "%").replace("?", "_")
    return like, exact


def check_collection_name(name: str) -> str:
    """Collection names: letters, digits and underscores, starting with a letter or underscore."""
    if not _NAME.match(name):
        raise UserError(
            f"Invalid collection name {name!r}: use letters, digits and underscores, starting with a letter or underscore"
        )
    return name


class Store:
    """A Milvus connection (Lite file, server or Zilliz Cloud), opened on first use."""

    def __init__(
        self, uri: str, token: str | None = None, db_name: str | None = None, consistency: Consistency = "Session"
    ) -> None:
        self.uri = uri
        # Reads use this level. Session sees this process's own writes at once; Strong also waits for every other
        # writer's (about 200 ms per read on Milvus 2.3); Milvus Lite ignores it.
        self.consistency = consistency
        self._token = token or ""
        self._db_name = db_name or ""
        self._client: Any = None
        self._guard: IO[str] | None = None
        self._lock = threading.Lock()
        self._loaded: set[str] = set()
        self._info: dict[str, CollectionInfo] = {}

    @property
    def is_lite(self) -> bool:
        return not re.match(r"^[a-z]+://", self.uri)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(self._call, fn, *args, **kwargs))

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(client, ...)`; after a lost connection, reconnect and try again (every call is idempotent)."""
        from pymilvus import MilvusException

        for pause in (*RECONNECT_PAUSES_S, None):
            client = self._connected()
            try:
                return fn(client, *args, **kwargs)
            except MilvusException as exc:
                if pause is None or not _connection_lost(exc):
                    raise UserError(f"Milvus at {self._where()} failed: {exc.message or exc}") from exc
                log.warning("lost the connection to Milvus at %s; reconnecting in %g s", self._where(), pause)
                self._reset(client)
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _reset(self, client: Any) -> None:
        """Drop a broken client so the next call opens a new one."""
        with self._lock:
            if self._client is client:
                self._client = None
                self._loaded.clear()
        try:
            client.close()
        except Exception:  # the connection is already broken; closing it may fail too
            pass

    def _where(self) -> str:
        return str(Path(self.uri).resolve()) if self.is_lite else self.uri

    def _connected(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._open()
            return self._client

    def _open(self) -> Any:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import ConnectionConfigException, MilvusException

        # Milvus Lite has no MVCC timestamps; pymilvus warns about it on every query iterator.
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        # A refused create_collection is expected on servers without BM25 (ensure() falls back and says so) and is
        # reported by ensure() otherwise: no traceback from pymilvus for it.
        logging.getLogger("pymilvus.decorators").addFilter(_not_create_collection)

        if self.is_lite:
            path = Path(self.uri).resolve()
            if not _LITE_NAME.match(path.name):
                raise UserError(
                    f"MILVUS_URI {self.uri!r}: a Milvus Lite file name ends in .db, is at most 36 characters, and "
                    "uses only letters, digits, '.', '-' and '_' (for a server, use http://host:19530)"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            self._hold_lite_file(path)
        try:
            return MilvusClient(uri=self.uri, token=self._token, db_name=self._db_name)
        except ConnectionConfigException as exc:
            if self.is_lite:
                raise UserError(
                    f"The Milvus Lite file {self._where()} is already open in another process. Milvus Lite allows "
                    "one process per file: stop the other one, use another MILVUS_URI file, or run a Milvus server "
                    "and point every process at it (MILVUS_URI=http://127.0.0.1:19530)"
                ) from exc
            raise UserError(f"Could not connect to Milvus at {self.uri}: {exc.message or exc}") from exc
        except MilvusException as exc:
            raise UserError(f"Could not connect to Milvus at {self._where()}: {exc.message or exc}") from exc

    def _hold_lite_file(self, path: Path) -> None:
        """Take this process's own lock on a Lite file before milvus-lite does.

        milvus-lite 2.5.1 deletes its lock file when a failed open is cleaned up, after which a second open in
        the same process would start a second engine on the same file; this lock is never deleted.
        """
        if self._guard is not None:
            return
        guard = open(path.parent / f".{path.name}.owner", "a")
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            guard.close()
            raise UserError(
                f"The Milvus Lite file {path} is already open in another process. Milvus Lite allows one process "
                "per file: stop the other one, use another MILVUS_URI file, or run a Milvus server and point every "
                "process at it (MILVUS_URI=http://127.0.0.1:19530)"
            ) from None
        self._guard = guard

    async def connect(self) -> None:
        """Open the connection now rather than on the first call."""
        await anyio.to_thread.run_sync(self._connected)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._guard is not None:
                self._guard.close()
                self._guard = None

    # collections

    async def info(self, name: str) -> CollectionInfo | None:
        """The collection's embedder and capabilities, or None when it does not exist."""
        if name in self._info:
            return self._info[name]
        return await self._run(self._describe, check_collection_name(name))

    def _describe(self, client: Any, name: str) -> CollectionInfo | None:
        if not client.has_collection(name):
            return None
        desc = client.describe_collection(name)
        try:
            meta = json.loads(desc.get("description") or "{}")
        except json.JSONDecodeError:
            meta = {}
        if "embedder" not in meta:
            raise UserError(f"Collection {name!r} was not made by this server (it has no embedder record)")
        fields = {f["name"] for f in desc.get("fields", [])}
        info = CollectionInfo(
            name, meta["embedder"], int(meta["dim"]), "sparse" in fields, "heading_vector" in fields,
            meta.get("headings") == "object",
        )
        self._ensure_loaded(client, name)
        self._info[name] = info
        return info

    def _ensure_loaded(self, client: Any, name: str) -> None:
        if name not in self._loaded:
            client.load_collection(name)
            self._loaded.add(name)

    async def ensure(self, name: str, embedder: str, dim: int) -> CollectionInfo:
        """The collection, created on first use; refuses one built by another embedder."""
        info = await self.info(name)
        if info is None:
            info = await self._run(self._create, name, embedder, dim)
        check_embedder(info, embedder, dim)
        return info

    def _create(self, client: Any, name: str, embedder: str, dim: int) -> CollectionInfo:
        """A collection with BM25 and heading vectors; dense-only where the server lacks them (Milvus < 2.5)."""
        from pymilvus import MilvusException

        try:
            self._create_schema(client, name, embedder, dim, full=True)
            full = True
        except MilvusException as exc:
            if client.has_collection(name):
                if "sparse" in client.list_indexes(name):
                    raise
                client.drop_collection(name)  # made before its BM25 index failed (Milvus < 2.5)
            log.warning(
                "Milvus at %s cannot make collection %s with BM25 and a second vector field (%s); making it "
                "dense-only: hybrid and bm25 searches will fall back to dense", self._where(), name, exc.message,
            )
            self._create_schema(client, name, embedder, dim, full=False)
            full = False
        log.info("created collection %s (%s, dim %d%s)", name, embedder, dim, "" if full else ", dense only")
        self._ensure_loaded(client, name)
        info = CollectionInfo(name, embedder, dim, full, full, headings_object=not full)
        self._info[name] = info
        return info

    def _create_schema(self, client: Any, name: str, embedder: str, dim: int, full: bool) -> None:
        from pymilvus import DataType, Function, FunctionType

        meta = {"embedder": embedder, "dim": dim, "schema": SCHEMA_VERSION} | ({} if full else {"headings": "object"})
        schema = client.create_schema(auto_id=False, description=json.dumps(meta))
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        analyzer = {"enable_analyzer": True, "analyzer_params": {"type": "english"}} if full else {}
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, **analyzer)
        schema.add_field("source", DataType.VARCHAR, max_length=SOURCE_MAX)
        schema.add_field("title", DataType.VARCHAR, max_length=1024)
        schema.add_field("headings", DataType.JSON)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=64)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        if full:
            schema.add_field("heading_vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                         output_field_names=["sparse"])
            )
            index.add_index("heading_vector", index_type="AUTOINDEX", metric_type="COSINE")
            index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    # rows

    async def existing(self, name: str, sources: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The id, content hash and index of every stored chunk of these sources."""
        if not sources:
            return {}
        expr = "source in [" + ", ".join(quote(s) for s in sources) + "]"
        rows = await self._run(self._query_all, name, expr, ["id", "source", "content_hash", "chunk_index"])
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault(row["source"], []).append(row)
        return found

    def _query_all(self, client: Any, name: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every matching row: one query when they fit in Milvus's result window, else an iterator (slower)."""
        level = self.consistency
        rows = client.query(name, filter=expr, output_fields=fields, limit=QUERY_WINDOW, consistency_level=level)
        if len(rows) < QUERY_WINDOW:
            return rows
        iterator = client.query_iterator(name, batch_size=1000, filter=expr, output_fields=fields, consistency_level=level)
        rows: list[dict[str, Any]] = []
        try:
            while batch := iterator.next():
                rows.extend(batch)
        finally:
            iterator.close()
        return rows

    async def collections(self) -> list[str]:
        return sorted(await self._run(lambda client: client.list_collections()))

    async def sources(self, name: str, prefix: str = "") -> dict[str, int]:
        """Chunk counts per source, for every source inside a folder ("" for all)."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        # `like` treats `%` and `_` as wildcards and cannot escape them: a superset, checked below.
        expr = f"source like {quote(base + '%')}" if base else ""
        rows = await self._run(self._query_all, name, expr, ["source"])
        counts: dict[str, int] = {}
        for row in rows:
            if row["source"].startswith(base):
                counts[row["source"]] = counts.get(row["source"], 0) + 1
        return counts

    async def delete_sources(self, name: str, sources: list[str]) -> None:
        """Remove every chunk of these sources."""
        for at in range(0, len(sources), 100):
            expr = "source in [" + ", ".join(quote(s) for s in sources[at : at + 100]) + "]"
            await self._run(lambda client, expr=expr: client.delete(name, filter=expr))

    async def fetch(self, name: str, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """Stored rows by chunk id, with the fields asked for."""
        if not ids:
            return {}
        rows = await self._run(
            lambda client: client.get(name, ids=ids, output_fields=["id", *fields], consistency_level=self.consistency)
        )
        return {r["id"]: _unwrap(r) for r in rows}

    async def upsert(self, name: str, rows: list[dict[str, Any]]) -> None:
        info = self._info.get(name)
        if info is not None and info.headings_object:
            rows = [{**row, "headings": {"path": row["headings"]}} for row in rows]
        if rows:
            await self._run(lambda client: client.upsert(name, rows))

    async def delete_ids(self, name: str, ids: list[str]) -> None:
        if ids:
            expr = "id in [" + ", ".join(quote(i) for i in ids) + "]"
            await self._run(lambda client: client.delete(name, filter=expr))

    async def flush(self, name: str) -> None:
        """Seal new rows so searches use the index (Milvus Lite scans unflushed rows slowly)."""
        await self._run(lambda client: client.flush(name))

    async def count(self, name: str) -> int:
        rows = await self._run(
            lambda client: client.query(name, filter="", output_fields=["count(*)"], consistency_level=self.consistency)
        )
        return int(rows[0]["count(*)"])

    # search

    async def search_vector(
        self, name: str, vector: list[float], limit: int, source_glob: str | None = None, field: str = "vector",
        output_fields: list[str] = OUTPUT_FIELDS, ids: list[str] | None = None,
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity of `field`, optionally only from sources matching a glob
        or only among the chunks `ids`."""
        return await self._search(name, vector, field, "COSINE", limit, source_glob, output_fields, ids)

    async def search_bm25(
        self, name: str, text: str, limit: int, source_glob: str | None = None, output_fields: list[str] = OUTPUT_FIELDS
    ) -> list[Hit]:
        """Chunks ranked by Milvus's built-in BM25 over the chunk text."""
        return await self._search(name, text, "sparse", "BM25", limit, source_glob, output_fields)

    async def _search(
        self, name: str, data: Any, field: str, metric: str, limit: int, source_glob: str | None,
        output_fields: list[str], ids: list[str] | None = None,
    ) -> list[Hit]:
        expr, exact = "", True
        if source_glob:
            like, exact = glob_to_like(source_glob)
            expr = f"source like {quote(like)}"
            output_fields = list({*output_fields, "source"})
        if ids is not None:
            expr = "id in [" + ", ".join(quote(i) for i in ids) + "]"
        fetch = limit if exact else limit * 4
        result = await self._run(
            _search_or_empty, name, [data], anns_field=field, limit=fetch, filter=expr, output_fields=output_fields,
            search_params={"metric_type": metric}, consistency_level=self.consistency,
        )
        hits = [Hit(str(h["id"]), float(h["distance"]), _unwrap(h["entity"])) for h in result[0]]
        if not exact:
            hits = [h for h in hits if fnmatch.fnmatchcase(h.fields["source"], source_glob or "*")]
        return hits[:limit]

def _search_or_empty(client: Any, name: str, data: list[Any], **kwargs: Any) -> Any:
    """client.search, except that BM25 over a collection that never held a row finds nothing
    (Milvus Lite 2.5.1 fails there with "Invalid sparse row: NaN or Inf value")."""
    from pymilvus import MilvusException

    try:
        return client.search(name, data, **kwargs)
    except MilvusException as exc:
        if "Invalid sparse row" in (exc.message or ""):
            return [[]]
        raise


def _unwrap(fields: dict[str, Any]) -> dict[str, Any]:
    """Headings as a list, however the collection keeps them."""
    if isinstance(fields.get("headings"), dict):
        fields["headings"] = fields["headings"].get("path", [])
    return fields


def _connection_lost(exc: Any) -> bool:
    """pymilvus reports an unreachable server as code 2 ("Fail connecting to server")."""
    return exc.code == 2 or "Fail connecting" in (exc.message or "")


def check_embedder(info: CollectionInfo, embedder: str, dim: int) -> None:
    """Refuse to mix vectors from different embedders in one collection."""
    if info.embedder != embedder or (dim and info.dim != dim):
        raise UserError(
            f"Collection {info.name!r} was built with embedder {info.embedder} ({info.dim} dims), but this server "
            f"uses {embedder} ({dim or 'unknown'} dims). Use the same EMBEDDING_PROVIDER/EMBEDDING_MODEL, or another "
            "collection (MILVUS_COLLECTION or the `collection` argument)"
        )


def _not_create_collection(record: logging.LogRecord) -> bool:
    return "[create_collection]" not in record.getMessage()
