"""Core figures, measured side by side in one run:

- start-up: process start to the `initialize` reply of `python -m server` over stdio;
- search: `search_milvus_docs` over stdio vs the same work called directly (embed + Milvus search);
- ingest: `ingest_documents` throughput vs the raw embedder on exactly the same texts.

    .venv/bin/python bench/bench_core.py                  # FAQ for search, whole English docs for ingest
    .venv/bin/python bench/bench_core.py --quick          # FAQ only
    .venv/bin/python bench/bench_core.py --only init,search
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from tools.chunking import chunk_markdown, embedding_text, heading_text  # noqa: E402
from tools.embedders import OnnxMiniLM  # noqa: E402
from tools.ingest import FILES_PER_BATCH, ingest_documents  # noqa: E402
from tools.search import retrieve  # noqa: E402
from tools.services import Services  # noqa: E402
from tools.store import Store  # noqa: E402

FAQ = REPO / "data" / "milvus_docs"
SHARED = REPO.parent / "shared"
INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_init(runs: int = 5) -> None:
    """Process start to the initialize reply, median of `runs`."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "MILVUS_URI": f"{tmp}/init.db"}
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "server"], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True,
            )
            assert process.stdin and process.stdout
            process.stdin.write(json.dumps(INITIALIZE) + "\n")
            process.stdin.flush()
            reply = json.loads(process.stdout.readline())
            times.append(time.perf_counter() - started)
            assert reply["id"] == 1 and "result" in reply
            process.kill()
            process.wait()
    print(f"start-up to initialize reply: median {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; {runs} runs; target <= 1500 ms)")


async def bench_search(queries: list[str], mode: str) -> None:
    """p50/p99 of search over stdio, then the same retrieval called in-process on the same file."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MILVUS_URI": f"{tmp}/search.db", "INGEST_ROOTS": str(REPO), "SEARCH_MODE": mode}
        params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=REPO)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("ingest_documents", {"paths": [str(FAQ / "en" / "faq")]})
            for q in queries[:5]:
                await session.call_tool("search_milvus_docs", {"query": q})
            over_stdio = []
            for q in queries:
                started = time.perf_counter()
                result = await session.call_tool("search_milvus_docs", {"query": q})
                over_stdio.append((time.perf_counter() - started) * 1000)
                assert not result.is_error
        services = Services(store=Store(f"{tmp}/search.db"), embedder=OnnxMiniLM(), roots=[REPO], search_mode=mode)
        for q in queries[:5]:
            await retrieve(services, q)
        direct = []
        for q in queries:
            started = time.perf_counter()
            await retrieve(services, q)
            direct.append((time.perf_counter() - started) * 1000)
        services.store.close()
    p50_stdio, p50_direct = percentile(over_stdio, 0.5), percentile(direct, 0.5)
    print(f"search ({mode}, FAQ, {len(queries)} queries): over stdio p50 {p50_stdio:.1f} ms, p99 "
          f"{percentile(over_stdio, 0.99):.1f} ms | direct p50 {p50_direct:.1f} ms, p99 {percentile(direct, 0.99):.1f} ms"
          f" | ratio {p50_stdio / p50_direct:.2f}x (targets: p50 <= 25 ms, <= 1.2x)")


async def bench_ingest(corpus: Path) -> None:
    """ingest_documents vs the raw embedder on the same texts, in the same batches."""
    with tempfile.TemporaryDirectory() as tmp:
        embedder = OnnxMiniLM()
        await embedder.warm_up()
        services = Services(store=Store(f"{tmp}/ingest.db"), embedder=embedder, roots=[corpus])
        started = time.perf_counter()
        result = await ingest_documents(services, ["."])
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        again = await ingest_documents(services, ["."])
        again_s = time.perf_counter() - started
        services.store.close()
    files = sorted(p for p in corpus.rglob("*.md"))
    batches = []
    for at in range(0, len(files), FILES_PER_BATCH):
        texts, headings = [], []
        for path in files[at : at + FILES_PER_BATCH]:
            doc = chunk_markdown(path.read_text(encoding="utf-8-sig"))
            source = path.relative_to(corpus).as_posix()
            texts += [embedding_text(c, doc.title) for c in doc.chunks]
            headings += [heading_text(c, doc.title, source) for c in doc.chunks]
        batches.append(texts + headings)
    chunks = sum(len(b) for b in batches) // 2
    started = time.perf_counter()
    for batch in batches:
        await embedder.embed_documents(batch)
    raw_s = time.perf_counter() - started
    print(f"ingest ({result.files} files, {result.chunks_added} chunks): {result.chunks_added / ingest_s:.1f} chunks/s "
          f"({ingest_s:.1f} s) | raw embedder on the same {chunks} chunks: {chunks / raw_s:.1f} chunks/s ({raw_s:.1f} s)"
          f" | ratio {raw_s / ingest_s:.2f}x (target >= 0.9x)")
    print(f"re-ingest unchanged: {again.chunks_added} added, {again_s:.2f} s = {again_s / ingest_s:.1%} of the first")


def corpus_dir(quick: bool, tmp: str) -> Path:
    if quick:
        return FAQ
    with tarfile.open(SHARED / "corpus" / "milvus_docs_en_2.4.tar.gz") as tar:
        tar.extractall(tmp, filter="data")
    return Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="init,search,ingest")
    parser.add_argument("--quick", action="store_true", help="ingest the FAQ only, not the whole English docs")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--modes", default="hybrid,dense")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    eval_file = SHARED / "eval" / "eval_dev.jsonl"
    questions = [json.loads(line)["question"] for line in eval_file.open()] if eval_file.exists() else []
    queries = [questions[i % len(questions)] for i in range(args.queries)] if questions else ["How is data stored?"]
    if "init" in parts:
        bench_init()
    if "search" in parts:
        for mode in args.modes.split(","):
            asyncio.run(bench_search(queries, mode))
    if "ingest" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(bench_ingest(corpus_dir(args.quick, tmp)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
