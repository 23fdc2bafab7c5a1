"""The collection's shape in one place: the typed chunk row, the Milvus fields it maps to, the embedder
record, and the index and search parameters. Nothing here opens a connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from tools.errors import UserError
from tools.store.client import MilvusClientLike

TEXT_MAX = 65535
SOURCE_MAX = 4096
TITLE_MAX = 1024
ID_MAX = 64

IndexType = Literal["AUTOINDEX", "FLAT", "IVF_FLAT", "HNSW"]
INDEX_TYPES: tuple[IndexType, ...] = get_args(IndexType)
LITE_INDEX_TYPES: tuple[IndexType, ...] = ("AUTOINDEX", "FLAT", "IVF_FLAT")  # all Milvus Lite builds
METRIC = "COSINE"
SPARSE_INDEX = {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25"}
SPARSE_SEARCH = {"metric_type": "BM25"}
BM25_ANALYZER = {"type": "english"}


@dataclass(frozen=True)
class DenseIndex:
    """The index of a collection's vector fields and how searches tune it.

    The type and its build parameters are recorded in the collection when it is made, so every search sends the
    parameters of the index it runs on, whatever the settings say now; `ef` and `nprobe` are search-time knobs
    and come from the settings. A collection made before the record existed has AUTOINDEX, as all were then.
    """

    type: IndexType = "AUTOINDEX"
    build: dict[str, int] = field(default_factory=dict)  # HNSW: M, efConstruction; IVF_FLAT: nlist
    ef: int = 64  # HNSW: candidates kept while searching; raised to the result count a search asks for
    nprobe: int = 16  # IVF_FLAT: clusters searched

    @classmethod
    def chosen(
        cls, type: IndexType = "AUTOINDEX", *, m: int = 16, ef_construction: int = 200, nlist: int = 1024, ef: int = 64,
        nprobe: int = 16,
    ) -> DenseIndex:  # fmt: skip
        """The index the settings ask for, with the build parameters its type takes."""
        build = {"HNSW": {"M": m, "efConstruction": ef_construction}, "IVF_FLAT": {"nlist": nlist}}.get(type, {})
        return cls(type, build, ef, nprobe)

    def index_params(self) -> dict[str, Any]:
        """What `add_index` takes."""
        return {"index_type": self.type, "metric_type": METRIC, "params": dict(self.build)}

    def search_params(self, limit: int) -> dict[str, Any]:
        """What a search for `limit` results sends: HNSW needs ef >= limit; IVF_FLAT's nprobe at most its nlist."""
        if self.type == "HNSW":
            return {"metric_type": METRIC, "params": {"ef": max(self.ef, limit)}}
        if self.type == "IVF_FLAT":
            return {"metric_type": METRIC, "params": {"nprobe": min(self.nprobe, self.build.get("nlist", self.nprobe))}}
        return {"metric_type": METRIC}

    def record(self) -> dict[str, Any]:
        return {"type": self.type, "params": dict(self.build)}

    def recorded(self, record: Any) -> DenseIndex:
        """The index a collection records, with this one's search knobs."""
        if not isinstance(record, dict) or record.get("type") not in INDEX_TYPES:
            return replace(self, type="AUTOINDEX", build={})
        return replace(self, type=record["type"], build={str(k): int(v) for k, v in (record.get("params") or {}).items()})

    def describe(self) -> str:
        """`HNSW (M=16, efConstruction=200; searches ef=64, or the result count if larger)`."""
        build = ", ".join(f"{k}={v}" for k, v in self.build.items())
        knob = {"HNSW": f"searches ef={self.ef}, or the result count if larger", "IVF_FLAT": f"searches nprobe={self.nprobe}"}
        parts = "; ".join(p for p in (build, knob.get(self.type, "")) if p)
        return f"{self.type} ({parts})" if parts else self.type


DEFAULT_INDEX = DenseIndex()  # what every collection had before the index was a choice


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
    metadata: dict[str, Any] = field(default_factory=dict)  # the document's (tools/metadata.py), on each of its chunks
    ingested_at: int = 0  # when the chunk was written (Unix seconds); 0 in collections made before it was recorded
    vector: list[float] | None = None
    heading_vector: list[float] | None = None  # the section heading's vector, where the collection keeps one


VECTOR_FIELDS = ("vector", "heading_vector")
# Collections made by earlier versions lack the fields added since (root, pages, lang, metadata, ingested_at); rows
# read back get defaults, and filters on a missing field say so (tools/store/filters.py).
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
    metadata: dict[str, Any] | None = None  # None where the collection has no metadata field


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built with."""

    name: str
    embedder: str
    dim: int
    fields: frozenset[str]  # the ChunkRow fields the collection has
    hybrid: bool  # has the BM25 field
    headings_object: bool = False  # headings kept as {"path": [...]}: Milvus < 2.4 JSON fields take objects only
    index: DenseIndex = DEFAULT_INDEX  # the index of its vector fields, as recorded

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


def read_info(name: str, description: dict[str, Any], tuning: DenseIndex = DEFAULT_INDEX) -> CollectionInfo:
    """A collection's info from `describe_collection`: the embedder and index records in its description, its
    fields; searches tune its index with `tuning`'s knobs."""
    try:
        meta = json.loads(description.get("description") or "{}")
    except json.JSONDecodeError:
        meta = {}
    if not isinstance(meta, dict) or "embedder" not in meta:
        raise UserError(f"Collection {name!r} was not made by this server (it has no embedder record)")
    names = {f["name"] for f in description.get("fields", [])}
    return CollectionInfo(
        name,
        meta["embedder"],
        int(meta["dim"]),
        ALL_FIELDS & names,
        "sparse" in names,
        meta.get("headings") == "object",
        tuning.recorded(meta.get("index")),
    )


def create_schema(
    client: MilvusClientLike, embedder: str, dim: int, full: bool, dense: DenseIndex = DEFAULT_INDEX
) -> tuple[Any, Any, frozenset[str]]:
    """The schema, index parameters and row fields of a new collection; `full` adds BM25 and heading vectors
    (Milvus >= 2.5).

    Milvus Lite keeps no collection properties, so the embedder and index records live in the schema's description.
    """
    from pymilvus import DataType, Function, FunctionType

    meta: dict[str, Any] = {"embedder": embedder, "dim": dim, "index": dense.record()}
    meta |= {} if full else {"headings": "object"}
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
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("ingested_at", DataType.INT64)
    index = client.prepare_index_params()
    index.add_index("vector", **dense.index_params())
    if full:
        schema.add_field("heading_vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
        )
        index.add_index("heading_vector", **dense.index_params())
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
        metadata=entity.get("metadata") or {},
        ingested_at=int(entity.get("ingested_at") or 0),
        vector=entity.get("vector"),
        heading_vector=entity.get("heading_vector"),
    )
