"""End to end: the real server over stdio, the real model, a real Milvus Lite file; and the log messages a client
gets, over MCP in process."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import LoggingMessageNotificationParams

from tests.conftest import memory_session, payload, server_env, stdio_session

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"


async def test_ingest_search_reingest_and_refusals(docs: Path, tmp_path: Path) -> None:
    env = {"MILVUS_URI": str(tmp_path / "e2e.db"), "INGEST_ROOTS": str(docs)}
    async with stdio_session(env) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert {"ingest_documents", "search_milvus_docs"} <= set(tools)
        assert tools["search_milvus_docs"].annotations.read_only_hint is True
        assert set(tools["search_milvus_docs"].input_schema["properties"]) == {
            "query",
            "top_k",
            "source",
            "collection",
            "mode",
            "where",
        }

        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total, message))

        result = await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}, progress_callback=on_progress)
        assert not result.is_error, result.content
        first = payload(result)
        assert first["files"] == 4 and first["chunks_added"] > 40
        assert result.structured_content == first
        assert progress and progress[-1][0] == progress[-1][1] == 4

        result = await session.call_tool("search_milvus_docs", {"query": QUESTION})
        assert not result.is_error
        hits = payload(result)["results"]
        assert len(hits) == 3
        assert "Where does Milvus store data?" in [h["heading"] for h in hits]
        assert {"rank", "score", "source", "heading", "text", "chunk_id"} <= set(hits[0])

        again = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}))
        assert again["chunks_added"] == 0 and again["chunks_unchanged"] == first["chunks_added"]

        outside = await session.call_tool("ingest_documents", {"paths": [str(tmp_path)]})
        assert outside.is_error
        assert "outside the folders this server may read" in outside.content[0].text

        bad = await session.call_tool("search_milvus_docs", {"query": QUESTION, "top_k": 0})
        assert bad.is_error and "top_k must be" in bad.content[0].text

        # the server is still serving after the errors
        assert len(payload(await session.call_tool("search_milvus_docs", {"query": QUESTION}))["results"]) == 3


async def test_log_messages_follow_the_clients_level(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "notes.md").write_text("# Notes\n\nMilvus keeps vectors in collections.\n")
    (root / "blob.md").write_bytes(b"\x00\x01 not text")
    (root / "photo.xyz").write_bytes(b"\x89PNG")
    messages: list[tuple[str, str]] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        assert params.logger == "milvus-qwen"
        messages.append((params.level, params.data))

    async with memory_session(server_env(tmp_path / "log.db", root), logging_callback=on_log) as session:
        assert session.server_capabilities.logging is not None
        assert not (await session.call_tool("ingest_documents", {"paths": [str(root)]})).is_error
        assert [level for level, _ in messages] == ["info", "warning", "warning"]
        assert "1 chunks added" in messages[0][1] and "Skipped 2 file(s)" in messages[0][1]
        assert sorted(text for _, text in messages[1:]) == [  # in the order the files were met
            f"Skipped {root / 'blob.md'}: binary file, not text",
            f"Skipped {root / 'photo.xyz'}: unsupported file type .xyz",
        ]

        messages.clear()
        with pytest.warns(MCPDeprecationWarning):
            await session.set_logging_level("warning")
        assert not (await session.call_tool("ingest_documents", {"paths": [str(root)]})).is_error
        assert [level for level, _ in messages] == ["warning", "warning"]
