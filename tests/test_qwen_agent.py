"""Qwen-Agent (on mcp<2, in its own venv) drives the server through its own MCP manager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

QWEN_AGENT_PYTHON = REPO / ".cache" / "qwen-agent" / "bin" / "python"
INSTALL = "python3 -m venv .cache/qwen-agent && .cache/qwen-agent/bin/pip install -r tests/qwen-agent-requirements.txt"


def test_qwen_agent_lists_ingests_and_searches(docs: Path, tmp_path: Path) -> None:
    if not QWEN_AGENT_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Qwen-Agent's venv is missing; .ci/run creates it: {INSTALL}")
        pytest.skip(f"Qwen-Agent's venv is missing: {INSTALL}")
    config = {"mcpServers": {"milvus-docs": {
        "command": sys.executable, "args": ["-m", "server"],
        "env": {"MILVUS_URI": str(tmp_path / "qa.db"), "INGEST_ROOTS": str(docs)},
    }}}
    run = subprocess.run(
        [str(QWEN_AGENT_PYTHON), str(REPO / "tests" / "qwen_agent_driver.py"), json.dumps(config)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"milvus-docs-ingest_documents", "milvus-docs-search_milvus_docs", "milvus-docs-answer_with_qwen"} <= set(
        out["tools"]
    )
    ingest, search, bad = out["texts"]
    assert json.loads(ingest)["files"] == 4
    hits = json.loads(search)["results"]  # the full result is in the text Qwen-Agent's model reads
    assert "Where does Milvus store data?" in [h["heading"] for h in hits]
    assert "top_k must be" in bad
    # Qwen-Agent keeps only type/properties/required: flat parameters survive that
    schema = out["schemas"]["milvus-docs-answer_with_qwen"]
    assert {"question", "enable_thinking", "thinking_budget"} <= set(schema["properties"])
