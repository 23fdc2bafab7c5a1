"""read_context: neighbours and sections around a search hit, as a function and through an MCP session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import memory_session, payload, server_env
from tools.context import read_context
from tools.errors import UserError
from tools.ingest import ingest_text
from tools.search import search_milvus_docs
from tools.services import Services

pytestmark = pytest.mark.anyio
LONG = "# Guide\n\n## Install\n\n" + "\n\n".join(f"Step {i}: " + "do the thing carefully. " * 12 for i in range(12))
LONG += "\n\n## Verify\n\nRun the check and read its output.\n"


async def test_neighbours_and_sections(services: Services) -> None:
    await ingest_text(services, LONG, "guide.md")
    hit = (await search_milvus_docs(services, "Step 6: do the thing carefully", top_k=1)).results[0]
    around = await read_context(services, hit.chunk_id, before=1, after=1)
    indexes = [c.chunk_index for c in around.chunks]
    assert hit.chunk_id in [c.chunk_id for c in around.chunks] and indexes == list(range(indexes[0], indexes[0] + 3))
    assert hit.text in around.text and len(around.text) < sum(len(t) for t in [hit.text] * 3)  # overlaps kept once
    assert not around.first_in_document and not around.last_in_document
    section = await read_context(services, hit.chunk_id, section=True)
    assert {c.heading for c in section.chunks} == {"Install"} and section.chunks[0].chunk_index == 0
    assert all(f"Step {i}:" in section.text for i in range(12)) and "Run the check" not in section.text
    assert section.text.count("Step 6:") == 1
    last = await read_context(services, section.chunks[-1].chunk_id, before=0, after=5)
    assert last.last_in_document and "Run the check" in last.text
    with pytest.raises(UserError, match="No chunk"):
        await read_context(services, "0" * 32)
    with pytest.raises(UserError, match="after must be"):
        await read_context(services, hit.chunk_id, after=100)


async def test_read_context_over_mcp(docs: Path, tmp_path: Path) -> None:
    async with memory_session(server_env(tmp_path / "ctx.db", docs)) as session:
        await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq/product_faq.md"]})
        hit = payload(await session.call_tool("search_milvus_docs", {"query": "Where does Milvus store data?"}))["results"][0]
        result = await session.call_tool("read_context", {"chunk_id": hit["chunk_id"], "before": 2, "after": 2})
        assert not result.is_error, result.content
        assert hit["text"] in payload(result)["text"] and len(payload(result)["chunks"]) >= 3
