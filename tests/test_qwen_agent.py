"""Qwen-Agent, through its own MCP manager (on the 1.x `mcp` client), drives the real server over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.external_tools import ToolUnavailable, qwen_agent_python

pytestmark = pytest.mark.external

SERVER = "milvus-docs"


@pytest.fixture(scope="module")
def qwen_python() -> Path:
    try:
        return qwen_agent_python()
    except ToolUnavailable as exc:
        pytest.skip(str(exc))


def test_qwen_agent_lists_and_calls_the_tools(qwen_python: Path, docs: Path, tmp_path: Path) -> None:
    driver = REPO / "tests" / "qwen_agent_driver.py"
    done = subprocess.run(
        [str(qwen_python), str(driver), sys.executable, str(tmp_path / "qwen.db"), str(docs)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)

    tools = {tool["name"]: tool for tool in seen["tools"]}
    assert {f"{SERVER}-ingest_documents", f"{SERVER}-search_milvus_docs", f"{SERVER}-answer_with_qwen"} <= set(tools)
    search = tools[f"{SERVER}-search_milvus_docs"]["parameters"]
    assert search["required"] == ["query"] and {"query", "top_k"} <= set(search["properties"])

    assert seen["ingest"].startswith("1 document(s) in milvus_docs: ")  # the compact text: what its model reads
    assert "Where does Milvus store data?" in seen["search"] and "[1] milvus_docs/en/faq/product_faq.md" in seen["search"]
    # Qwen-Agent drops isError and hands the model only the text, so the text must say what is wrong
    assert "DASHSCOPE_API_KEY" in seen["answer"]


def test_the_assistant_example_builds_without_a_key_error(qwen_python: Path, tmp_path: Path) -> None:
    example = REPO / "examples" / "qwen_agent_assistant.py"
    build = (
        f"import sys; sys.path.insert(0, {str(example.parent)!r}); import qwen_agent_assistant as example; "
        f"bot = example.build_assistant('sk-placeholder', {str(tmp_path / 'example.db')!r}); "
        "print(sorted(bot.function_map))"
    )
    # Qwen-Agent makes a workspace/ folder in its working directory: keep it out of the repo
    done = subprocess.run([str(qwen_python), "-c", build], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{SERVER}-search_milvus_docs" in done.stdout

    no_key = subprocess.run(
        [str(qwen_python), str(example)],
        check=False,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_key.returncode != 0 and "DASHSCOPE_API_KEY" in no_key.stderr
