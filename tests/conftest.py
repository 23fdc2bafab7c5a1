"""Shared fixtures: a real Milvus Lite file per test, the real packaged embedder, the FAQ corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.embedders import OnnxMiniLM
from tools.services import Services
from tools.store import Store

REPO = Path(__file__).resolve().parent.parent
FAQ = REPO / "data" / "milvus_docs"


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
    """One loaded model for the whole run."""
    return OnnxMiniLM()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A writable copy of the FAQ corpus inside a root folder."""
    root = tmp_path / "root"
    shutil.copytree(FAQ, root / "milvus_docs")
    return root


@pytest.fixture
def services(tmp_path: Path, docs: Path, embedder: OnnxMiniLM) -> Services:
    store = Store(str(tmp_path / "milvus.db"))
    yield Services(store=store, embedder=embedder, roots=[docs])
    store.close()
