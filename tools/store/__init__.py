"""Milvus, in four parts: `connection` (URIs, the Lite file lock, reconnecting), `schema` (the typed row,
fields, embedder record, index and search parameters), `filters` (quoting, globs) and `store` (writes,
searches, listings). Nothing else in the project talks to Milvus."""

from tools.checks import collection_name as check_collection_name
from tools.store.schema import ChunkRef, ChunkRow, CollectionInfo, DocKey
from tools.store.store import Consistency, Hit, Store

__all__ = ["ChunkRef", "ChunkRow", "CollectionInfo", "Consistency", "DocKey", "Hit", "Store", "check_collection_name"]
