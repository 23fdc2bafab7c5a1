"""The parts every tool needs, built once from settings (by the server, a test or a script)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tools import defaults
from tools.defaults import Mode
from tools.embedders import Embedder
from tools.llm import LLMConfig
from tools.rerankers import Reranker
from tools.store import Store
from tools.web import PageCache


@dataclass
class Services:
    """A Milvus store, an embedder, the folders ingest may read, and the LLM settings."""

    store: Store
    embedder: Embedder
    roots: list[Path] = field(default_factory=lambda: [Path.cwd()])
    collection: str = defaults.COLLECTION
    search_mode: Mode = defaults.SEARCH_MODE
    min_relevance: float = defaults.MIN_RELEVANCE
    max_file_bytes: int = int(defaults.MAX_FILE_MB * 1024 * 1024)
    max_pages: int = defaults.MAX_PAGES
    exclude: list[str] = field(default_factory=list)  # globs of sources every ingest leaves out (INGEST_EXCLUDE)
    llm: LLMConfig = field(default_factory=LLMConfig)
    reranker: Reranker | None = None  # reorders the best `rerank_candidates` of every search
    rerank_candidates: int = defaults.RERANK_CANDIDATES
    # answer_with_qwen rewrites a question that is not in the documents' language into a search query in it.
    rewrite_queries: bool = True
    research_max_tokens: int = defaults.RESEARCH_MAX_TOKENS  # research_with_qwen's cap over all its model calls
    # ingest_url: hosts on loopback, private and link-local addresses are refused unless allowed (tools/web.py)
    allow_private_urls: bool = False
    fetch_timeout_s: float = defaults.FETCH_TIMEOUT_S
    pages: PageCache = field(default_factory=PageCache)  # pages fetched before, for conditional requests
    # Each collection's language shares, and when they were read (tools/search.py document_languages).
    languages: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.roots = [Path(r).resolve() for r in self.roots]
