"""Overhead of answer_with_qwen over a direct streaming call to the same model server, in one run.

A real model (SmolLM2-135M, llama.cpp via xllamacpp) serves on loopback. For each question the direct call
sends exactly the messages answer_with_qwen builds, streamed with the `openai` client; answer_with_qwen then
runs in-process and over MCP stdio. Runs alternate so the server's prompt cache treats all alike.
Target: overhead <= retrieval time + 10 ms, for time to first token and for total.

    .venv/bin/python bench/bench_answer.py --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from openai import AsyncOpenAI

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.llm_server import serve_local_llm
from tools.answer import answer_with_qwen, build_messages
from tools.embedders import OnnxMiniLM
from tools.ingest import ingest_documents
from tools.llm import LLMConfig
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store import Store

QUESTIONS = [
    "How is data stored in milvus?",
    "Can vectors with duplicate primary keys be inserted?",
    "How do I know if Milvus has started successfully?",
]


async def direct(client: AsyncOpenAI, messages: list[dict[str, str]]) -> tuple[float, float]:
    """(first token ms, total ms) of a plain streamed completion."""
    started = time.perf_counter()
    first = None
    stream = await client.chat.completions.create(
        model="smollm2",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - started) * 1000
    return first or 0.0, (time.perf_counter() - started) * 1000


async def run(runs: int) -> None:
    with serve_local_llm() as base_url, tempfile.TemporaryDirectory() as tmp:
        config = LLMConfig(base_url=base_url, model="smollm2", dialect="chat_template_kwargs", timeout_s=600)
        services = Services(store=Store(f"{tmp}/a.db"), embedder=OnnxMiniLM(), roots=[REPO], llm=config)
        await ingest_documents(services, ["data/milvus_docs/en/faq"])
        client = AsyncOpenAI(base_url=base_url, api_key="EMPTY")
        rows: dict[str, list[tuple[float, float, float]]] = {"direct": [], "tool": []}
        for _ in range(runs):
            for question in QUESTIONS:
                hits = (await search_milvus_docs(services, question)).results
                first, total = await direct(client, build_messages(question, hits))
                rows["direct"].append((first, total, 0.0))
                result = await answer_with_qwen(services, question, enable_thinking=False)
                t = result.timings_ms
                rows["tool"].append((t.first_token or 0.0, t.total, t.retrieval))
        await client.close()
        services.store.close()
        stdio = await over_stdio(base_url, runs)
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in rows.items()}
    d, a = med["direct"], med["tool"]
    print(f"{runs * len(QUESTIONS)} answers each, medians (ms):")
    print(f"  direct streaming call:        first token {d[0]:7.1f}   total {d[1]:7.1f}")
    print(f"  answer_with_qwen (in-process): first token {a[0]:7.1f}   total {a[1]:7.1f}   retrieval {a[2]:.1f}")
    print(f"  answer_with_qwen (over stdio): total {stdio:7.1f} (client-side wall time)")
    print(f"  overhead: first token {a[0] - d[0]:+.1f}, total {a[1] - d[1]:+.1f}; allowed: retrieval + 10 = {a[2] + 10:.1f}")


async def over_stdio(base_url: str, runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "MILVUS_URI": f"{tmp}/s.db",
            "INGEST_ROOTS": str(REPO),
            "DASHSCOPE_BASE_URL": base_url,
            "QWEN_MODEL": "smollm2",
            "LLM_DIALECT": "chat_template_kwargs",
            "LLM_TIMEOUT": "600",
        }
        params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=REPO)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("ingest_documents", {"paths": ["data/milvus_docs/en/faq"]})
            walls = []
            for _ in range(runs):
                for question in QUESTIONS:
                    started = time.perf_counter()
                    result = await session.call_tool("answer_with_qwen", {"question": question, "enable_thinking": False})
                    walls.append((time.perf_counter() - started) * 1000)
                    assert not result.is_error and result.structured_content["answer"], result.content
    return statistics.median(walls)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    anyio.run(run, parser.parse_args().runs)
