"""The store: collections, writes, searches and listings over one Milvus connection.

A collection records the embedder that built it (name and dimension), so a search with another embedder
fails clearly instead of returning garbage.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tools import language
from tools.checks import collection_name as check_collection_name
from tools.errors import UserError
from tools.store import filters
from tools.store.client import MilvusClientLike
from tools.store.connection import Connection
from tools.store.schema import (
    DEFAULT_INDEX,
    LITE_INDEX_TYPES,
    SPARSE_SEARCH,
    ChunkRef,
    ChunkRow,
    CollectionInfo,
    DenseIndex,
    DocKey,
    create_schema,
    from_entity,
    read_info,
    to_entity,
)

log = logging.getLogger(__name__)

QUERY_WINDOW = 16384  # the most rows one Milvus query returns
ITERATOR_BATCH = 10000  # rows a query iterator fetches a call, past one window (1,000: 2.4 s to count 100k rows on Lite)
LANGUAGE_SAMPLE = 2000  # chunks read to tell a collection's languages
DELETE_BATCH = 100  # sources per delete expression
Consistency = Literal["Strong", "Session", "Bounded", "Eventually"]


@dataclass(frozen=True)
class Hit:
    """One search result: the chunk id, its score, and the stored row when it was asked for."""

    chunk_id: str
    score: float
    row: ChunkRow | None = None


class Store:
    """Chunks in Milvus (a Lite file, a server or Zilliz Cloud), opened on first use."""

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        db_name: str | None = None,
        consistency: Consistency = "Session",
        dense_index: DenseIndex = DEFAULT_INDEX,
    ) -> None:
        self.connection = Connection(uri, token, db_name)
        # New collections get this index; searches use its knobs (ef, nprobe) on the index each collection records.
        self.dense_index = dense_index
        self.connection.on_reconnect = self._forget_loaded
        # Reads use this level. Session sees this process's own writes at once; Strong also waits for every other
        # writer's (about 200 ms per read on Milvus 2.3); Milvus Lite ignores it.
        self.consistency = consistency
        self._loaded: set[str] = set()
        self._info: dict[str, CollectionInfo] = {}

    async def connect(self) -> None:
        """Open the connection now rather than on the first call; a Lite file that does not exist yet is left for
        the first write to make."""
        if not self._missing_file():
            await self.connection.connect()

    def close(self) -> None:
        self.connection.close()

    def _forget_loaded(self) -> None:
        self._loaded.clear()

    # collections

    async def info(self, name: str) -> CollectionInfo | None:
        """The collection's embedder and capabilities, or None when it does not exist."""
        if name in self._info:
            return self._info[name]
        check_collection_name(name)
        if self._missing_file():
            return None
        return await self.connection.run(self._describe, name)

    async def _known(self, name: str) -> CollectionInfo:
        """The info of a collection that must exist (read once, then remembered)."""
        info = self._info.get(name) or await self.info(name)
        if info is None:
            raise UserError(f"Collection {name!r} does not exist in {self.connection.where()}")
        return info

    def _describe(self, client: MilvusClientLike, name: str) -> CollectionInfo | None:
        if not client.has_collection(name):
            return None
        info = read_info(name, client.describe_collection(name), self.dense_index)
        self._ensure_loaded(client, name)
        self._info[name] = info
        return info

    def _ensure_loaded(self, client: MilvusClientLike, name: str) -> None:
        if name not in self._loaded:
            client.load_collection(name)
            self._loaded.add(name)

    async def ensure(self, name: str, embedder: str, dim: int) -> CollectionInfo:
        """The collection, created on first use; refuses one built by another embedder."""
        info = await self.info(name)
        if info is None:
            info = await self.connection.run(self._create, name, embedder, dim)
        info.check_embedder(embedder, dim)
        return info

    def _create(self, client: MilvusClientLike, name: str, embedder: str, dim: int) -> CollectionInfo:
        """A collection with BM25 and heading vectors; dense-only where the server lacks them (Milvus < 2.5).
        An index the backend does not build is one error naming DENSE_INDEX, and leaves no collection behind."""
        from pymilvus import MilvusException

        dense = self.dense_index
        if self.connection.is_lite and dense.type not in LITE_INDEX_TYPES:
            raise UserError(self._index_refused(f"Milvus Lite builds only {', '.join(LITE_INDEX_TYPES)}"))
        try:
            schema, index, fields = create_schema(client, embedder, dim, full=True, dense=dense)
            _make_collection(client, name, schema, index)
            full = True
        except MilvusException as exc:
            if client.has_collection(name):
                if "sparse" in client.list_indexes(name):
                    raise
                client.drop_collection(name)  # made before an index failed
            try:
                schema, index, fields = create_schema(client, embedder, dim, full=False, dense=dense)
                _make_collection(client, name, schema, index)
            except MilvusException as dense_exc:  # not BM25 then: the dense index itself is refused
                if client.has_collection(name):
                    client.drop_collection(name)
                raise UserError(self._index_refused(f"it said: {dense_exc.message}")) from None
            log.warning(
                "Milvus at %s cannot make collection %s with BM25 and a second vector field (%s); made it "
                "dense-only: hybrid and bm25 searches will fall back to dense",
                self.connection.where(),
                name,
                exc.message,
            )
            full = False
        log.info(
            "created collection %s (%s, dim %d, %s%s)", name, embedder, dim, dense.describe(), "" if full else ", dense only"
        )
        self._ensure_loaded(client, name)
        info = CollectionInfo(name, embedder, dim, fields, hybrid=full, headings_object=not full, index=dense)
        self._info[name] = info
        return info

    def _index_refused(self, why: str) -> str:
        return (
            f"Milvus at {self.connection.where()} cannot build a {self.dense_index.type} index (DENSE_INDEX): {why}. "
            f"Set DENSE_INDEX to one it builds (Milvus Lite: {', '.join(LITE_INDEX_TYPES)}; servers also HNSW), "
            "or check its parameters"
        )

    async def collections(self) -> list[str]:
        if self._missing_file():
            return []
        return sorted(await self.connection.run(lambda client: client.list_collections()))

    async def drop(self, name: str) -> None:
        """Delete a collection and everything in it."""
        await self.connection.run(lambda client: client.drop_collection(name))
        self._info.pop(name, None)
        self._loaded.discard(name)

    def _missing_file(self) -> bool:
        """A Lite file that does not exist holds nothing; reads say so without creating it (or its folders)."""
        if not self.connection.is_lite:
            return False
        try:
            return not self.connection.check_lite_name().exists()
        except OSError:  # a folder on the way that cannot be entered: opening the file will say so
            return False

    # rows

    async def existing(self, name: str, sources: list[str]) -> dict[str, list[ChunkRef]]:
        """The id, content hash and index of every stored chunk of these sources."""
        if not sources:
            return {}
        known = (await self._known(name)).fields
        fields = [f.name for f in dataclasses.fields(ChunkRef) if f.name in known]
        rows = await self.connection.run(self._query_all, name, filters.is_in("source", sources), fields)
        found: dict[str, list[ChunkRef]] = {}
        for row in rows:
            found.setdefault(row["source"], []).append(ChunkRef(**{f: row[f] for f in fields}))
        return found

    def _query_all(self, client: MilvusClientLike, name: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every matching row: one query when they fit in Milvus's result window, else an iterator (slower)."""
        return [row for batch in self._batches(client, name, expr, fields) for row in batch]

    def _batches(self, client: MilvusClientLike, name: str, expr: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """The matching rows, a result window at a time, so a caller that only counts never holds them all."""
        level = self.consistency
        rows: list[dict[str, Any]] = client.query(
            name, filter=expr, output_fields=fields, limit=QUERY_WINDOW, consistency_level=level
        )
        if len(rows) < QUERY_WINDOW:
            yield rows
            return
        del rows
        iterator = client.query_iterator(
            name, batch_size=ITERATOR_BATCH, filter=expr, output_fields=fields, consistency_level=level
        )
        try:
            while batch := iterator.next():
                yield batch
        finally:
            iterator.close()

    async def sources(self, name: str, prefix: str = "", root: str | None = None) -> dict[DocKey, int]:
        """Chunk counts per document (root, source), for every source inside a folder ("" for all), under one
        root or all."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        has_root = "root" in (await self._known(name)).fields
        terms = [filters.like("source", f"/{base}**")] if base else []  # never "": `base` ends in /
        if root is not None and has_root:
            terms.append(f"root == {filters.quote(root)}")
        fields = ["source", "root"] if has_root else ["source"]

        def count(client: MilvusClientLike) -> dict[DocKey, int]:
            counts: dict[DocKey, int] = {}
            for batch in self._batches(client, name, " and ".join(terms), fields):
                for row in batch:
                    if row["source"].startswith(base):  # `like` may match a superset (see filters)
                        key = (row.get("root") or "", row["source"])
                        counts[key] = counts.get(key, 0) + 1
            return counts

        return await self.connection.run(count)

    async def matching(self, name: str, where: filters.Filter) -> dict[DocKey, int]:
        """Chunk counts per document (root, source) of the chunks passing `where`."""
        has_root = "root" in (await self._known(name)).fields
        fields = sorted({"source", *(["root"] if has_root else []), *where.fields})
        rows = await self.connection.run(self._query_narrowed, name, where.expr, where.exact_expr, fields)
        counts: dict[DocKey, int] = {}
        for row in rows:
            if where.matches(row):
                key = (row.get("root") or "", row["source"])
                counts[key] = counts.get(key, 0) + 1
        return counts

    async def any_match(self, name: str, part: filters.Part) -> bool:
        """Whether any chunk passes one filter part (for saying which part of a filter matched nothing)."""
        fields = list(part.fields) or ["id"]
        exact = "" if part.check is not None else part.expr
        rows = await self.connection.run(self._query_window, name, part.expr, exact, fields)
        return any(part.check is None or part.check(row) for row in rows)

    def _query_window(
        self, client: MilvusClientLike, name: str, expr: str, exact: str, fields: list[str]
    ) -> list[dict[str, Any]]:
        limit = 1 if not fields or fields == ["id"] else QUERY_WINDOW

        def query(expr: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = client.query(
                name, filter=expr, output_fields=fields, limit=limit, consistency_level=self.consistency
            )
            return rows

        return _narrowed(query, expr, exact)

    def _query_narrowed(
        self, client: MilvusClientLike, name: str, expr: str, exact: str, fields: list[str]
    ) -> list[dict[str, Any]]:
        """Every row matching `expr`, or `exact` (the parts no row check covers) where Milvus refuses its `like`s."""
        return _narrowed(lambda e: self._query_all(client, name, e, fields), expr, exact)

    async def languages(self, name: str) -> Counter[str]:
        """How many chunks are in each language, in a sample of `LANGUAGE_SAMPLE` chunks (ids are hashes, so the
        first rows are a fair sample); collections made before chunks recorded it are detected from their texts."""
        field = "lang" if "lang" in (await self._known(name)).fields else "text"
        sample = await self.connection.run(
            lambda client: client.query(
                name, filter="", output_fields=[field], limit=LANGUAGE_SAMPLE, consistency_level=self.consistency
            )
        )
        return Counter(row["lang"] if field == "lang" else language.detect(row["text"]) for row in sample)

    async def ids_starting(self, name: str, prefix: str, limit: int) -> list[str]:
        """Chunk ids that start with `prefix` (hex), at most `limit`."""
        expr = f"id like {filters.quote(prefix + '%')}"
        rows = await self.connection.run(
            lambda client: client.query(name, filter=expr, output_fields=["id"], limit=limit, consistency_level=self.consistency)
        )
        return [row["id"] for row in rows]

    async def document_chunks(
        self, name: str, document: DocKey, first: int, last: int, fields: list[str] | None = None
    ) -> list[ChunkRow]:
        """The chunks of one document (root, source) from index `first` to `last`, in order; only `fields` of
        each (those the collection has) where given."""
        root, source = document
        info = await self._known(name)
        terms = [f"source == {filters.quote(source)}", f"chunk_index >= {int(first)}", f"chunk_index <= {int(last)}"]
        if "root" in info.fields:
            terms.append(f"root == {filters.quote(root)}")
        wanted = info.row_fields if fields is None else [f for f in info.row_fields if f in fields]
        rows = await self.connection.run(self._query_all, name, " and ".join(terms), ["id", *wanted])
        return sorted((from_entity(r["id"], r) for r in rows), key=lambda row: row.chunk_index)

    async def fetch(self, name: str, ids: list[str], vectors: list[str] | None = None) -> dict[str, ChunkRow]:
        """Stored rows by chunk id: every field but the vectors, or only the vector fields named."""
        if not ids:
            return {}
        fields = vectors if vectors is not None else (await self._known(name)).row_fields
        rows = await self.connection.run(
            lambda client: client.get(name, ids=ids, output_fields=["id", *fields], consistency_level=self.consistency)
        )
        return {r["id"]: from_entity(r["id"], r) for r in rows}

    async def upsert(self, name: str, rows: list[ChunkRow]) -> None:
        info = await self._known(name)
        if rows:
            entities = [to_entity(row, info) for row in rows]
            await self.connection.run(lambda client: client.upsert(name, entities))

    async def delete_ids(self, name: str, ids: list[str]) -> None:
        if ids:
            await self.connection.run(lambda client: client.delete(name, filter=filters.is_in("id", ids)))

    async def delete_documents(self, name: str, documents: list[DocKey]) -> None:
        """Remove every chunk of these documents (root, source)."""
        has_root = "root" in (await self._known(name)).fields
        by_root: dict[str, list[str]] = {}
        for root, source in documents:
            by_root.setdefault(root if has_root else "", []).append(source)
        for root, sources in by_root.items():
            for at in range(0, len(sources), DELETE_BATCH):
                expr = filters.is_in("source", sources[at : at + DELETE_BATCH])
                expr += f" and root == {filters.quote(root)}" if has_root else ""
                await self.connection.run(lambda client, expr=expr: client.delete(name, filter=expr))

    async def flush(self, name: str) -> None:
        """Seal new rows so searches use the index (Milvus Lite scans unflushed rows slowly)."""
        await self.connection.run(lambda client: client.flush(name))

    # search

    async def search_dense(
        self,
        name: str,
        vector: list[float],
        limit: int,
        *,
        field: str = "vector",
        source: str | None = None,
        ids: list[str] | None = None,
        rows: bool = True,
        where: filters.Filter | None = None,
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity of `field`, optionally only from sources matching the glob
        `source` and chunks passing `where`, or only among the chunks `ids`; with their rows unless `rows` is false."""
        index = (await self._known(name)).index
        return await self._search(name, vector, field, index.search_params, limit, _filter(source, where), ids, rows)

    async def search_bm25(
        self,
        name: str,
        text: str,
        limit: int,
        *,
        source: str | None = None,
        rows: bool = True,
        where: filters.Filter | None = None,
    ) -> list[Hit]:
        """Chunks ranked by Milvus's built-in BM25 over the chunk text."""
        return await self._search(name, text, "sparse", lambda _: SPARSE_SEARCH, limit, _filter(source, where), None, rows)

    async def _search(
        self,
        name: str,
        data: Any,
        field: str,
        params: Callable[[int], dict[str, Any]],
        limit: int,
        where: filters.Filter,
        ids: list[str] | None,
        rows: bool,
    ) -> list[Hit]:
        """Milvus narrows some filters to a superset (see filters), checked here; when too few results pass, the
        search is repeated deeper, up to Milvus's result window. `params` gives the search parameters for a search
        that asks for that many results."""
        output = (await self._known(name)).row_fields if rows else []
        by_ids = filters.is_in("id", ids) if ids is not None else ""
        expr = " and ".join(e for e in (by_ids, where.expr) if e)
        unfiltered = " and ".join(e for e in (by_ids, where.exact_expr) if e)  # the parts no row check covers
        checked = not where.exact
        if checked:
            output = sorted({*output, *where.fields})
        depth = limit * 4 if checked else limit
        while True:
            result = await self.connection.run(
                _search_or_empty, name, [data], anns_field=field, limit=depth, filter=expr, output_fields=output,
                search_params=params(depth), consistency_level=self.consistency, unfiltered=unfiltered,
            )  # fmt: skip
            found = [h for h in result[0] if not checked or where.matches(h["entity"])]
            if not checked or len(found) >= limit or len(result[0]) < depth or depth >= QUERY_WINDOW:
                break
            depth = min(depth * 8, QUERY_WINDOW)
        return [
            Hit(str(h["id"]), float(h["distance"]), from_entity(str(h["id"]), h["entity"]) if rows else None)
            for h in found[:limit]
        ]


def _filter(source: str | None, where: filters.Filter | None) -> filters.Filter:
    """`where`, with the source glob's part in front where one is given."""
    glob = filters.build(None, source, frozenset())
    return filters.Filter(glob.parts + (where.parts if where else ()), where.contains_by if where else None)


def _refused_like(exc: Exception) -> bool:
    """Milvus gave up on a `like`: its regular expression backtracks too far, or (Milvus 2.3) it is not a prefix."""
    message = getattr(exc, "message", "") or ""
    return "exceeded predefined bounds" in message or "only prefix pattern match" in message


def _narrowed(query: Callable[[str], list[dict[str, Any]]], expr: str, exact: str) -> list[dict[str, Any]]:
    """`query(expr)`, or `query(exact)` where Milvus refuses a `like` in `expr` (the caller checks every row)."""
    from pymilvus import MilvusException

    try:
        return query(expr)
    except MilvusException as exc:
        if _refused_like(exc) and expr != exact:
            return query(exact)
        raise


def _search_or_empty(client: MilvusClientLike, name: str, data: list[Any], *, unfiltered: str, **kwargs: Any) -> Any:
    """client.search, except that BM25 over a collection that never held a row finds nothing
    (Milvus Lite 2.5.1 fails there with "Invalid sparse row: NaN or Inf value"), and that a source `like` whose
    regular expression Milvus gives up on ("exceeded predefined bounds": it backtracks, and some names make even
    a short pattern too costly) is dropped for `unfiltered`: the caller checks every hit's source anyway."""
    from pymilvus import MilvusException

    try:
        return client.search(name, data, **kwargs)
    except MilvusException as exc:
        if "Invalid sparse row" in (exc.message or ""):
            return [[]]
        if _refused_like(exc) and kwargs.get("filter") != unfiltered:
            return _search_or_empty(client, name, data, unfiltered=unfiltered, **(kwargs | {"filter": unfiltered}))
        raise


def _make_collection(client: MilvusClientLike, name: str, schema: Any, index: Any) -> None:
    """Create the collection with its indexes, waiting for each (pymilvus polls after a fixed 0.5 s sleep: 1.5 s
    per new collection). Not waiting raced a Lite engine that had just started: its BM25 index failed with
    "Mmap manager has not been init" and the collection was made dense-only."""
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
