"""The issue's benchmark targets, measured side by side in one run:

- init: process start to the `initialize` reply of `python -m server` over stdio (target <= 1.5 s);
- search: `search_milvus_docs` over stdio vs the same search called in-process on the same
  Milvus Lite file (targets: p50 <= 25 ms and <= 1.2x direct);
- ingest: `ingest_documents` throughput vs the raw embedder on exactly the same texts, in the
  same batches (target >= 0.9x);
- memory: per process (the stdio server, the Milvus Lite engine), peak (VmHWM) and steady (VmRSS) resident memory,
  read from /proc: after the FAQ's ingest, a warm-up and 100 searches (target: server <= 200 MB), and after an ingest
  of the whole English docs (target: server peak <= 300 MB).

    .venv/bin/python bench/bench_core.py                  # FAQ for search, whole English docs for ingest
    .venv/bin/python bench/bench_core.py --quick          # FAQ only
    .venv/bin/python bench/bench_core.py --only init,search --modes dense
    .venv/bin/python bench/bench_core.py --only memory
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TextIO, TypeVar

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
sys.path.insert(0, str(REPO))

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import LATEST_PROTOCOL_VERSION

from tools.chunking import chunk_document, embedding_text, heading_text
from tools.embedders import OnnxMiniLM
from tools.ingest import FILES_PER_BATCH, ingest_documents, read_document
from tools.paths import collect
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store import Store
from tools.store.lite_engine import LiteFiles

T = TypeVar("T")
FAQ = REPO / "data" / "milvus_docs" / "en" / "faq"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


def pct(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def time_initialize(tmp: str) -> float:
    """Seconds from spawning `python -m server` to its initialize reply; the server is then shut down cleanly."""
    env = {**os.environ, "MILVUS_URI": f"{tmp}/init.db", "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin and process.stdout
    process.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
    await process.stdin.drain()
    reply = json.loads(await process.stdout.readline())
    took = time.perf_counter() - started
    assert reply.get("id") == 1 and "result" in reply, reply
    process.stdin.close()  # end of input: the server stops and closes Milvus Lite
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
    return took


async def bench_init(runs: int = 5) -> None:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(await time_initialize(tmp))
    print(f"\n[init] process start -> initialize reply, {runs} runs (target <= 1500 ms)")
    print(f"  median {statistics.median(times) * 1000:.0f} ms   min {min(times) * 1000:.0f}   max {max(times) * 1000:.0f}")


async def bench_search(queries: list[str], modes: list[str], errlog: TextIO) -> None:
    """Each mode over stdio (one server, FAQ ingested once), then in-process on the same file."""
    stdio: dict[str, list[float]] = {}
    direct: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/search.db"
        env = {"MILVUS_URI": db, "INGEST_ROOTS": str(FAQ.parent), "LOG_LEVEL": "WARNING"}
        params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=REPO)
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("ingest_documents", {"paths": [str(FAQ)]})
            assert not result.is_error, result.content
            for mode in modes:
                stdio[mode] = []
                for query in queries[:5] + queries:  # the first 5 warm up
                    started = time.perf_counter()
                    result = await session.call_tool("search_milvus_docs", {"query": query, "mode": mode})
                    stdio[mode].append((time.perf_counter() - started) * 1000)
                    assert not result.is_error, result.content
                del stdio[mode][:5]
        # Milvus Lite allows one process per file: the server is gone now, so open the file here.
        services = Services(store=Store(db), embedder=OnnxMiniLM(), roots=[FAQ.parent])
        for mode in modes:
            direct[mode] = []
            for query in queries[:5] + queries:
                started = time.perf_counter()
                await search_milvus_docs(services, query, mode=mode)
                direct[mode].append((time.perf_counter() - started) * 1000)
            del direct[mode][:5]
        services.store.close()
    print(f"\n[search] FAQ, top_k 3, {len(queries)} queries per mode, ms (targets: stdio p50 <= 25, ratio <= 1.2x)")
    print(f"  {'mode':<7} {'path':<7} {'p50':>6} {'p90':>6} {'p99':>6}")
    for mode in modes:
        for path, times in (("stdio", stdio[mode]), ("direct", direct[mode])):
            print(f"  {mode:<7} {path:<7} " + " ".join(f"{pct(times, q):>6.1f}" for q in (0.5, 0.9, 0.99)))
        print(f"  {mode:<7} ratio stdio/direct p50: {pct(stdio[mode], 0.5) / pct(direct[mode], 0.5):.2f}x")


def batches_as_ingest_embeds(root: Path) -> tuple[int, list[list[str]]]:
    """The chunk count and the texts ingest embeds, batch by batch (chunk texts, then their headings)."""
    files = collect(["."], [root]).files
    chunks, batches = 0, []
    for at in range(0, len(files), FILES_PER_BATCH):
        texts, headings = [], []
        for found in files[at : at + FILES_PER_BATCH]:
            doc = read_document(found.path, 10 * 1024 * 1024, 2000)
            chunked = chunk_document(doc)
            texts += [embedding_text(c, doc.title) for c in chunked]
            headings += [heading_text(c, doc.title, found.source) for c in chunked]
        chunks += len(texts)
        batches.append(texts + headings)
    return chunks, batches


async def timed(work: Awaitable[T]) -> tuple[T, float, float]:
    """The result, wall seconds and this process's CPU seconds (all threads) of awaiting `work`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work
    return result, time.perf_counter() - wall, time.process_time() - cpu


async def embed_all(embedder: OnnxMiniLM, batches: list[list[str]]) -> None:
    for batch in batches:
        await embedder.embed_documents(batch)


async def bench_ingest(root: Path, label: str) -> None:
    """ingest_documents into a fresh collection vs the raw embedder on the same texts, the raw embedder
    timed before and after the ingest (the mean is used, so a change in machine load evens out)."""
    embedder = OnnxMiniLM()
    await embedder.warm_up()
    chunks, batches = batches_as_ingest_embeds(root)
    _, before_s, before_cpu = await timed(embed_all(embedder, batches))
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(store=Store(f"{tmp}/ingest.db"), embedder=embedder, roots=[root])
        await services.store.connect()
        result, ingest_s, ingest_cpu = await timed(ingest_documents(services, ["."]))
        again, again_s, _ = await timed(ingest_documents(services, ["."]))
        services.store.close()
    _, after_s, after_cpu = await timed(embed_all(embedder, batches))
    assert result.chunks_added == chunks, (result.chunks_added, chunks)
    raw_s, raw_cpu = (before_s + after_s) / 2, (before_cpu + after_cpu) / 2
    print(f"\n[ingest] {label}: {result.files} files, {chunks} chunks, {len(batches)} batches (target: ingest >= 0.9x raw)")
    print(f"  {'':<18} {'chunks/s':>8} {'wall s':>7} {'cpu s':>7}")
    print(f"  {'ingest_documents':<18} {chunks / ingest_s:>8.1f} {ingest_s:>7.1f} {ingest_cpu:>7.1f}")
    print(f"  {'raw embedder':<18} {chunks / raw_s:>8.1f} {raw_s:>7.1f} {raw_cpu:>7.1f}", end="")
    print(f"   (mean of before: {before_s:.1f} s and after: {after_s:.1f} s)")
    print(f"  ratio ingest/raw: {raw_s / ingest_s:.2f}x by wall time, {raw_cpu / ingest_cpu:.2f}x by CPU time")
    print(f"  re-ingest, nothing changed: {again.chunks_added} added, {again_s:.2f} s")


def memory_of(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, RssAnon and RssFile of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) // 1024
    return fields


def server_and_engine(db: Path) -> tuple[int, int]:
    """The pids of the server that started the file's engine, and of the engine, from the engine's record."""
    record = json.loads(LiteFiles.of(db.resolve()).record.read_text())
    return int(record["starter"]), int(record["pid"])


async def measure_server(root: Path, paths: list[str], searches: list[str], errlog: TextIO) -> dict[str, dict[str, int]]:
    """A stdio server ingests `paths`, then answers `searches` (the first 5 warm up); each process's memory then."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "memory.db"
        env = {"MILVUS_URI": str(db), "INGEST_ROOTS": str(root), "LOG_LEVEL": "WARNING"}
        params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=REPO)
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("ingest_documents", {"paths": paths})
            assert not result.is_error, result.content
            for query in searches:
                result = await session.call_tool("search_milvus_docs", {"query": query})
                assert not result.is_error, result.content
            server, engine = server_and_engine(db)
            return {"server": memory_of(server), "engine": memory_of(engine)}


async def bench_memory(queries: list[str], corpus: Path | None, errlog: TextIO) -> None:
    print("\n[memory] MB per process, from /proc (targets: server <= 200 after searches, <= 300 at an all-pages peak)")
    print(f"  {'after':<34} {'process':<7} {'peak':>6} {'steady':>6} {'anon':>6} {'file':>6}")
    runs = [("FAQ ingest + 105 searches", FAQ.parent, [str(FAQ)], queries[:105])]
    if corpus is not None:
        runs.append(("whole English docs ingest", corpus, ["."], queries[:5]))
    for label, root, paths, searches in runs:
        measured = await measure_server(root, paths, searches, errlog)
        for name, m in measured.items():
            print(f"  {label:<34} {name:<7} {m['VmHWM']:>6} {m['VmRSS']:>6} {m['RssAnon']:>6} {m['RssFile']:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="init,search,ingest,memory", help="parts to run, comma-separated")
    parser.add_argument("--quick", action="store_true", help="ingest the FAQ only, not the whole English docs")
    parser.add_argument("--queries", type=int, default=200, help="search calls per mode and path")
    parser.add_argument("--modes", default="dense,hybrid", help="search modes to time")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder with eval/ and corpus/")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    questions = [json.loads(line)["question"] for line in (args.shared / "eval" / "eval_dev.jsonl").open()]
    queries = [questions[i % len(questions)] for i in range(args.queries)]
    if "init" in parts:
        asyncio.run(bench_init())
    if "search" in parts:
        with open(os.devnull, "w") as quiet:  # the server's log
            asyncio.run(bench_search(queries, args.modes.split(","), quiet))
    if "ingest" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            if args.quick:
                root, label = FAQ.parent, "FAQ"
            else:
                with tarfile.open(args.shared / "corpus" / "milvus_docs_en_2.4.tar.gz") as tar:
                    tar.extractall(tmp, filter="data")
                root, label = Path(tmp), "whole English docs"
            asyncio.run(bench_ingest(root, label))
    if "memory" in parts:
        with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
            corpus = None
            if not args.quick:
                with tarfile.open(args.shared / "corpus" / "milvus_docs_en_2.4.tar.gz") as tar:
                    tar.extractall(tmp, filter="data")
                corpus = Path(tmp)
            asyncio.run(bench_memory(queries, corpus, quiet))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\npeak RSS: this process {own:.0f} MB" + (f", largest server process {children:.0f} MB" if children else ""))


if __name__ == "__main__":
    main()
