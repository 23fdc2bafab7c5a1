"""The MCP Inspector's CLI (on Node 22) starts the real server over stdio, lists its tools and calls each one.

The CLI's exit codes: 0 ok, 1 usage or connection failure, 5 a tool result with isError (or an unknown tool).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.external

QUESTION = "How is data stored in milvus?"
TOOL_ERROR = 5


def inspect(bin_dir: Path, tmp_path: Path, docs: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """One `inspector --cli` run against a fresh `python -m server`: exit code, JSON result, stderr."""
    command = [
        str(bin_dir / "inspector"),
        "--cli",
        "--format",
        "json",
        "-e",
        f"MILVUS_URI={tmp_path / 'inspector.db'}",
        "-e",
        f"INGEST_ROOTS={docs}",
        sys.executable,
        "-m",
        "server",
        *args,
    ]
    # The CLI hands its whole environment to the server: give it only PATH (Node 22 first) and a scratch HOME.
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


def test_inspector_lists_the_tools_with_portable_schemas(bin_dir: Path, tmp_path: Path, docs: Path) -> None:
    code, listed, stderr = inspect(bin_dir, tmp_path, docs, "--strict", "--method", "tools/list")
    assert code == 0, stderr  # --strict exits 6 on an error-severity schema portability problem
    tools = {tool["name"]: tool for tool in listed["result"]["tools"]}
    assert {"ingest_documents", "search_milvus_docs", "answer_with_qwen"} <= set(tools)
    assert tools["search_milvus_docs"]["annotations"]["readOnlyHint"] is True


def test_inspector_calls_each_tool(bin_dir: Path, tmp_path: Path, docs: Path) -> None:
    call = ("--method", "tools/call", "--tool-name")

    code, ingested, stderr = inspect(
        bin_dir, tmp_path, docs, *call, "ingest_documents", "--tool-arg", 'paths=["milvus_docs/en/faq/product_faq.md"]'
    )
    assert code == 0, stderr
    assert ingested["result"]["structuredContent"]["files"] == 1

    code, found, stderr = inspect(
        bin_dir, tmp_path, docs, *call, "search_milvus_docs", "--tool-arg", f"query={QUESTION}", "top_k=3"
    )
    assert code == 0, stderr
    headings = [hit["heading"] for hit in found["result"]["structuredContent"]["results"]]
    assert "Where does Milvus store data?" in headings

    code, answered, stderr = inspect(bin_dir, tmp_path, docs, *call, "answer_with_qwen", "--tool-arg", f"question={QUESTION}")
    assert code == TOOL_ERROR
    assert answered["result"]["isError"] is True
    assert "DASHSCOPE_API_KEY" in answered["result"]["content"][0]["text"]
    assert '"code":"tool_is_error"' in stderr
