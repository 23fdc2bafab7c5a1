"""ingest_text: a text stored under a name of the caller's choosing, as a function and over MCP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import memory_session, payload, server_env
from tools.errors import UserError
from tools.ingest import ingest_text
from tools.manage import describe_collection
from tools.search import citation, search_milvus_docs
from tools.services import Services

pytestmark = pytest.mark.anyio
NOTE = "# Standup notes\n\n## Decisions\n\nWe move the vector index to HNSW next sprint.\n\n## Risks\n\nThe GPU quota runs out.\n"


async def test_a_text_is_stored_replaced_and_found(services: Services) -> None:
    first = await ingest_text(services, NOTE, "notes/standup.md")
    assert (first.files, first.chunks_added, first.skipped) == (1, 2, [])
    again = await ingest_text(services, NOTE, "notes/standup.md")
    assert (again.chunks_added, again.chunks_unchanged, again.chunks_removed) == (0, 2, 0)  # idempotent
    hits = await search_milvus_docs(services, "Which index do we move to?", top_k=1)
    top = hits.results[0]
    assert (top.source, top.title, top.headings, top.citation) == (
        "notes/standup.md", "Standup notes", ["Standup notes", "Decisions"], "notes/standup.md",
    )  # fmt: skip
    changed = await ingest_text(services, NOTE.replace("HNSW", "IVF_FLAT"), "notes/standup.md", title="Standup")
    assert (changed.chunks_added, changed.chunks_removed) == (2, 2)  # a new title changes every chunk's hash
    report = await describe_collection(services)
    assert [(s.source, s.root, s.chunks) for s in report.listed] == [("notes/standup.md", "", 2)]
    for text, source, says in [("", "a.md", "text is empty"), ("x", "  ", "source"), ("x", "a\nb", "control")]:
        with pytest.raises(UserError, match=says):
            await ingest_text(services, text, source)


def test_citations_name_pages_and_slides() -> None:
    assert citation("guide.md", 0, 0) == "guide.md"
    assert citation("manual.pdf", 12, 12) == "manual.pdf p. 12"
    assert citation("manual.pdf", 12, 13) == "manual.pdf pp. 12-13"


async def test_ingest_text_over_mcp_and_hidden_when_read_only(tmp_path: Path) -> None:
    env = server_env(tmp_path / "text.db", tmp_path)
    async with memory_session(env) as session:
        stored = await session.call_tool("ingest_text", {"text": NOTE, "source": "notes/standup.md"})
        assert not stored.is_error and payload(stored)["chunks_added"] == 2
        bad = await session.call_tool("ingest_text", {"text": NOTE, "source": ""})
        assert bad.is_error and "source" in bad.content[0].text
    async with memory_session({**env, "READ_ONLY": "true"}) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert "ingest_text" not in names and "search_milvus_docs" in names
