"""Scale: ingest a synthetic corpus (../shared/tools/make_scale_corpus.py) through the real server over stdio,
then search it, and report throughput, the server's memory during the ingest, and search latency.

    .venv/bin/python bench/bench_scale.py --docs 1000                      # the local ONNX model
    .venv/bin/python bench/bench_scale.py --docs 30000 --embedder stand-in # pipeline overhead only
    .venv/bin/python bench/bench_scale.py --docs 10000 --milvus lite-server     # Milvus Lite's engine over gRPC
    .venv/bin/python bench/bench_scale.py --docs 10000 --milvus standalone      # Milvus 2.3.5 standalone (make test installs it)

    nice -n 19 .venv/bin/python bench/bench_scale.py --direct --milvus standalone --sizes 10000,100000
    nice -n 19 .venv/bin/python bench/bench_scale.py --direct --milvus lite --sizes 10000,100000,250000
    nice -n 19 .venv/bin/python bench/bench_scale.py --direct --milvus standalone --indexes HNSW --sizes 10000,100000,1000000

`--direct` measures the store at scale without a model or files: chunks of real-looking text (the documents of
make_scale_corpus.py's JSONL, cut at paragraphs to at most 1,000 characters, cycled with new ids and sources
when more chunks are asked for than it has) with random unit vectors (384 dims), written through our store's
write path (`Store.upsert`, 1,000 rows a call; no reading, chunking or embedding), grown to each size in turn;
at each size, once the server's index is built, dense searches (top 3, with rows) through our `Store` and
through pymilvus called directly with the same parameters and filter, in the same process, side by side. On a
server each size runs twice, HNSW (DENSE_INDEX's defaults) and AUTOINDEX; Lite builds no HNSW. The memory is this
process's RSS, which holds the store and nothing of the data after each write.

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
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from tests.embeddings_stub import run_embeddings_stub
from tests.milvus_lite_server import serve_milvus_lite
from tests.milvus_server import serve_milvus_standalone
from tools.store import ChunkRow, DenseIndex, Store
from tools.store import filters as store_filters


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
    """Seconds until Milvus reports every row in the vector index (Milvus 2.3 goes on reporting every row as
    pending long after that, while it re-indexes compacted segments)."""
    from pymilvus import MilvusClient

    client, started = MilvusClient(uri=uri), time.perf_counter()
    try:
        while (index := client.describe_index(collection, "vector")).get("indexed_rows", 0) < index.get("total_rows", 0):
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"the index of {collection} was still building after {timeout_s:g} s")
            time.sleep(1)
        return time.perf_counter() - started
    finally:
        client.close()


DIM = 384
WRITE_BATCH = 1000
FILTER_GLOB = "/docs/0001/*"  # one folder of 20: 5% of the chunks (Milvus 2.3 matches only prefixes in `like`)


def chunk_texts(corpus: Path) -> list[tuple[str, str, list[str]]]:
    """(title, text, headings) of chunks of at most 1,000 characters cut at paragraph breaks."""
    chunks = []
    for line in (corpus / "corpus.jsonl").open(encoding="utf-8"):
        doc = json.loads(line)
        heading, piece = doc["title"], ""
        for para in doc["text"].split("\n\n"):
            if para.startswith("#"):
                heading = para.lstrip("# ").strip()[:200]
            if piece and len(piece) + len(para) > 1000:
                chunks.append((doc["title"], piece, [doc["title"], heading]))
                piece = ""
            piece = f"{piece}\n\n{para}" if piece else para[:1000]
        if piece:
            chunks.append((doc["title"], piece, [doc["title"], heading]))
    return chunks


def unit_vectors(rng: Any, count: int) -> Any:
    vectors = rng.standard_normal((count, DIM), dtype="float32")
    return vectors / (vectors**2).sum(axis=1, keepdims=True) ** 0.5


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def grow(
    store: Store, name: str, texts: list[tuple[str, str, list[str]]], start: int, end: int, rng: Any
) -> tuple[float, float]:
    """Write chunks start..end through Store.upsert, then flush; the seconds each took (vectors made outside the
    clock)."""
    took = 0.0
    for at in range(start, end, WRITE_BATCH):
        count = min(WRITE_BATCH, end - at)
        vectors = unit_vectors(rng, count).tolist()
        rows = []
        for k in range(count):
            i = at + k
            title, text, headings = texts[i % len(texts)]
            rows.append(ChunkRow(
                id=f"{i:016x}", source=f"docs/{(i // 3) % 20:04d}/scale_{i // 3:07d}.md", root="", title=title,
                headings=headings, text=text, chunk_index=i % 3, content_hash=f"{i:016x}", lang="en",
                vector=vectors[k], heading_vector=vectors[k],
            ))  # fmt: skip
        started = time.perf_counter()
        await store.upsert(name, rows)
        took += time.perf_counter() - started
    started = time.perf_counter()
    await store.flush(name)
    return took, time.perf_counter() - started


async def direct_write_rates(uri: str, texts: list[tuple[str, str, list[str]]], count: int, rng: Any) -> dict[str, float]:
    """Rows/s of pymilvus `upsert` (the call our store makes) and `insert`, called directly with the same rows and
    batch size, into a scratch collection."""
    from pymilvus import MilvusClient

    from tools.store.schema import to_entity

    store = Store(uri)
    info = await store.ensure("scale_direct_write", "stand-in-random", DIM)
    client = store.connection.client() if store.connection.is_lite else MilvusClient(uri=uri)  # Lite: its one engine
    rates = {}
    for call in ("upsert", "insert"):
        took = 0.0
        for at in range(0, count, WRITE_BATCH):
            vectors = unit_vectors(rng, WRITE_BATCH).tolist()
            rows = [
                to_entity(ChunkRow(f"{call}{at + k:015x}", "docs/x.md", "", t[0], t[2], t[1], 0, "h", lang="en",
                                   vector=vectors[k], heading_vector=vectors[k]), info)
                for k, t in enumerate(texts[at : at + WRITE_BATCH])
            ]  # fmt: skip
            started = time.perf_counter()
            await anyio.to_thread.run_sync(getattr(client, call), "scale_direct_write", rows)
            took += time.perf_counter() - started
        rates[call] = count / took
    client.drop_collection("scale_direct_write")
    if not store.connection.is_lite:
        client.close()
    store.close()
    return rates


async def search_side_by_side(store: Store, uri: str, name: str, searches: int, rng: Any) -> dict[str, list[float]]:
    """ms per search, ours and direct, filters off and on, taking turns query by query."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri) if not store.connection.is_lite else None
    info = await store.info(name)
    assert info is not None
    output = info.row_fields
    times: dict[str, list[float]] = {k: [] for k in ("ours", "direct", "ours+filter", "direct+filter")}
    like = store_filters.like("source", FILTER_GLOB)

    def direct(vector: list[float], expr: str) -> Any:
        searcher = client if client is not None else store.connection.client()  # Lite: the file's one engine
        return searcher.search(
            name, [vector], anns_field="vector", limit=3, filter=expr, output_fields=output,
            search_params=info.index.search_params(3), consistency_level="Session",
        )  # fmt: skip

    async def ours(vector: list[float], glob: str | None) -> None:
        assert len(await store.search_dense(name, vector, 3, source=glob)) == 3

    async def theirs(vector: list[float], glob: str | None) -> None:
        await anyio.to_thread.run_sync(direct, vector, like if glob else "")

    for turn in range(searches):
        vector = unit_vectors(rng, 1)[0].tolist()
        for label, glob in (("", None), ("+filter", FILTER_GLOB)):
            pair = (("ours", ours), ("direct", theirs))
            for path, search in pair if turn % 2 else pair[::-1]:  # who goes first (and warms caches) alternates
                started = time.perf_counter()
                await search(vector, glob)
                times[path + label].append((time.perf_counter() - started) * 1000)
    if client is not None:
        client.close()
    return times


async def run_direct(args: argparse.Namespace) -> None:
    import numpy as np

    corpus = REPO / "bench" / "out" / "scale_jsonl_20000"
    if not (corpus / "corpus.jsonl").exists():
        subprocess.run(  # noqa: ASYNC221 (once, before anything is timed)
            [sys.executable, str(SHARED / "tools" / "make_scale_corpus.py"), "20000", "--out", str(corpus), "--format",
             "jsonl", "--workers", "2", "--src", str(SHARED / "corpus" / "milvus_docs_en_2.4.tar.gz")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    texts = chunk_texts(corpus)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"text: {len(texts)} chunks from 20,000 synthetic documents, cycled; vectors: random unit, {DIM} dims")
    print(f"Milvus: {args.milvus}; searches: {args.searches} per row, top 3 with rows; filter: source={FILTER_GLOB!r}")
    print(f"process RSS at start: {rss_mb():.0f} MB")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        uri = f"{tmp}/scale.db"
        if args.milvus == "standalone":
            uri = stack.enter_context(serve_milvus_standalone())
        elif args.milvus == "lite-server":
            uri = stack.enter_context(serve_milvus_lite(Path(tmp) / "served.db"))
        rng = np.random.default_rng(24)
        rates = await direct_write_rates(uri, texts, 5000, rng)
        print(
            f"pymilvus called directly, same rows, {WRITE_BATCH} a call, 5,000 rows, no flush: "
            f"upsert {rates['upsert']:.0f} rows/s, insert {rates['insert']:.0f} rows/s"
        )
        backend = ["HNSW", "AUTOINDEX"] if args.milvus == "standalone" else ["AUTOINDEX"]
        types = args.indexes.split(",") if args.indexes else backend
        indexes = [DenseIndex.chosen(t) for t in types]  # type: ignore[arg-type]
        print(
            f"  {'index':<10} {'chunks':>8} {'upsert rows/s':>13} {'flush+index s':>13} {'RSS MB':>6}  {'path':<14} {'p50 ms':>7}"
            f" {'p99 ms':>7} {'ratio p50':>9} {'ratio p99':>9}"
        )
        for dense in indexes:
            name = f"scale_{dense.type.lower()}"
            store = Store(uri, dense_index=dense)
            await store.ensure(name, "stand-in-random", DIM)
            have = 0
            for size in sizes:
                took, flush_s = await grow(store, name, texts, have, size, rng)
                rate = (size - have) / took
                have = size
                index_s = await anyio.to_thread.run_sync(wait_for_index, uri, name) if args.milvus != "lite" else 0.0
                times = await search_side_by_side(store, uri, name, args.searches, rng)
                for path in ("ours", "ours+filter"):
                    mine, theirs = times[path], times[path.replace("ours", "direct")]
                    ratios = f"{pct(mine, 0.5) / pct(theirs, 0.5):>8.2f}x {pct(mine, 0.99) / pct(theirs, 0.99):>8.2f}x"
                    cells = f"{pct(mine, 0.5):>7.1f} {pct(mine, 0.99):>7.1f} {ratios}"
                    direct_cells = f"{pct(theirs, 0.5):>7.1f} {pct(theirs, 0.99):>7.1f}"
                    lead = (
                        f"  {dense.type:<10} {size:>8} {rate:>13.0f} {flush_s + index_s:>13.0f} {rss_mb():>6.0f}"
                        if path == "ours"
                        else " " * 56
                    )
                    print(f"{lead}  {path:<14} {cells}")
                    print(f"{' ' * 56}  {path.replace('ours', 'direct'):<14} {direct_cells}", flush=True)
            await store.drop(name)
            store.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--direct", action="store_true", help="the store at scale: random vectors, no files or model")
    parser.add_argument("--sizes", default="10000,100000", help="--direct: chunk counts to grow to and search at")
    parser.add_argument("--indexes", default="", help="--direct: index types to run, e.g. HNSW (default: all the backend builds)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--embedder", choices=["local", "stand-in"], default="local")
    parser.add_argument("--milvus", choices=["lite", "lite-server", "standalone"], default="lite")
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    anyio.run(run_direct if args.direct else run, args)


if __name__ == "__main__":
    main()
