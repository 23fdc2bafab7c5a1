"""The `MILVUS_URI=http://...` path against a real Milvus server on loopback (Milvus Lite's engine over gRPC): two
stdio server processes sharing it, and one server in process meeting it gone and back."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import anyio
import pytest

from tests.conftest import memory_session, payload, stdio_session
from tests.milvus_lite_server import serve_milvus_lite

pytestmark = [pytest.mark.anyio, pytest.mark.milvus_server]
QUESTION = "How is data stored in milvus?"


async def test_two_mcp_servers_share_one_milvus_server(docs: Path, tmp_path: Path) -> None:
    with serve_milvus_lite(tmp_path / "shared.db") as uri:
        env = {"MILVUS_URI": uri, "INGEST_ROOTS": str(docs)}
        async with stdio_session(env) as writer, stdio_session(env) as reader:
            ingested = payload(await writer.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}))
            # seen at once by another process: no flush or wait needed
            hits = payload(await reader.call_tool("search_milvus_docs", {"query": QUESTION}))["results"]
            assert "Where does Milvus store data?" in [h["heading"] for h in hits]
            info = payload(await reader.call_tool("describe_collection", {}))
            assert info["chunks"] == ingested["chunks_added"] and info["hybrid"] is True


async def test_milvus_going_away_is_survived(docs: Path, tmp_path: Path) -> None:
    db = tmp_path / "flaky.db"
    with serve_milvus_lite(db) as uri:
        port = urlparse(uri).port
        env = {"MILVUS_URI": uri, "INGEST_ROOTS": str(docs)}
        async with memory_session(env) as session:
            first = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}))
    # Milvus has stopped: calls fail clearly...
    async with memory_session(env) as session:
        down = await session.call_tool("search_milvus_docs", {"query": QUESTION})
        assert down.is_error and uri in down.content[0].text
        # ...and once Milvus is back, the same session works again, with nothing lost
        with serve_milvus_lite(db, port=port):
            back = await session.call_tool("search_milvus_docs", {"query": QUESTION})
            assert not back.is_error, back.content[0].text
            info = payload(await session.call_tool("describe_collection", {}))
            assert info["chunks"] == first["chunks_added"]


async def test_unreachable_milvus_is_a_clear_error(docs: Path) -> None:
    async with memory_session({"MILVUS_URI": "http://127.0.0.1:9", "INGEST_ROOTS": str(docs)}) as session:
        result = await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]})
        assert result.is_error and "Could not connect to Milvus at http://127.0.0.1:9" in result.content[0].text


async def test_milvus_dropped_mid_ingest_then_the_ingest_converges(docs: Path, tmp_path: Path) -> None:
    from tests.test_reliability import _bigger_corpus, _clean_run, _stored

    corpus = _bigger_corpus(docs, copies=8)
    db = tmp_path / "dropped.db"
    with ExitStack() as milvus:
        uri = milvus.enter_context(serve_milvus_lite(db))
        env = {"MILVUS_URI": uri, "INGEST_ROOTS": str(docs)}
        async with memory_session(env) as session:
            seen = anyio.Event()
            results: list[Any] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                if done >= 16:
                    seen.set()

            async def ingest() -> None:
                results.append(await session.call_tool("ingest_documents", {"paths": [corpus]}, progress_callback=on_progress))

            async with anyio.create_task_group() as tg:
                tg.start_soon(ingest)
                await seen.wait()
                milvus.close()  # Milvus goes away in the middle of the ingest
            assert results[0].is_error and uri in results[0].content[0].text
            with serve_milvus_lite(db, port=urlparse(uri).port):
                again_result = await session.call_tool("ingest_documents", {"paths": [corpus]})
                assert not again_result.is_error, again_result.content[0].text
                again = payload(again_result)
                assert again["chunks_unchanged"] > 0
    assert _stored(db) == await _clean_run(docs, corpus, tmp_path)
