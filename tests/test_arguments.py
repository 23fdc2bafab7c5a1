"""Tool arguments: a bad one is explained in a line that names it, an unknown one is refused, not ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import memory_session, server_env

pytestmark = pytest.mark.anyio


async def _error(session: object, tool: str, arguments: dict[str, object]) -> str:
    result = await session.call_tool(tool, arguments)  # type: ignore[attr-defined]
    assert result.is_error, result
    text = result.content[0].text
    for internal in ("pydantic", "Arguments", "validation error", "https://"):
        assert internal not in text, text
    return str(text)


async def test_bad_arguments_are_named_with_what_they_allow(tmp_path: Path) -> None:
    async with memory_session(server_env(tmp_path / "milvus.db", tmp_path)) as session:
        text = await _error(session, "search_milvus_docs", {"query": "vector index", "top_k": "five"})
        assert text.endswith("top_k='five' is not a whole number"), text
        text = await _error(session, "search_milvus_docs", {"top_k": 3})
        assert "query is required: a string" in text
        text = await _error(session, "search_milvus_docs", {"query": "x", "mode": "fuzzy"})
        assert "mode='fuzzy' is not one of dense, bm25, hybrid (or null for the default)" in text
        text = await _error(session, "ingest_documents", {"paths": "docs"})
        assert "paths='docs' is not a list of strings" in text
        text = await _error(session, "read_context", {"chunk_id": 7, "before": True, "after": [1]})
        assert "chunk_id=7 is not a string" in text and "after=[1] is not a whole number" in text
        assert len(text.splitlines()) == 2, text  # a line per bad argument (a JSON true is a fine 1 for pydantic)
        huge = "x" * 200_000
        text = await _error(session, "search_milvus_docs", {"query": "x", "top_k": huge})
        assert len(text) < 300, len(text)  # the value is echoed cut short


async def test_unknown_arguments_are_refused_with_the_ones_the_tool_takes(tmp_path: Path) -> None:
    async with memory_session(server_env(tmp_path / "milvus.db", tmp_path)) as session:
        text = await _error(session, "search_milvus_docs", {"query": "vector index", "topk": 5})
        assert "search_milvus_docs takes no argument 'topk' (did you mean top_k?)" in text
        assert "search_milvus_docs takes: query, top_k, " in text  # and the rest, in order
        text = await _error(session, "drop_collection", {"collection": "milvus_docs", "force": True})
        assert "takes no argument 'force'" in text and "takes: collection" in text
        assert not (tmp_path / "milvus.db").exists()  # refused before anything ran
        for tool in (await session.list_tools()).tools:
            assert tool.input_schema["additionalProperties"] is False, tool.name
