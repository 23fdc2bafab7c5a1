"""Bad input, faults, concurrency and secrets, through the real server over MCP: in process, and over stdio where a
process is killed, shared or its log read.

Every bad input must come back as an MCP error result a person can read, with the server still serving;
every fault must be survived, and the next call after it must work; nothing may be lost or leaked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FAQ, REPO, memory_session, payload, server_env, stdio_session
from tests.dashscope_stub import run_stub

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"
QUESTIONS = [
    QUESTION,
    "Is Milvus free?",
    "Can I run Milvus on ARM?",
    "How big can a dataset get?",
    "Why no vectors in etcd?",
    "Can I insert while searching?",
    "Are duplicate primary keys allowed?",
    "How long can a primary key be?",
    "What limits one insert?",
    "Does partition search load everything?",
    "Can I index after inserting?",
    "FLAT versus IVF_FLAT?",
    "When is data flushed?",
    "Why normalize vectors?",
    "L2 versus inner product?",
    "How many collections can I have?",
    "Why fewer than topk results?",
    "Largest vector dimension?",
    "How do I pick nlist and nprobe?",
]
KEY = "sk-secret-reliability-0123456789"


def _env(tmp_path: Path, docs: Path, **extra: str) -> dict[str, str]:
    return server_env(tmp_path / "r.db", docs, **extra)


@pytest.mark.slow
async def test_bad_input_gets_clear_errors_and_the_server_keeps_serving(docs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nnot for indexing\n")
    os.symlink(secret, docs / "link.md")
    odd = docs / "odd"
    odd.mkdir()
    (odd / "binary.md").write_bytes(b"\x00\x01\x02PNG")
    (odd / "latin1.md").write_bytes("# caf\xe9\n".encode("latin-1"))
    (odd / "empty.md").write_text("")
    (odd / "huge.md").write_text("# Huge\n\n" + "x " * 20_000)
    deep = docs.joinpath(*[f"d{i}" for i in range(40)])
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("# Deep\n\nA file forty folders down.\n")
    many = docs / "many"
    many.mkdir()
    for i in range(1500):
        (many / f"n{i}.txt").write_text(f"note {i}\n")

    bad_calls: list[tuple[str, dict[str, Any], str]] = [
        ("search_milvus_docs", {"query": ""}, "query is empty"),
        ("search_milvus_docs", {"query": "x" * 100_000}, "the limit is"),
        ("search_milvus_docs", {"query": QUESTION, "top_k": 0}, "top_k must be"),
        ("search_milvus_docs", {"query": QUESTION, "top_k": -3}, "top_k must be"),
        ("search_milvus_docs", {"query": QUESTION, "top_k": 10**12}, "top_k must be"),
        ("search_milvus_docs", {"query": QUESTION, "top_k": "three"}, "top_k"),
        ("search_milvus_docs", {"query": QUESTION, "collection": "nope"}, "does not exist yet"),
        ("search_milvus_docs", {"query": QUESTION, "collection": 'x" or 1==1'}, "Invalid collection name"),
        ("search_milvus_docs", {"query": QUESTION, "source": "a\nb"}, "control characters"),
        ("search_milvus_docs", {"query": QUESTION, "mode": "magic"}, "mode"),
        ("ingest_documents", {"paths": []}, "at least one"),
        ("ingest_documents", {"paths": ["missing.md"]}, "does not exist"),
        ("ingest_documents", {"paths": ["../secret.md"]}, "outside the folders"),
        ("ingest_documents", {"paths": [str(secret)]}, "outside the folders"),
        ("ingest_documents", {"paths": ["link.md"]}, "outside the folders"),
        ("ingest_documents", {"paths": ["/etc/*"]}, "outside the folders"),
        ("ingest_documents", {"paths": "not a list"}, "paths"),
        ("answer_with_qwen", {"question": QUESTION, "thinking_budget": "lots"}, "thinking_budget"),
        ("answer_with_qwen", {"question": QUESTION, "thinking_budget": 0}, "positive integer"),
        ("answer_with_qwen", {"question": QUESTION, "thinking_budget": 1.5}, "thinking_budget"),
        ("delete_documents", {"sources": ["nothing/*"]}, "No source"),
    ]
    async with memory_session(_env(tmp_path, docs, DASHSCOPE_API_KEY=KEY, MAX_FILE_MB="0.03")) as session:
        first = payload(await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]}))
        for tool, arguments, expected in bad_calls:
            result = await session.call_tool(tool, arguments)
            text = result.content[0].text
            assert result.is_error, (tool, arguments, text)
            assert expected in text, (tool, arguments, text)
            assert text != f"Error executing tool {tool}", text  # never a crash with its message hidden

        odd_result = payload(await session.call_tool("ingest_documents", {"paths": ["odd", "d0", "many"]}))
        reasons = {Path(s["path"]).name: s["reason"] for s in odd_result["skipped"]}
        assert reasons["binary.md"] == "binary file, not text"
        assert reasons["empty.md"] == "no text to index"
        assert reasons["huge.md"].startswith("larger than")
        assert odd_result["files"] == 1502  # Latin-1 text, the deep file and the 1500 notes

        # nothing lost, nothing from outside the roots, and still serving
        hits = payload(await session.call_tool("search_milvus_docs", {"query": "not for indexing", "top_k": 50}))
        assert all("not for indexing" not in h["text"] for h in hits["results"])
        info = payload(await session.call_tool("describe_collection", {"source": "milvus_docs/**"}))
        assert sum(s["chunks"] for s in info["listed"]) == first["chunks_added"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
_KEYS = [
    "query",
    "top_k",
    "source",
    "collection",
    "mode",
    "paths",
    "question",
    "thinking_budget",
    "enable_thinking",
    "sources",
    "limit",
    "prune",
    "unknown",
]
_TOOLS = ["search_milvus_docs", "ingest_documents", "answer_with_qwen", "describe_collection", "delete_documents"]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for many generated calls: (portal, session)."""
    base = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(FAQ, base / "root" / "milvus_docs")
    env = server_env(base / "fuzz.db", base / "root")
    with anyio.from_thread.start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(memory_session(env)) as session:
            portal.call(session.call_tool, "ingest_documents", {"paths": ["milvus_docs/en/faq/product_faq.md"]})
            yield portal, session


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool=st.sampled_from(_TOOLS), arguments=st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=5))
def test_arguments_of_any_shape_never_crash_the_server(
    live_server: Any, anyio_backend: str, tool: str, arguments: dict[str, Any]
) -> None:
    portal, session = live_server
    result = portal.call(session.call_tool, tool, arguments)
    if result.is_error:  # a readable refusal, never a crash with its message hidden
        assert result.content[0].text != f"Error executing tool {tool}", (tool, arguments)
    after = portal.call(session.call_tool, "search_milvus_docs", {"query": QUESTION, "collection": "milvus_docs"})
    assert not after.is_error and payload(after)["results"]


@pytest.mark.slow
async def test_twenty_calls_in_flight_and_searches_during_an_ingest(docs: Path, tmp_path: Path) -> None:
    async with memory_session(_env(tmp_path, docs)) as session:
        await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]})
        questions = QUESTIONS
        expected = {q: payload(await session.call_tool("search_milvus_docs", {"query": q}))["results"] for q in questions}
        answers: dict[str, Any] = {}

        async def ask(q: str) -> None:
            answers[q] = payload(await session.call_tool("search_milvus_docs", {"query": q}))["results"]

        async def ingest_more() -> None:
            answers["ingest"] = payload(
                await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"], "collection": "second"})
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(ingest_more)
            for q in questions:
                tg.start_soon(ask, q)
        assert answers["ingest"]["chunks_added"] > 40
        for q in questions:
            assert [h["chunk_id"] for h in answers[q]] == [h["chunk_id"] for h in expected[q]], q


@pytest.mark.slow
async def test_cancelled_ingest_then_the_same_ingest_converges(docs: Path, tmp_path: Path) -> None:
    corpus = _bigger_corpus(docs, copies=8)
    async with memory_session(_env(tmp_path, docs)) as session:
        seen = anyio.Event()

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            if done >= 16:
                seen.set()

        async def ingest() -> None:
            await session.call_tool("ingest_documents", {"paths": [corpus]}, progress_callback=on_progress)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ingest)
            await seen.wait()
            tg.cancel_scope.cancel()  # the client sends notifications/cancelled
        again = payload(await session.call_tool("ingest_documents", {"paths": [corpus]}))
        assert again["chunks_unchanged"] > 0  # the cancelled run had written some batches
    assert _stored(tmp_path / "r.db") == await _clean_run(docs, corpus, tmp_path)


@pytest.mark.slow
async def test_killed_mid_ingest_then_the_same_ingest_converges(docs: Path, tmp_path: Path) -> None:
    corpus = _bigger_corpus(docs, copies=8)
    env = {**os.environ, **_env(tmp_path, docs)}
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdin and process.stdout
    for message in (
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "ingest_documents", "arguments": {"paths": [corpus]}, "_meta": {"progressToken": "p"}},
        },
    ):
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
    for line in process.stdout:
        message = json.loads(line)
        if message.get("method") == "notifications/progress" and message["params"]["progress"] >= 16:
            process.kill()  # SIGKILL, in the middle of the ingest
            break
    process.wait()
    async with memory_session(_env(tmp_path, docs)) as session:
        again = payload(await session.call_tool("ingest_documents", {"paths": [corpus]}))
        assert again["chunks_unchanged"] > 0
    assert _stored(tmp_path / "r.db") == await _clean_run(docs, corpus, tmp_path)


@pytest.mark.slow
async def test_second_process_on_the_same_lite_file_shares_it(docs: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, docs)
    async with stdio_session(env) as first:
        await first.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq/product_faq.md"]})
        expected = payload(await first.call_tool("search_milvus_docs", {"query": QUESTION}))["results"]
        async with stdio_session(env) as second:
            found = payload(await second.call_tool("search_milvus_docs", {"query": QUESTION}))["results"]
            assert [h["chunk_id"] for h in found] == [h["chunk_id"] for h in expected]
            engine = payload(await second.call_tool("describe_collection", {}))["engine"]
            assert engine["started_here"] is False and engine["processes"] == 2
        assert not (await first.call_tool("search_milvus_docs", {"query": QUESTION})).is_error
        engine = payload(await first.call_tool("describe_collection", {}))["engine"]
        assert engine["started_here"] is True and engine["processes"] == 1


@pytest.mark.slow
async def test_model_faults_are_survived_and_the_key_never_leaks(docs: Path, tmp_path: Path) -> None:
    errlog = (tmp_path / "server.log").open("w+")
    with run_stub(api_key=KEY) as stub:
        env = _env(
            tmp_path,
            docs,
            DASHSCOPE_API_KEY=KEY,
            DASHSCOPE_BASE_URL=stub.base_url,
            LLM_MAX_RETRIES="1",
            LLM_TIMEOUT="2",
            LOG_LEVEL="DEBUG",
        )
        async with stdio_session(env, errlog=errlog) as session:
            await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]})
            faults = [
                (lambda: stub.fail_next(401), "401"),
                (lambda: stub.fail_next(429, times=2, retry_after_ms=10), "429"),
                (lambda: stub.fail_next(500, times=2, retry_after_ms=10), "500"),
                (lambda: (stub.delay_next(5), stub.delay_next(5)), "within 2 s"),  # and its retry
                (lambda: stub.cut_next(after_chunks=2), "broke"),
            ]
            texts = []
            for inject, expected in faults:
                inject()
                result = await session.call_tool("answer_with_qwen", {"question": QUESTION})
                texts.append(result.content[0].text)
                assert result.is_error and expected in result.content[0].text, result.content[0].text
                healthy = await session.call_tool("answer_with_qwen", {"question": QUESTION})
                assert not healthy.is_error, healthy.content[0].text
                texts.append(healthy.content[0].text)
    errlog.seek(0)
    assert all(KEY not in text for text in texts)
    assert KEY not in errlog.read()


def _bigger_corpus(docs: Path, copies: int) -> str:
    """The FAQ copied `copies` times, each copy's text made distinct, inside the roots."""
    target = docs / "bigger"
    for n in range(copies):
        for page in (FAQ / "en" / "faq").glob("*.md"):
            text = page.read_text().replace("Milvus", f"Milvus{n}")
            (target / f"copy{n}").mkdir(parents=True, exist_ok=True)
            (target / f"copy{n}" / page.name).write_text(text)
    return "bigger"


def _stored(db: Path) -> list[tuple[str, str, str, int]]:
    """Every stored chunk, as (id, source, content hash, index), sorted."""
    from pymilvus import MilvusClient

    client = MilvusClient(str(db))
    try:
        client.load_collection("milvus_docs")
        iterator = client.query_iterator("milvus_docs", batch_size=1000, output_fields=["source", "content_hash", "chunk_index"])
        rows: list[dict[str, Any]] = []
        while batch := iterator.next():
            rows.extend(batch)
        iterator.close()
    finally:
        client.close()
    return sorted((r["id"], r["source"], r["content_hash"], r["chunk_index"]) for r in rows)


async def _clean_run(docs: Path, corpus: str, tmp_path: Path) -> list[tuple[str, str, str, int]]:
    clean = tmp_path / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    clean.mkdir()
    async with memory_session(_env(clean, docs)) as session:
        await session.call_tool("ingest_documents", {"paths": [corpus]})
    return _stored(clean / "r.db")
