"""The human CLI, run as a real subprocess on a real Milvus Lite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_ingest_search_info_delete_and_errors(docs: Path, tmp_path: Path) -> None:
    env = {
        "MILVUS_URI": str(tmp_path / "cli.db"),
        "INGEST_ROOTS": str(docs),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "200",
    }
    ingest = _cli(env, "ingest", "milvus_docs/en")
    assert ingest.returncode == 0, ingest.stderr
    assert "4 files into milvus_docs" in ingest.stdout

    found = _cli(env, "search", "How is data stored in milvus?", "-k", "3")
    assert found.returncode == 0 and "Where does Milvus store data?" in found.stdout

    info = _cli(env, "info")
    assert "4 sources" in info.stdout and "product_faq.md" in info.stdout

    deleted = _cli(env, "delete", "*/troubleshooting.md")
    assert deleted.returncode == 0 and "of 1 sources" in deleted.stdout

    no_key = _cli(env, "ask", "How is data stored in milvus?")
    assert no_key.returncode == 1 and "DASHSCOPE_API_KEY" in no_key.stdout
    outside = _cli(env, "ingest", str(tmp_path))
    assert outside.returncode == 1 and "outside the folders" in outside.stdout
