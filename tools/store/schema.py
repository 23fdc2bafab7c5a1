"""The collection's shape in one place: the typed chunk row, the Milvus fields it maps to, the embedder
record, and the index and search parameters. Nothing here opens a connection.

To use another index type, change `DENSE_INDEX` and `DENSE_SEARCH` together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from tools.errors import UserError

TEXT_MAX = 65535
SOURCE_MAX = 4096
TITLE_MAX = 1024
ID_MAX = 64

# Milvus Lite indexes only FLAT, IVF_FLAT and AUTOINDEX (and scans small segments); servers pick HNSW-like indexes.
DENSE_INDEX = {"index_type": "AUTOINDEX", "metric_type": "COSINE"}
DENSE_SEARCH = {"metric_type": "COSINE"}
SPARSE_INDEX = {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25"}
SPARSE_SEARCH = {"metric_type": "BM25"}
BM25_ANALYZER = {"type": "english"}


@dataclass
class ChunkRow:
    """One stored chunk: made by ingest, written by the store, read back by search."""

    id: str
    source: str  # the file's path relative to `root`
    root: str  # the ingest root (absolute) the file came from; "" for text stored by name and older collections
    title: str
    headings: list[str]
    text: str
    chunk_index: int
    content_hash: str
    page_start: int = 0  # the first and last page (or slide) the chunk is on; 0 where the format has no pages
    page_end: int = 0
    lang: str = ""  # the chunk's language (tools/language.py)
    vector: list[float] | None = None
    heading_vector: list[float] | None = None  # the section heading's vector, where the collection keeps one


VECTOR_FIELDS = ("vector", "heading_vector")
# Collections made by earlier versions lack the fields added since (root, pages, lang); rows read back get defaults.
ALL_FIELDS = frozenset(f.name for f in fields(ChunkRow))


DocKey = tuple[str, str]  # a stored document: (root, source)


@dataclass(frozen=True)
class ChunkRef:
    """What ingest needs to know of a stored chunk to decide whether to keep, move or delete it."""

    id: str
    source: str
    content_hash: str
    chunk_index: int
    root: str = ""
    page_start: int = 0
    page_end: int = 0


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built with."""

    name: str
    embedder: str
    dim: int
    fields: frozenset[str]  # the ChunkRow fields the collection has
    hybrid: bool  # has the BM25 field
    headings_object: bool = False  # headings kept as {"path": [...]}: Milvus < 2.4 JSON fields take objects only

    @property
    def heading_vectors(self) -> bool:
        """Whether the collection keeps a vector of each chunk's section heading."""
        return "heading_vector" in self.fields

    @property
    def vector_fields(self) -> list[str]:
        return [f for f in VECTOR_FIELDS if f in self.fields]

    @property
    def row_fields(self) -> list[str]:
        """What a search or fetch returns besides the id: every field the collection has but the vectors."""
        return sorted(self.fields - {"id", *VECTOR_FIELDS})

    def check_embedder(self, embedder: str, dim: int) -> None:
        """Refuse to mix vectors from different embedders in one collection."""
        if self.embedder != embedder or (dim and self.dim != dim):
            raise UserError(
                f"Collection {self.name!r} was built with embedder {self.embedder} ({self.dim} dims), but this server "
                f"uses {embedder} ({dim or 'unknown'} dims). Use the same EMBEDDING_PROVIDER/EMBEDDING_MODEL, or "
                "another collection (MILVUS_COLLECTION or the `collection` argument)"
            )


def clip(value: str, max_bytes: int) -> str:
    """`value` cut to fit a VARCHAR field of `max_bytes` (Milvus counts UTF-8 bytes), at a character boundary."""
    data = value.encode()
    return value if len(data) <= max_bytes else data[:max_bytes].decode(errors="ignore")


def read_info(name: str, description: dict[str, Any]) -> CollectionInfo:
    """A collection's info from `describe_collection`: the embedder record in its description, its fields."""
    try:
        meta = json.loads(description.get("description") or "{}")
    except json.JSONDecodeError:
        meta = {}
    if not isinstance(meta, dict) or "embedder" not in meta:
        raise UserError(f"Collection {name!r} was not made by this server (it has no embedder record)")
    names = {f["name"] for f in description.get("fields", [])}
    return CollectionInfo(
        name, meta["embedder"], int(meta["dim"]), ALL_FIELDS & names, "sparse" in names, meta.get("headings") == "object"
    )


def create_schema(client: Any, embedder: str, dim: int, full: bool) -> tuple[Any, Any, frozenset[str]]:
    """The schema, index parameters and row fields of a new collection; `full` adds BM25 and heading vectors
    (Milvus >= 2.5).

    Milvus Lite keeps no collection properties, so the embedder record lives in the schema's description.
    """
    from pymilvus import DataType, Function, FunctionType

    meta: dict[str, Any] = {"embedder": embedder, "dim": dim} | ({} if full else {"headings": "object"})
    schema = client.create_schema(auto_id=False, description=json.dumps(meta))
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    analyzer = {"enable_analyzer": True, "analyzer_params": BM25_ANALYZER} if full else {}
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, **analyzer)
    schema.add_field("source", DataType.VARCHAR, max_length=SOURCE_MAX)
    schema.add_field("root", DataType.VARCHAR, max_length=SOURCE_MAX)
    schema.add_field("title", DataType.VARCHAR, max_length=TITLE_MAX)
    schema.add_field("headings", DataType.JSON)
    schema.add_field("chunk_index", DataType.INT64)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=ID_MAX)
    schema.add_field("page_start", DataType.INT64)
    schema.add_field("page_end", DataType.INT64)
    schema.add_field("lang", DataType.VARCHAR, max_length=16)
    index = client.prepare_index_params()
    index.add_index("vector", **DENSE_INDEX)
    if full:
        schema.add_field("heading_vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
        )
        index.add_index("heading_vector", **DENSE_INDEX)
        index.add_index("sparse", **SPARSE_INDEX)
    return schema, index, ALL_FIELDS if full else ALL_FIELDS - {"heading_vector"}


def to_entity(row: ChunkRow, info: CollectionInfo) -> dict[str, Any]:
    """The row as Milvus takes it: only the fields the collection has (vectors only when set)."""
    entity = {name: getattr(row, name) for name in info.fields}
    for name in VECTOR_FIELDS:
        if entity.get(name, 0) is None:
            del entity[name]
    if info.headings_object:
        entity["headings"] = {"path": row.headings}
    return entity


def from_entity(chunk_id: str, entity: dict[str, Any]) -> ChunkRow:
    """A row as Milvus returns it, with headings as a list however the collection keeps them."""
    headings = entity.get("headings") or []
    if isinstance(headings, dict):
        headings = headings.get("path", [])
    return ChunkRow(
        id=chunk_id,
        source=entity.get("source", ""),
        root=entity.get("root") or "",
        title=entity.get("title", ""),
        headings=list(headings),
        text=entity.get("text", ""),
        chunk_index=int(entity.get("chunk_index", 0)),
        content_hash=entity.get("content_hash", ""),
        page_start=int(entity.get("page_start") or 0),
        page_end=int(entity.get("page_end") or 0),
        lang=entity.get("lang") or "",
        vector=entity.get("vector"),
        heading_vector=entity.get("heading_vector"),
    )
