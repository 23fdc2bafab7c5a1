"""Milvus, in four parts: `connection` (URIs, the Lite file lock, reconnecting), `schema` (the typed row,
fields, embedder record, index and search parameters), `filters` (quoting, globs) and `store` (writes,
searches, listings). Nothing else in the project talks to Milvus."""

from tools.checks import collection_name as check_collection_name
from tools.store.schema import (
    INDEX_TYPES,
    ChunkRef,
    ChunkRow,
    CollectionInfo,
    DenseIndex,
    DocKey,
    IndexType,
)
from tools.store.store import Consistency, Hit, Store

__all__ = [
    "INDEX_TYPES",
    "ChunkRef",
    "ChunkRow",
    "CollectionInfo",
    "Consistency",
    "DenseIndex",
    "DocKey",
    "Hit",
    "IndexType",
    "Store",
    "check_collection_name",
]
