"""What an agent meets, driving the server over MCP (in process) with only the tool descriptions (issue #15).

The server runs as the README sets it up: from the repo root, INGEST_ROOTS the repo, the FAQ in data/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, memory_session, payload, server_env

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"


def _text(result: object) -> str:
    return result.content[0].text  # type: ignore[attr-defined]


async def test_an_agent_finds_filters_reads_around_and_gets_compact_results(tmp_path: Path) -> None:
    env = server_env(tmp_path / "agent.db", REPO)
    async with memory_session(env) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        for tool in tools.values():  # the listing says each thing once: no `Top K` title for top_k, no indents
            assert all("title" not in field for field in tool.input_schema["properties"].values()), tool.name
            assert "\n    " not in (tool.description or ""), tool.name
        described = await session.call_tool("describe_collection", {})  # a fresh store is not an error
        assert not described.is_error and payload(described) | {"collections": []} == payload(described)
        assert payload(described)["exists"] is False
        assert "mostly in" not in (tools["search_milvus_docs"].description or "")  # nothing stored yet
        assert not (await session.call_tool("ingest_documents", {"paths": ["data/milvus_docs"]})).is_error
        listed = {t.name: t for t in (await session.list_tools()).tools}  # now the listing names their language
        assert "The documents in milvus_docs are mostly in English: write queries in English." in (
            listed["search_milvus_docs"].description or ""
        )

        # the schema's source examples name no corpus of ours, and a pattern of their form works in this setup
        schema_text = tools["search_milvus_docs"].input_schema["properties"]["source"]["description"]
        assert "E.g. docs/**/*.pdf, *guide*," in schema_text and "faq" not in schema_text
        found = await session.call_tool("search_milvus_docs", {"query": QUESTION, "source": "*faq*"})
        hits = payload(found)["results"]
        assert len(hits) == 3 and all("/faq/" in h["source"] for h in hits)

        # compact: the text a model reads is at most 1.25x the passages it carries, and names each heading once
        text = _text(found)
        passages = sum(len(h["text"]) for h in hits)
        assert len(text) <= 1.25 * passages, (len(text), passages)
        assert text.count("Where does Milvus store data?") == 1

        # an empty filter says so, and names sources that exist
        missing = await session.call_tool("search_milvus_docs", {"query": QUESTION, "source": "en/fqa/*.md"})
        assert payload(missing)["results"] == [] and "No document matches" in _text(missing)
        assert "data/milvus_docs/en/faq/" in _text(missing)

        # the short id shown in the text is enough to read around the hit
        short = re.search(r"· id ([0-9a-f]{12})", text)
        assert short is not None
        around = await session.call_tool("read_context", {"chunk_id": short.group(1), "before": 1, "after": 1})
        assert not around.is_error and hits[0]["text"].splitlines()[-1] in _text(around)

        # the tutorial's prompt as an MCP prompt, with the passages filled in
        prompts = {p.name for p in (await session.list_prompts()).prompts}
        assert "ask_docs" in prompts
        prompt = await session.get_prompt("ask_docs", {"question": QUESTION})
        message = prompt.messages[0].content.text  # type: ignore[union-attr]
        assert "<context>" in message and f"<question>\n{QUESTION}\n</question>" in message and "[1] data/" in message

        # the stored documents as resources
        resources = (await session.list_resources()).resources
        uris = [str(r.uri) for r in resources]
        assert "milvus-docs://milvus_docs/data/milvus_docs/en/faq/product_faq.md" in uris
        read = await session.read_resource("milvus-docs://milvus_docs/data/milvus_docs/en/faq/product_faq.md")
        assert "Where does Milvus store data?" in read.contents[0].text  # type: ignore[union-attr]

        # collections: a mistyped one is listed by describe, and dropped by its exact name
        await session.call_tool(
            "ingest_text", {"text": "# Typo\n\nWrong place.\n", "source": "t.md", "collection": "milvus_dcos"}
        )
        listed = payload(await session.call_tool("describe_collection", {}))["collections"]
        assert listed == ["milvus_dcos", "milvus_docs"]
        dropped = await session.call_tool("drop_collection", {"collection": "milvus_dcos"})
        assert payload(dropped) == {"collection": "milvus_dcos", "chunks_removed": 1, "collections": ["milvus_docs"]}
        again = await session.call_tool("drop_collection", {"collection": "milvus_dcos"})
        assert again.is_error and "no collection 'milvus_dcos'" in _text(again)


async def test_reads_on_a_mistyped_store_create_nothing(tmp_path: Path) -> None:
    uri = tmp_path / "typo" / "folder" / "store.db"
    async with memory_session(server_env(uri, tmp_path)) as session:
        await session.list_tools()  # which looks up the documents' language
        await session.list_resources()
        described = payload(await session.call_tool("describe_collection", {}))
        assert described["exists"] is False and described["collections"] == []
        searched = await session.call_tool("search_milvus_docs", {"query": QUESTION})
        assert searched.is_error and "does not exist yet" in _text(searched)
    assert not (tmp_path / "typo").exists()
