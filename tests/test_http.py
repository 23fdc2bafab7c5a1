"""The streamable HTTP transport: a real server process on loopback, the `mcp` client over HTTP."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import http_server, payload, server_env

pytestmark = pytest.mark.anyio


async def test_streamable_http_serves_the_tools_and_refuses_foreign_hosts(docs: Path, tmp_path: Path) -> None:
    with http_server(server_env(tmp_path / "http.db", docs), tmp_path / "http.log") as port:
        url = f"http://127.0.0.1:{port}/mcp"
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"ingest_documents", "search_milvus_docs", "answer_with_qwen"} <= names
            await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]})
            hits = payload(await session.call_tool("search_milvus_docs", {"query": "How is data stored in milvus?"}))
            assert "Where does Milvus store data?" in [h["heading"] for h in hits["results"]]

        # DNS-rebinding protection: a request naming another host is refused
        request = urllib.request.Request(
            url,
            data=b"{}",
            method="POST",
            headers={
                "Host": "attacker.example",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 421
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        local_addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()}
        assert local_addresses == {"127.0.0.1"}  # loopback only by default
