"""Every setting in one place: an environment variable each, a CLI flag each, the default and help group beside it.

`MILVUS_URI` is also `--milvus-uri`, and so on. Nothing else in the project reads `os.environ`. A `.env` file is
read only when `--env-file PATH` or `ENV_FILE` names one: never found by itself in the working directory, where
anyone who can write a file could redirect DASHSCOPE_BASE_URL (and the key with it) or INGEST_ROOTS.
How they read to people (--help, error lines) is `server/settings_help.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, CliSettingsSource, NoDecode, SettingsConfigDict

from server.settings_help import SettingsParser, error_lines, exit_with
from tools import defaults
from tools.defaults import Mode
from tools.embedders import (
    DASHSCOPE_EMBEDDING_DIMENSIONS,
    DASHSCOPE_EMBEDDING_MODEL,
    MINILM,
    Embedder,
    Provider,
    make_embedder,
)
from tools.errors import UserError
from tools.llm import MAX_TOKENS_LIMIT, Dialect, LLMConfig
from tools.readers import ocr
from tools.rerankers import Reranker, RerankProvider, make_reranker, rerank_url
from tools.services import Services
from tools.store import Consistency, DenseIndex, IndexType, Store

__all__ = ["ConfigError", "Settings", "exit_with"]


class ConfigError(UserError):
    """A setting that cannot work, with a one-line message naming it (a line per setting when several are bad)."""


@dataclass(frozen=True)
class Group:
    """The --help section a setting is listed under, put on the field itself: `Annotated[str, MILVUS]`."""

    title: str


MILVUS = Group("Milvus")
DOCUMENTS = Group("Documents")
EMBEDDINGS = Group("Embeddings")
SEARCH = Group("Search")
ANSWERS = Group("Answers (Qwen through DashScope or any OpenAI-compatible server)")
SERVING = Group("Serving")
GENERAL = Group("General")
GROUPS = (MILVUS, DOCUMENTS, EMBEDDINGS, SEARCH, ANSWERS, SERVING, GENERAL)  # in --help's order


class Settings(BaseSettings):
    """Server settings, read from the environment (and a .env file named by --env-file), overridden by CLI flags."""

    model_config = SettingsConfigDict(
        env_file=None,  # only where the user asks: `Settings.load` and --env-file / ENV_FILE
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="milvus-qwen-mcp",
    )

    milvus_uri: Annotated[str, MILVUS] = Field(
        defaults.MILVUS_URI, description="Milvus Lite file, or http(s)://host:19530, or a Zilliz Cloud URI"
    )
    milvus_token: Annotated[SecretStr | None, MILVUS] = Field(
        None, description="Milvus token (user:password) or Zilliz Cloud API key"
    )
    milvus_db: Annotated[str | None, MILVUS] = Field(None, description="Milvus database name (servers only)")
    milvus_collection: Annotated[str, MILVUS] = Field(defaults.COLLECTION, description="Default collection")
    milvus_consistency: Annotated[Consistency, MILVUS] = Field(
        "Session",
        description="Read consistency on a Milvus server: Session sees this server's own writes at once; "
        "Strong also every other writer's, at about 200 ms per search on Milvus 2.3",
    )
    dense_index: Annotated[IndexType, MILVUS] = Field(
        defaults.DENSE_INDEX,
        description="Vector index of new collections: AUTOINDEX (Milvus chooses), FLAT (exact), IVF_FLAT, or HNSW "
        "(servers only); each collection keeps the one it was made with",
    )
    hnsw_m: Annotated[int, MILVUS] = Field(
        defaults.HNSW_M, ge=2, le=2048, description="HNSW: graph links per vector (new collections)"
    )
    hnsw_ef_construction: Annotated[int, MILVUS] = Field(
        defaults.HNSW_EF_CONSTRUCTION, ge=1, description="HNSW: candidates kept while building (new collections)"
    )
    hnsw_ef: Annotated[int, MILVUS] = Field(
        defaults.HNSW_EF, ge=1, le=32768, description="HNSW: candidates a search keeps (at least the results it asks for)"
    )
    ivf_nlist: Annotated[int, MILVUS] = Field(
        defaults.IVF_NLIST, ge=1, le=65536, description="IVF_FLAT: clusters (new collections)"
    )
    ivf_nprobe: Annotated[int, MILVUS] = Field(
        defaults.IVF_NPROBE, ge=1, le=65536, description="IVF_FLAT: clusters a search reads"
    )
    ingest_roots: Annotated[list[Path], NoDecode, DOCUMENTS] = Field(
        default_factory=lambda: [Path.cwd()],
        description=f"Folders ingest may read, separated by {os.pathsep!r} or given as repeated flags; "
        "default: the working directory",
    )
    ingest_exclude: Annotated[list[str], NoDecode, DOCUMENTS] = Field(
        default_factory=lambda: list(defaults.INGEST_EXCLUDE),
        description="Globs of files every ingest leaves out, separated by commas, e.g. **/genindex*.html,drafts/**",
    )
    search_mode: Annotated[Mode, SEARCH] = Field(
        defaults.SEARCH_MODE, description="Default retrieval: dense (meaning), bm25 (exact words) or hybrid (both)"
    )
    min_relevance: Annotated[float, ANSWERS] = Field(
        defaults.MIN_RELEVANCE,
        ge=-1,
        le=1,
        description="answer_with_qwen answers only when the best chunk's cosine similarity reaches this",
    )
    max_file_mb: Annotated[float, DOCUMENTS] = Field(defaults.MAX_FILE_MB, gt=0, description="Files larger than this are skipped")
    max_pages: Annotated[int, DOCUMENTS] = Field(
        defaults.MAX_PAGES, ge=1, description="PDFs and slide decks with more pages are skipped"
    )
    url_allow_private: Annotated[bool, DOCUMENTS] = Field(
        False, description="ingest_url may fetch from loopback, private and link-local addresses (an intranet)"
    )
    fetch_timeout: Annotated[float, DOCUMENTS] = Field(
        defaults.FETCH_TIMEOUT_S, gt=0, description="Seconds ingest_url waits for one web page, redirects included"
    )
    ocr: Annotated[defaults.OcrMode, DOCUMENTS] = Field(
        defaults.OCR,
        description="auto: scanned PDF pages and images (.png, .jpg, .tiff) are read with Tesseract when it is installed",
    )
    ocr_languages: Annotated[str, DOCUMENTS] = Field(
        defaults.OCR_LANGUAGES,
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages joined by +, e.g. eng+kor+chi_sim (each installed)",
    )
    watch: Annotated[bool, DOCUMENTS] = Field(
        defaults.WATCH,
        description="Keep INGEST_ROOTS in sync: ingest new and changed files, remove deleted ones (one watcher per root "
        "and store, whichever process holds it)",
    )
    watch_debounce_ms: Annotated[int, DOCUMENTS] = Field(
        defaults.WATCH_DEBOUNCE_MS, ge=10, le=60_000, description="Changes within this many milliseconds are synced together"
    )

    embedding_provider: Annotated[Provider, EMBEDDINGS] = Field(
        "local",
        description="local (all-MiniLM-L6-v2 on ONNX, English), sentence-transformers, openai (any OpenAI-compatible "
        "embeddings API), or dashscope (text-embedding-v4, multilingual, with DASHSCOPE_API_KEY)",
    )
    embedding_model: Annotated[str, EMBEDDINGS] = Field(MINILM, description="Embedding model name (dashscope: text-embedding-v4)")
    embedding_base_url: Annotated[str | None, EMBEDDINGS] = Field(
        None, description="OpenAI-compatible embeddings endpoint (openai; dashscope: DASHSCOPE_BASE_URL)"
    )
    embedding_api_key: Annotated[SecretStr | None, EMBEDDINGS] = Field(None, description="API key for the embeddings endpoint")
    embedding_dimensions: Annotated[int | None, EMBEDDINGS] = Field(
        None, ge=1, description="Vector size to ask the embeddings API for"
    )

    rerank_provider: Annotated[RerankProvider, SEARCH] = Field(
        "none",
        description="none, dashscope (qwen3-rerank), dashscope-text-rerank (gte-rerank-v2), or rerank-api (a "
        "Jina/Cohere-style /rerank server such as vLLM or llama.cpp)",
    )
    rerank_model: Annotated[str | None, SEARCH] = Field(
        None, description="Reranker model; default: qwen3-rerank or gte-rerank-v2"
    )
    rerank_base_url: Annotated[str | None, SEARCH] = Field(
        None, description="Reranker endpoint without /rerank (rerank-api); default for dashscope: DASHSCOPE_BASE_URL's region"
    )
    rerank_api_key: Annotated[SecretStr | None, SEARCH] = Field(None, description="Reranker API key; default: DASHSCOPE_API_KEY")
    rerank_candidates: Annotated[int, SEARCH] = Field(
        defaults.RERANK_CANDIDATES, ge=1, le=500, description="How many of the best candidates the reranker reads"
    )
    query_rewrite: Annotated[Literal["auto", "off"], ANSWERS] = Field(
        "auto",
        description="auto: answer_with_qwen rewrites a question that is not in the documents' language into a search "
        "query in it (one short model call); off: never",
    )

    dashscope_api_key: Annotated[SecretStr | None, ANSWERS] = Field(None, description="DashScope API key for answer_with_qwen")
    dashscope_base_url: Annotated[str, ANSWERS] = Field(defaults.DASHSCOPE_URL, description="OpenAI-compatible chat endpoint")
    qwen_model: Annotated[str, ANSWERS] = Field(defaults.QWEN_MODEL, description="Default chat model")
    llm_dialect: Annotated[Dialect, ANSWERS] = Field(
        "dashscope", description="How the thinking switch is sent: dashscope, chat_template_kwargs, none"
    )
    llm_timeout: Annotated[float, ANSWERS] = Field(defaults.LLM_TIMEOUT_S, gt=0, description="Seconds to wait for the chat model")
    llm_max_retries: Annotated[int, ANSWERS] = Field(
        defaults.LLM_MAX_RETRIES, ge=0, description="Retries on 429, 5xx and connection errors"
    )
    llm_total_timeout: Annotated[float, ANSWERS] = Field(
        defaults.LLM_TOTAL_TIMEOUT_S, gt=0, description="Seconds one whole answer may take, thinking and retries included"
    )
    llm_max_tokens: Annotated[int, ANSWERS] = Field(
        defaults.LLM_MAX_TOKENS,
        ge=1,
        le=MAX_TOKENS_LIMIT,
        description="Tokens one answer may generate (DashScope counts thinking and answer together)",
    )
    research_max_tokens: Annotated[int, ANSWERS] = Field(
        defaults.RESEARCH_MAX_TOKENS,
        ge=1,
        description="Tokens one research_with_qwen call may spend over all its model calls, prompts included",
    )

    transport: Annotated[Literal["stdio", "streamable-http"], SERVING] = Field(
        "stdio", description="How clients connect: stdio (the client starts the server) or streamable-http (HTTP at /mcp)"
    )
    host: Annotated[str, SERVING] = Field(
        "127.0.0.1", description="Address to bind for streamable-http; 127.0.0.1 serves this machine only"
    )
    port: Annotated[int, SERVING] = Field(8000, ge=1, le=65535, description="Port for streamable-http")
    allowed_hosts: Annotated[list[str], NoDecode, SERVING] = Field(
        default_factory=list,
        description="Extra Host header values accepted over HTTP (DNS-rebinding protection), comma-separated",
    )
    mcp_auth_token: Annotated[SecretStr | None, SERVING] = Field(
        None, description="Bearer token HTTP clients must send (Authorization: Bearer ...); prefer MCP_AUTH_TOKEN_FILE"
    )
    mcp_auth_token_file: Annotated[Path | None, SERVING] = Field(
        None, description="File holding the bearer token for streamable-http"
    )
    allow_unauthenticated: Annotated[bool, SERVING] = Field(
        False, description="Serve streamable-http off loopback without a token (only behind something that authenticates)"
    )
    read_only: Annotated[bool, SERVING] = Field(False, description="Offer only the tools that read (no ingest or delete)")
    env_file: Annotated[Path | None, GENERAL] = Field(
        None, description="A .env file to read settings from (the environment and flags override it); default: none"
    )

    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], GENERAL] = Field(
        "INFO", description="Log level (logs go to stderr)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def load(cls, argv: list[str]) -> Settings:
        """Settings from the environment and `argv`, and from the .env file that --env-file or ENV_FILE names, if any."""
        env_file = env_file_asked(argv)
        if env_file is not None and not env_file.is_file():
            raise ConfigError(f"--env-file / ENV_FILE {str(env_file)!r}: no such file")
        prog = str(cls.model_config.get("cli_prog_name") or "milvus-qwen-mcp")
        parser = SettingsParser(prog, cls.model_fields, [group.title for group in GROUPS], group_of)
        try:
            flags: CliSettingsSource[SettingsParser] = CliSettingsSource(
                cls, cli_parse_args=argv, root_parser=parser, add_argument_method=parser.add_setting
            )
            settings = cls(_env_file=env_file, _cli_settings_source=flags)
        except ValidationError as exc:
            raise ConfigError("\n".join(error_lines(exc, cls.model_fields, argv, env_file))) from None
        settings.env_file = env_file  # the file read, even if that file itself names another
        return settings

    @field_validator("ingest_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
        return value

    @field_validator("ingest_exclude", mode="before")
    @classmethod
    def _split_globs(cls, value: object) -> object:
        if isinstance(value, str):
            return [g.strip() for g in value.split(",") if g.strip()]
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    def embedder(self) -> Embedder:
        if self.embedding_provider == "dashscope":  # a preset: DashScope's region, key, model and size
            chosen = "embedding_model" in self.model_fields_set
            return make_embedder(
                "dashscope",
                self.embedding_model if chosen else DASHSCOPE_EMBEDDING_MODEL,
                base_url=self.embedding_base_url or self.dashscope_base_url,
                api_key=_secret(self.embedding_api_key) or _secret(self.dashscope_api_key),
                dimensions=self.embedding_dimensions or DASHSCOPE_EMBEDDING_DIMENSIONS,
            )
        return make_embedder(
            self.embedding_provider,
            self.embedding_model,
            base_url=self.embedding_base_url,
            api_key=_secret(self.embedding_api_key),
            dimensions=self.embedding_dimensions,
        )

    def dense_index_choice(self) -> DenseIndex:
        return DenseIndex.chosen(
            self.dense_index,
            m=self.hnsw_m,
            ef_construction=self.hnsw_ef_construction,
            nlist=self.ivf_nlist,
            ef=self.hnsw_ef,
            nprobe=self.ivf_nprobe,
        )

    def reranker(self) -> Reranker | None:
        if self.rerank_provider == "none":
            return None
        return make_reranker(
            self.rerank_provider,
            self.rerank_model,
            rerank_url(self.rerank_provider, self.rerank_base_url, self.dashscope_base_url),
            _secret(self.rerank_api_key) or (_secret(self.dashscope_api_key) if self.rerank_provider != "rerank-api" else None),
        )

    def services(self) -> Services:
        """The parts the tools use; nothing heavy is loaded or opened yet.

        Raises ConfigError for settings that cannot work together, such as a provider without its URL or key.
        """
        try:
            return self._services()
        except UserError as exc:
            raise ConfigError(str(exc)) from None

    def _services(self) -> Services:
        missing = [str(root) for root in self.ingest_roots if not root.is_dir()]
        if missing and not self.read_only:  # such as mcp.json's placeholder left unfilled
            raise ConfigError(
                f"INGEST_ROOTS names {', '.join(missing)}, which is not a folder here: set it to the folders ingest may "
                "read, as absolute paths"
            )
        ocr.configure(self.ocr, self.ocr_languages)  # process-wide: a reader takes only a file's bytes
        return Services(
            store=Store(
                self.milvus_uri, _secret(self.milvus_token), self.milvus_db, self.milvus_consistency, self.dense_index_choice()
            ),
            embedder=self.embedder(),
            roots=self.ingest_roots or [Path.cwd()],
            collection=self.milvus_collection,
            search_mode=self.search_mode,
            min_relevance=self.min_relevance,
            max_file_bytes=int(self.max_file_mb * 1024 * 1024),
            max_pages=self.max_pages,
            allow_private_urls=self.url_allow_private,
            fetch_timeout_s=self.fetch_timeout,
            exclude=list(self.ingest_exclude),
            reranker=self.reranker(),
            rerank_candidates=self.rerank_candidates,
            rewrite_queries=self.query_rewrite == "auto",
            llm=LLMConfig(
                base_url=self.dashscope_base_url,
                api_key=_secret(self.dashscope_api_key),
                model=self.qwen_model,
                dialect=self.llm_dialect,
                timeout_s=self.llm_timeout,
                max_retries=self.llm_max_retries,
                total_timeout_s=self.llm_total_timeout,
                max_tokens=self.llm_max_tokens,
            ),
            research_max_tokens=self.research_max_tokens,
        )


def env_file_asked(argv: list[str]) -> Path | None:
    """The .env file named by `--env-file PATH` (or `--env-file=PATH`) in `argv`, else by ENV_FILE; None if neither."""
    for i, arg in enumerate(argv):
        if arg == "--env-file" and i + 1 < len(argv):
            return Path(argv[i + 1]).expanduser()
        if arg.startswith("--env-file="):
            return Path(arg.split("=", 1)[1]).expanduser()
    named = os.environ.get("ENV_FILE", "").strip()
    return Path(named).expanduser() if named else None


def group_of(field: FieldInfo) -> str:
    """The title of the help section a setting's field is marked with; General where none is."""
    return next((rule.title for rule in field.metadata if isinstance(rule, Group)), GENERAL.title)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None
