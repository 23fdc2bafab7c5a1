"""Scale: ingest a synthetic corpus (../shared/tools/make_scale_corpus.py) through the real server over stdio,
then search it, and report throughput, the server's memory during the ingest, and search latency.

    .venv/bin/python bench/bench_scale.py --docs 1000                      # the local ONNX model
    .venv/bin/python bench/bench_scale.py --docs 30000 --embedder stand-in # pipeline overhead only
    .venv/bin/python bench/bench_scale.py --docs 10000 --milvus lite-server     # Milvus Lite's engine over gRPC
    .venv/bin/python bench/bench_scale.py --docs 10000 --milvus standalone      # Milvus 2.3.5 standalone (make test installs it)

`--embedder stand-in` points the server at tests/embeddings_stub.py, a loopback OpenAI-compatible endpoint
that hashes words into vectors in microseconds: it measures the pipeline (reading, chunking, HTTP, Milvus)
without the model, and its search results mean nothing. Figures from it are labelled as such.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from tests.embeddings_stub import run_embeddings_stub
from tests.milvus_lite_server import serve_milvus_lite
from tests.milvus_server import serve_milvus_standalone


def make_corpus(docs: int) -> Path:
    out = REPO / "bench" / "out" / f"scale_{docs}"
    if not (out / "MANIFEST.json").exists():
        subprocess.run(
            [
                sys.executable,
                str(SHARED / "tools" / "make_scale_corpus.py"),
                str(docs),
                "--out",
                str(out),
                "--workers",
                "2",
                "--src",
                str(SHARED / "corpus" / "milvus_docs_en_2.4.tar.gz"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def server_pid() -> int:
    """The `python -m server` child of this process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and cmdline[1:3] == [b"-m", b"server"]:
            return int(entry.name)
    raise RuntimeError("server process not found")


class RssSampler:
    """Samples a process's resident memory every 0.5 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append(int(line.split()[1]) / 1024)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def run(args: argparse.Namespace) -> None:
    corpus = make_corpus(args.docs)
    files = sum(1 for _ in corpus.rglob("*.md"))
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        env = {"INGEST_ROOTS": str(corpus), "MILVUS_URI": f"{tmp}/scale.db", "LOG_LEVEL": "WARNING"}
        if args.milvus == "lite-server":
            env["MILVUS_URI"] = stack.enter_context(serve_milvus_lite(Path(tmp) / "served.db"))
        elif args.milvus == "standalone":
            env["MILVUS_URI"] = stack.enter_context(serve_milvus_standalone())
        label = "local ONNX all-MiniLM-L6-v2"
        if args.embedder == "stand-in":
            stub = stack.enter_context(run_embeddings_stub("sk-bench"))
            stub.delay_s = 0
            env |= stub.settings(512)
            label = "STAND-IN embedder (hashed words over loopback HTTP; pipeline overhead only)"
        params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=REPO)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            started = time.perf_counter()
            with RssSampler(server_pid()) as rss:
                result = await session.call_tool("ingest_documents", {"paths": ["docs"]}, read_timeout_seconds=86400)
            took = time.perf_counter() - started
            first = result.structured_content
            started = time.perf_counter()
            again = (await session.call_tool("ingest_documents", {"paths": ["docs"]})).structured_content
            again_s = time.perf_counter() - started
            mode, latencies = await searches(session, args.searches)
            indexed = []
            if args.milvus == "standalone":  # a server builds indexes in the background after the flush
                index_s = await anyio.to_thread.run_sync(wait_for_index, env["MILVUS_URI"], first["collection"])
                indexed = (await searches(session, args.searches))[1]
    chunks = first["chunks_added"]
    quarters = [rss.samples[min(len(rss.samples) - 1, len(rss.samples) * q // 4)] for q in (1, 2, 3, 4)]
    print(f"embedder: {label}; Milvus: {args.milvus}")
    print(f"ingest: {files} files, {chunks} chunks in {took:.1f} s = {chunks / took:.1f} chunks/s, {files / took:.1f} files/s")
    print(
        f"server RSS during ingest: peak {max(rss.samples):.0f} MB; at 25/50/75/100%: "
        + " / ".join(f"{q:.0f}" for q in quarters)
        + " MB"
    )
    print(f"re-ingest unchanged: {again['chunks_added']} added in {again_s:.1f} s ({again_s / took:.1%} of the first)")
    print(
        f"search over stdio ({args.searches} queries, {mode}, {chunks} chunks), right after the ingest: {percentiles(latencies)}"
    )
    if indexed:
        print(f"search over stdio once the server finished indexing ({index_s:.0f} s later): {percentiles(indexed)}")


async def searches(session: ClientSession, count: int) -> tuple[str, list[float]]:
    """The mode the server used and the latency of each of `count` searches with the dev questions, in ms."""
    queries = [json.loads(line)["question"] for line in (SHARED / "eval" / "eval_dev.jsonl").open()]
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        found = await session.call_tool("search_milvus_docs", {"query": queries[i % len(queries)]})
        latencies.append((time.perf_counter() - started) * 1000)
    return found.structured_content["mode"], latencies


def percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    return f"p50 {ordered[len(ordered) // 2]:.1f} ms, p99 {ordered[int(len(ordered) * 0.99)]:.1f} ms"


def wait_for_index(uri: str, collection: str, timeout_s: float = 1800) -> float:
    """Seconds until Milvus reports no rows waiting for the vector index."""
    from pymilvus import MilvusClient

    client, started = MilvusClient(uri=uri), time.perf_counter()
    try:
        while client.describe_index(collection, "vector").get("pending_index_rows", 0) > 0:
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"the index of {collection} was still building after {timeout_s:g} s")
            time.sleep(1)
        return time.perf_counter() - started
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--embedder", choices=["local", "stand-in"], default="local")
    parser.add_argument("--milvus", choices=["lite", "lite-server", "standalone"], default="lite")
    parser.add_argument("--searches", type=int, default=200)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
