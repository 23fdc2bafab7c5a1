"""The parts every tool needs, built once from settings (by the server, a test or a script)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from tools.embedders import Embedder
from tools.llm import LLMConfig
from tools.store import Store

# progress, total (None when unknown), message
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]

DEFAULT_COLLECTION = "milvus_docs"
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass
class Services:
    """A Milvus store, an embedder, the folders ingest may read, and the LLM settings."""

    store: Store
    embedder: Embedder
    roots: list[Path] = field(default_factory=lambda: [Path.cwd()])
    collection: str = DEFAULT_COLLECTION
    search_mode: str = "hybrid"
    # answer_with_qwen calls nothing relevant when the best chunk's cosine similarity is below this.
    # 0.3 suits all-MiniLM-L6-v2: on the FAQ, dev questions score >= 0.36, off-topic ones <= 0.24.
    min_relevance: float = 0.3
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    llm: LLMConfig = field(default_factory=LLMConfig)

    def __post_init__(self) -> None:
        self.roots = [Path(r).resolve() for r in self.roots]
