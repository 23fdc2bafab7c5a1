"""The test harness: the real parts every test shares, and one way each to reach them.

- `server_env` builds the settings of a server or CLI process; `process_env` adds what a bare client passes.
- The server: `memory_session` runs it in this process over in-memory streams (the same JSON-RPC messages, no
  process start, the worker's model); `stdio_session` starts `python -m server` for the tests where the process is
  the point (its stdout, stderr, settings sources, signals); `http_server` starts it over streamable HTTP;
  `run_cli` runs `python -m server.cli`.
- Fixtures: a real Milvus Lite file per test (`services`), the packaged embedder loaded once per worker
  (`embedder`), the FAQ corpus (`docs`), and one fixture per loopback stand-in: `dashscope`, `embeddings`,
  `reranks`, `local_llm`.
- `until` waits for a condition, bounded; no test sleeps a fixed time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from tests.dashscope_stub import Stub, run_stub
from tests.embeddings_stub import EmbeddingsStub, run_embeddings_stub
from tests.rerank_stub import RerankStub, run_rerank_stub
from tools.embedders import OnnxMiniLM
from tools.services import Services
from tools.store import Store

REPO = Path(__file__).resolve().parent.parent
FAQ = REPO / "data" / "milvus_docs"
START_S = 120  # a server start (process, imports, model) on a busy 2-core machine
T = TypeVar("T")


# settings


Roots = Path | str | Sequence[Path | str]


def server_env(db: Path | str | None = None, roots: Roots | None = None, **settings: str) -> dict[str, str]:
    """The settings of a server or CLI process: its MILVUS_URI, the INGEST_ROOTS it may read, and others by name."""
    env = {} if db is None else {"MILVUS_URI": str(db)}
    if roots is not None:
        env["INGEST_ROOTS"] = str(roots) if isinstance(roots, str | Path) else ":".join(map(str, roots))
    return {**env, **settings}


def process_env(env: dict[str, str]) -> dict[str, str]:
    """`env` on top of what a bare MCP client passes a server (HOME, PATH, USER, ...), as stdio_session does."""
    return {**get_default_environment(), **env}


# the server


@asynccontextmanager
async def stdio_session(
    env: dict[str, str],
    args: Sequence[str] = (),
    errlog: TextIO = sys.stderr,
    *,
    cwd: Path = REPO,
    prefix: Sequence[str] = (),
    **client: Any,
) -> AsyncIterator[ClientSession]:
    """An initialized client session to `python -m server` with only `env` (plus the safe defaults), in `cwd`.

    `prefix`: a command that runs the server (`nsenter ...`, `capsh ... --`); `client`: more ClientSession
    arguments, such as `logging_callback`.
    """
    argv = [*prefix, sys.executable, "-m", "server", *args]
    if prefix and prefix[0] == "capsh":  # capsh runs bash: `-- -c 'exec "$0" "$@"' python -m server`
        argv = [*prefix, "-c", 'exec "$0" "$@"', sys.executable, "-m", "server", *args]
    if cwd != REPO:
        env = {"PYTHONPATH": str(REPO), **env}  # `server` from this checkout, whatever the working directory
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=cwd)
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write, **client) as session:
        with anyio.fail_after(START_S):
            await session.initialize()
        yield session


@asynccontextmanager
async def memory_session(env: dict[str, str], args: Sequence[str] = (), **client: Any) -> AsyncIterator[ClientSession]:
    """The server that `stdio_session(env, args)` starts, run in this process instead: the same settings (read from
    `env` and the safe defaults only), tools and JSON-RPC messages, over in-memory streams, with the worker's model.

    For every test where the process itself is not the point: no process start, no model load, no imports.
    """
    from server.app import create_server

    settings = load_settings(env, args)
    services = settings.services()
    if type(services.embedder) is OnnxMiniLM:
        services.embedder = shared_model()
    # mode="legacy": the initialize handshake and JSON-RPC messages over memory streams, as over stdio
    async with Client(create_server(settings, services), mode="legacy", cache=None, **client) as connected:
        yield connected.session


def load_settings(env: dict[str, str], args: Sequence[str] = ()) -> Any:
    """The server's Settings as a process started with only `env` (and the safe defaults) and `args` reads them."""
    from server.settings import Settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(process_env(env))
    try:
        return Settings.load(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(
    env: dict[str, str],
    *args: str,
    stdin: str | None = None,
    module: str = "server.cli",
    timeout: float = 300,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`python -m server.cli ARGS` (or `module`: `server`) with only `env` (plus the safe defaults), started through
    `prefix` (nsenter, say); its output."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", module, *args],
        cwd=REPO,
        env=process_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def http_server(env: dict[str, str], log: Path, args: Sequence[str] = (), *, port: int | None = None) -> Iterator[int]:
    """`python -m server --transport streamable-http` on 127.0.0.1 with `env` over this process's environment, its
    stderr in `log`; yields its port once it listens, and stops it afterwards."""
    from tests.milvus_lite_server import free_port, wait_for_port

    port = port or free_port()
    command = [sys.executable, "-m", "server", "--transport", "streamable-http", "--port", str(port), *args]
    with open(log, "w") as errors:
        server = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        wait_for_port(port, server, START_S)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def payload(result: Any) -> dict[str, Any]:
    """A tool result's structured content (every field), after checking that it also carries the compact text
    that clients reading only text (Qwen-Agent) see."""
    assert len(result.content) == 1 and result.content[0].type == "text" and result.content[0].text, result.content
    assert result.structured_content is not None, result.content[0].text
    return dict(result.structured_content)


def until(check: Callable[[], T], timeout: float, what: str, every: float = 0.02) -> T:
    """The first true value of `check()`, polled every `every` seconds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)


# the embedder


class RememberingMiniLM(OnnxMiniLM):
    """The packaged model, which encodes each distinct text once per test worker: tests ingest the same FAQ again
    and again, and the vectors are the model's own either way. Its model is the worker's one load (`plain_model`)."""

    def __init__(self) -> None:
        super().__init__()
        self._vectors: dict[str, list[float]] = {}

    def _load(self) -> tuple[Any, Any]:
        return plain_model().loaded()  # type: ignore[no-any-return]

    def _encode(self, texts: list[str]) -> list[list[float]]:
        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, super()._encode(missing), strict=True))
        return [self._vectors[text] for text in texts]


_models: dict[str, OnnxMiniLM] = {}


def plain_model() -> OnnxMiniLM:
    """The packaged embedder, loaded once per worker."""
    if "plain" not in _models:
        _models["plain"] = OnnxMiniLM()
    return _models["plain"]


def shared_model() -> RememberingMiniLM:
    """The packaged embedder that in-process servers and `services` use (one per worker)."""
    if "shared" not in _models:
        _models["shared"] = RememberingMiniLM()
    return _models["shared"]  # type: ignore[return-value]


# fixtures


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """Node 22 with the MCP Inspector and the conformance suite (installed under .cache/ when missing)."""
    from tests.external_tools import ToolUnavailable, node_bin

    try:
        return node_bin()
    except ToolUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def embedder() -> OnnxMiniLM:
    """The real model, loaded once per worker, encoding every text it is given (for tests of the embedder)."""
    return plain_model()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A writable copy of the FAQ corpus inside a root folder."""
    root = tmp_path / "root"
    shutil.copytree(FAQ, root / "milvus_docs")
    return root


@pytest.fixture
def services(tmp_path: Path, docs: Path) -> Iterator[Services]:
    """The parts the tools use: a fresh Milvus Lite file, the worker's model, the FAQ root."""
    store = Store(str(tmp_path / "milvus.db"))
    yield Services(store=store, embedder=shared_model(), roots=[docs])
    store.close()


@pytest.fixture
def dashscope() -> Iterator[Stub]:
    """The DashScope chat stand-in on loopback (tests/dashscope_stub.py)."""
    with run_stub() as stub:
        yield stub


@pytest.fixture
def embeddings() -> Iterator[EmbeddingsStub]:
    """The OpenAI-compatible embeddings stand-in on loopback (tests/embeddings_stub.py)."""
    with run_embeddings_stub() as stub:
        yield stub


@pytest.fixture
def reranks() -> Iterator[RerankStub]:
    """The rerank services' stand-in on loopback (tests/rerank_stub.py)."""
    with run_rerank_stub() as stub:
        yield stub


@pytest.fixture(scope="session")
def local_llm() -> Iterator[str]:
    """A real small chat model served on loopback (tests/llm_server.py), once per worker: its base URL."""
    from tests.llm_server import serve_local_llm

    with serve_local_llm() as base_url:
        yield base_url
