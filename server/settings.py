"""Every setting in one place: an environment variable each, a CLI flag each, the default beside it.

`MILVUS_URI` is also `--milvus-uri`, and so on. Nothing else in the project reads `os.environ`. A `.env` file is
read only when `--env-file PATH` or `ENV_FILE` names one: never found by itself in the working directory, where
anyone who can write a file could redirect DASHSCOPE_BASE_URL (and the key with it) or INGEST_ROOTS.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Union, get_args, get_origin

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, CliSettingsSource, NoDecode, SettingsConfigDict

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
from tools.rerankers import Reranker, RerankProvider, make_reranker, rerank_url
from tools.services import Services
from tools.store import Consistency, Store


class ConfigError(ValueError):
    """A setting that cannot work, with a one-line message naming it (a line per setting when several are bad)."""


class Settings(BaseSettings):
    """Server settings, read from the environment (and a .env file named by --env-file), overridden by CLI flags."""

    model_config = SettingsConfigDict(
        env_file=None,  # only where the user asks: `Settings.load` and --env-file / ENV_FILE
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_prog_name="milvus-qwen-mcp",
    )

    milvus_uri: str = Field(defaults.MILVUS_URI, description="Milvus Lite file, or http(s)://host:19530, or a Zilliz Cloud URI")
    milvus_token: SecretStr | None = Field(None, description="Milvus token (user:password) or Zilliz Cloud API key")
    milvus_db: str | None = Field(None, description="Milvus database name (servers only)")
    milvus_collection: str = Field(defaults.COLLECTION, description="Default collection")
    milvus_consistency: Consistency = Field(
        "Session",
        description="Read consistency on a Milvus server: Session sees this server's own writes at once; "
        "Strong also every other writer's, at about 200 ms per search on Milvus 2.3",
    )
    ingest_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path.cwd()],
        description=f"Folders ingest may read, separated by {os.pathsep!r} or given as repeated flags; "
        "default: the working directory",
    )
    search_mode: Mode = Field(
        defaults.SEARCH_MODE, description="Default retrieval: dense (meaning), bm25 (exact words) or hybrid (both)"
    )
    min_relevance: float = Field(
        defaults.MIN_RELEVANCE,
        ge=-1,
        le=1,
        description="answer_with_qwen answers only when the best chunk's cosine similarity reaches this",
    )
    max_file_mb: float = Field(defaults.MAX_FILE_MB, gt=0, description="Files larger than this are skipped")
    max_pages: int = Field(defaults.MAX_PAGES, ge=1, description="PDFs and slide decks with more pages are skipped")

    embedding_provider: Provider = Field(
        "local",
        description="local (all-MiniLM-L6-v2 on ONNX, English), sentence-transformers, openai (any OpenAI-compatible "
        "embeddings API), or dashscope (text-embedding-v4, multilingual, with DASHSCOPE_API_KEY)",
    )
    embedding_model: str = Field(MINILM, description="Embedding model name (dashscope: text-embedding-v4)")
    embedding_base_url: str | None = Field(
        None, description="OpenAI-compatible embeddings endpoint (openai; dashscope: DASHSCOPE_BASE_URL)"
    )
    embedding_api_key: SecretStr | None = Field(None, description="API key for the embeddings endpoint")
    embedding_dimensions: int | None = Field(None, ge=1, description="Vector size to ask the embeddings API for")

    rerank_provider: RerankProvider = Field(
        "none",
        description="none, dashscope (qwen3-rerank), dashscope-text-rerank (gte-rerank-v2), or rerank-api (a "
        "Jina/Cohere-style /rerank server such as vLLM or llama.cpp)",
    )
    rerank_model: str | None = Field(None, description="Reranker model; default: qwen3-rerank or gte-rerank-v2")
    rerank_base_url: str | None = Field(
        None, description="Reranker endpoint without /rerank (rerank-api); default for dashscope: DASHSCOPE_BASE_URL's region"
    )
    rerank_api_key: SecretStr | None = Field(None, description="Reranker API key; default: DASHSCOPE_API_KEY")
    rerank_candidates: int = Field(
        defaults.RERANK_CANDIDATES, ge=1, le=500, description="How many of the best candidates the reranker reads"
    )
    query_rewrite: Literal["auto", "off"] = Field(
        "auto",
        description="auto: answer_with_qwen rewrites a question that is not in the documents' language into a search "
        "query in it (one short model call); off: never",
    )

    dashscope_api_key: SecretStr | None = Field(None, description="DashScope API key for answer_with_qwen")
    dashscope_base_url: str = Field(defaults.DASHSCOPE_URL, description="OpenAI-compatible chat endpoint")
    qwen_model: str = Field(defaults.QWEN_MODEL, description="Default chat model")
    llm_dialect: Dialect = Field(
        "dashscope", description="How the thinking switch is sent: dashscope, chat_template_kwargs, none"
    )
    llm_timeout: float = Field(defaults.LLM_TIMEOUT_S, gt=0, description="Seconds to wait for the chat model")
    llm_max_retries: int = Field(defaults.LLM_MAX_RETRIES, ge=0, description="Retries on 429, 5xx and connection errors")
    llm_total_timeout: float = Field(
        defaults.LLM_TOTAL_TIMEOUT_S, gt=0, description="Seconds one whole answer may take, thinking and retries included"
    )
    llm_max_tokens: int = Field(
        defaults.LLM_MAX_TOKENS,
        ge=1,
        le=MAX_TOKENS_LIMIT,
        description="Tokens one answer may generate (DashScope counts thinking and answer together)",
    )

    transport: Literal["stdio", "streamable-http"] = Field(
        "stdio", description="How clients connect: stdio (the client starts the server) or streamable-http (HTTP at /mcp)"
    )
    host: str = Field("127.0.0.1", description="Address to bind for streamable-http; 127.0.0.1 serves this machine only")
    port: int = Field(8000, ge=1, le=65535, description="Port for streamable-http")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Host header values accepted over HTTP (DNS-rebinding protection), comma-separated",
    )
    mcp_auth_token: SecretStr | None = Field(
        None, description="Bearer token HTTP clients must send (Authorization: Bearer ...); prefer MCP_AUTH_TOKEN_FILE"
    )
    mcp_auth_token_file: Path | None = Field(None, description="File holding the bearer token for streamable-http")
    allow_unauthenticated: bool = Field(
        False, description="Serve streamable-http off loopback without a token (only behind something that authenticates)"
    )
    read_only: bool = Field(False, description="Offer only the tools that read (no ingest or delete)")
    env_file: Path | None = Field(
        None, description="A .env file to read settings from (the environment and flags override it); default: none"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level (logs go to stderr)")

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
        try:
            flags: CliSettingsSource[_SettingsParser] = CliSettingsSource(
                cls, cli_parse_args=argv, root_parser=_SettingsParser(prog), add_argument_method=_add_setting
            )
            settings = cls(_env_file=env_file, _cli_settings_source=flags)
        except ValidationError as exc:
            raise ConfigError("\n".join(error_lines(exc, argv, env_file))) from None
        settings.env_file = env_file  # the file read, even if that file itself names another
        return settings

    @field_validator("ingest_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
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
        return Services(
            store=Store(self.milvus_uri, _secret(self.milvus_token), self.milvus_db, self.milvus_consistency),
            embedder=self.embedder(),
            roots=self.ingest_roots or [Path.cwd()],
            collection=self.milvus_collection,
            search_mode=self.search_mode,
            min_relevance=self.min_relevance,
            max_file_bytes=int(self.max_file_mb * 1024 * 1024),
            max_pages=self.max_pages,
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


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


# --help: the settings in groups, each flag with its environment variable, a plain type and its default.
HELP_GROUPS: dict[str, tuple[str, ...]] = {
    "Milvus": ("milvus_uri", "milvus_token", "milvus_db", "milvus_collection", "milvus_consistency"),
    "Documents": ("ingest_roots", "max_file_mb", "max_pages"),
    "Embeddings": (
        "embedding_provider",
        "embedding_model",
        "embedding_base_url",
        "embedding_api_key",
        "embedding_dimensions",
    ),
    "Search": ("search_mode", "rerank_provider", "rerank_model", "rerank_base_url", "rerank_api_key", "rerank_candidates"),
    "Answers (Qwen through DashScope or any OpenAI-compatible server)": (
        "dashscope_api_key",
        "dashscope_base_url",
        "qwen_model",
        "min_relevance",
        "query_rewrite",
        "llm_dialect",
        "llm_timeout",
        "llm_total_timeout",
        "llm_max_retries",
        "llm_max_tokens",
    ),
    "Serving": (
        "transport",
        "host",
        "port",
        "allowed_hosts",
        "mcp_auth_token",
        "mcp_auth_token_file",
        "allow_unauthenticated",
        "read_only",
    ),
    "General": ("env_file", "log_level"),
}
_HELP_DESCRIPTION = """\
An MCP server over Milvus: ingest documents, search them, answer with Qwen.

Every setting is a flag and an environment variable (in brackets). Flags
override the environment, which overrides the .env file that --env-file or
ENV_FILE names; no .env file is read unless named."""
_HELP_EPILOG = """\
Keys and tokens are safer in the environment or the .env file than in flags,
which other users of the machine can see. Help never shows their values."""
# Placeholders by the end of a setting's name, then by its type.
_METAVARS_BY_NAME = (
    ("_url", "URL"),
    ("_uri", "URI"),
    ("_file", "FILE"),
    ("_key", "KEY"),
    ("_token", "TOKEN"),
    ("_timeout", "SECONDS"),
    ("_mb", "MB"),
    ("_roots", f"FOLDER[{os.pathsep}FOLDER...]"),
    ("_hosts", "HOST[,HOST...]"),
    ("host", "ADDRESS"),
)
_METAVARS_BY_TYPE: dict[Any, str] = {int: "N", float: "NUMBER", str: "NAME", Path: "PATH", SecretStr: "SECRET"}


class _SettingsParser(argparse.ArgumentParser):
    """The parser pydantic-settings fills with the settings: grouped, described plainly, errors on one line."""

    def __init__(self, prog: str) -> None:
        super().__init__(
            prog=prog,
            usage="%(prog)s [-h] [--SETTING VALUE ...]",
            description=_HELP_DESCRIPTION,
            epilog=_HELP_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        self.groups = {title: self.add_argument_group(title) for title in HELP_GROUPS}

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):  # name the flags only: a stray value may be a key
            given = message.split(": ", 1)[1].split()
            message = "unrecognized arguments: " + (
                " ".join(a.split("=", 1)[0] for a in given if a.startswith("-")) or "values without a flag"
            )
        self.exit(2, f"{self.prog}: {message} (--help lists the settings)\n")


class _AppendPaths(argparse.Action):
    """`--ingest-roots A --ingest-roots B` kept as one value, `A:B`, which the field splits like INGEST_ROOTS."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        earlier = getattr(namespace, self.dest, None)
        joined = os.pathsep.join([*earlier, str(values)]) if isinstance(earlier, list) else str(values)
        setattr(namespace, self.dest, [joined])


def _add_setting(parser: _SettingsParser, *flags: str, **kwargs: Any) -> argparse.Action:
    """pydantic-settings' add_argument, with help written from the field: description, variable, default."""
    name = kwargs["dest"]
    field = Settings.model_fields[name]
    if "metavar" in kwargs:
        kwargs["metavar"] = _metavar(name, field)
    if name == "ingest_roots":  # pydantic-settings joins repeated flags with commas, which are legal in a path
        kwargs["action"] = _AppendPaths
    kwargs["help"] = _help(name, field).replace("%", "%%")
    group = next((parser.groups[title] for title, names in HELP_GROUPS.items() if name in names), parser)
    return group.add_argument(*flags, **kwargs)


def _metavar(name: str, field: FieldInfo) -> str:
    for suffix, metavar in _METAVARS_BY_NAME:
        if name.endswith(suffix):
            return metavar
    kind = _base_type(field)
    if get_origin(kind) is Literal:
        return "{" + ",".join(str(choice) for choice in get_args(kind)) + "}"
    return _METAVARS_BY_TYPE.get(kind, "VALUE")


def _help(name: str, field: FieldInfo) -> str:
    description = (field.description or "").rstrip(".")
    facts = [name.upper()]
    default = None if "default:" in description else _default_text(field)
    if default is not None:
        facts.append(f"default: {default}")
    return f"{description} [{'; '.join(facts)}]"


def _default_text(field: FieldInfo) -> str | None:
    """The default as a person would write it; None where there is none to show (unset, computed, or secret)."""
    value = field.default
    if _base_type(field) is SecretStr or value is None or field.default_factory is not None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _base_type(field: FieldInfo) -> Any:
    """The field's type without `| None`."""
    kind = field.annotation
    if get_origin(kind) in (Union, type(int | None)):
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        if len(options) == 1:
            return options[0]
    return kind


# Errors: one line per bad setting, naming it as the user gave it, with the values it allows.
def error_lines(exc: ValidationError, argv: Sequence[str], env_file: Path | None) -> list[str]:
    """A line per bad setting, such as `SEARCH_MODE='fuzzy' is not one of dense, bm25, hybrid`."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name not in lines:
            lines[name] = _error_line(name, error, argv, env_file)
    return list(lines.values())


def exit_with(prog: str, exc: ConfigError) -> NoReturn:
    """Print a settings error as `prog: ...` lines on stderr and exit with status 2, as argparse does."""
    for line in str(exc).splitlines():
        print(f"{prog}: {line}", file=sys.stderr)
    sys.exit(2)


def _error_line(name: str, error: ErrorDetails, argv: Sequence[str], env_file: Path | None) -> str:
    field = Settings.model_fields.get(name)
    if field is None:
        return str(error["msg"])
    flag = "--" + name.replace("_", "-")
    given_as_flag = any(arg == flag or arg.startswith(flag + "=") for arg in argv)
    in_environment = name.upper() in {key.upper() for key in os.environ}
    where = "" if given_as_flag or in_environment or env_file is None else f" (in {env_file})"
    shown = "'***'" if _base_type(field) is SecretStr else _shown(error["input"])
    return f"{flag if given_as_flag else name.upper()}={shown} is not {_allowed(field, error)}{where}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _allowed(field: FieldInfo, error: ErrorDetails) -> str:
    kind = _base_type(field)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(kind))
    if kind is bool:
        return "true or false"
    if kind in (int, float):
        noun = "a whole number" if kind is int else "a number"
        return f"{noun} {_bounds(field)}".rstrip()
    return f"valid: {error['msg']}"


def _bounds(field: FieldInfo) -> str:
    low = high = None
    above = ""
    for rule in field.metadata:  # annotated_types' Ge, Gt and Le, as Field(ge=, gt=, le=) makes them
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
        if hasattr(rule, "gt"):
            above = f"greater than {_number(rule.gt)}"
    if low is not None and high is not None:
        return f"from {_number(low)} to {_number(high)}"
    if above:
        return above if high is None else f"{above} and at most {_number(high)}"
    if low is not None:
        return f"of {_number(low)} or more"
    return "" if high is None else f"of {_number(high)} or less"


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
