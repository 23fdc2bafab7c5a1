"""Credentials inside DASHSCOPE_BASE_URL, MILVUS_URI and EMBEDDING_BASE_URL stay out of results and logs.

Real stdio servers, the DashScope stand-in on loopback; tests/test_llm.py checks the messages of tools/llm.py itself.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import stdio_session
from tests.dashscope_stub import run_stub

pytestmark = [pytest.mark.anyio, pytest.mark.processes]
KEY = "sk-test-redaction-0123456789abcdef"
QUESTION = "How is data stored in milvus?"
FAQ_FILE = "milvus_docs/en/faq/product_faq.md"


async def test_credentials_in_the_base_url_stay_out_of_results_and_logs(docs: Path, tmp_path: Path) -> None:
    with run_stub(api_key=KEY) as stub:
        userinfo = stub.base_url.replace("http://", "http://alice:hunter2-pw@")
        query = f"{stub.base_url}?key=query-secret-42"
        for url, secret, shown in [
            (userinfo, "hunter2-pw", stub.base_url.replace("http://", "http://***@")),
            (query, "query-secret-42", f"{stub.base_url}?key=***"),
        ]:
            with tempfile.TemporaryFile("w+") as errlog:
                env = {
                    "MILVUS_URI": str(tmp_path / "answer.db"),
                    "INGEST_ROOTS": str(docs),
                    "DASHSCOPE_BASE_URL": url,
                    "DASHSCOPE_API_KEY": KEY,
                    "LLM_MAX_RETRIES": "0",
                    "LOG_LEVEL": "DEBUG",
                }
                async with stdio_session(env, errlog=errlog) as session:
                    await session.call_tool("ingest_documents", {"paths": [FAQ_FILE]})
                    result = await session.call_tool("answer_with_qwen", {"question": QUESTION})
                    assert result.is_error
                    text = result.content[0].text
                    assert secret not in text and KEY not in text and shown in text, text
                errlog.seek(0)
                log = errlog.read()
            assert log  # the server did log (DEBUG)
            assert secret not in log and KEY not in log


async def _ingest_error(env: dict[str, str], errlog: Path) -> tuple[str, str]:
    """The error text of an ingest that needs Milvus and the embedder, and the server's stderr."""
    root = errlog.parent / "root"
    root.mkdir(exist_ok=True)
    (root / "a.md").write_text("# A\n\nSome text to embed.\n")
    with open(errlog, "w") as errors:
        async with stdio_session({"INGEST_ROOTS": str(root), **env}, errlog=errors) as session:
            result: Any = await session.call_tool("ingest_documents", {"paths": ["a.md"]})
    assert result.is_error
    return result.content[0].text, errlog.read_text()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_credentials_in_milvus_uri_stay_out_of_logs(tmp_path: Path) -> None:
    uri = f"http://root:milvus-pw-123@127.0.0.1:{_closed_port()}?token=milvus-q-456"
    _, log = await _ingest_error({"MILVUS_URI": uri, "LOG_LEVEL": "DEBUG"}, tmp_path / "m.log")
    assert "milvus-pw-123" not in log and "milvus-q-456" not in log


async def test_credentials_in_milvus_uri_stay_out_of_results(tmp_path: Path) -> None:
    uri = f"http://root:milvus-pw-123@127.0.0.1:{_closed_port()}?token=milvus-q-456"
    text, _ = await _ingest_error({"MILVUS_URI": uri}, tmp_path / "m.log")
    assert "milvus-pw-123" not in text and "milvus-q-456" not in text


async def test_credentials_in_embedding_base_url_stay_out_of_results_and_logs(tmp_path: Path) -> None:
    env = {
        "MILVUS_URI": str(tmp_path / "e.db"),
        "EMBEDDING_PROVIDER": "openai",
        "EMBEDDING_MODEL": "text-embedding-v4",
        "EMBEDDING_BASE_URL": f"http://emb:emb-pw-789@127.0.0.1:{_closed_port()}/v1?key=emb-q-012",
        "LOG_LEVEL": "DEBUG",
    }
    text, log = await _ingest_error(env, tmp_path / "e.log")
    for secret in ("emb-pw-789", "emb-q-012"):
        assert secret not in log
        assert secret not in text
