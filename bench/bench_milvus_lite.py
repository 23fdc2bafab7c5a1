"""Milvus Lite engine benchmark, to choose the milvus-lite version to pin.

Run it with the interpreter of a venv that holds the version to measure, e.g.

    /tmp/venv-lite25/bin/python bench/bench_milvus_lite.py            # pymilvus 3.0.2 + milvus-lite 2.5.1
    /tmp/venv-lite3/bin/python bench/bench_milvus_lite.py --n 2000    # pymilvus 3.0.2 + milvus-lite 3.x

On a fresh file in a temporary folder it creates a collection shaped like the server's (VARCHAR id, 384-dim
COSINE vector, analyzed `text` feeding a BM25 function into a sparse field, `source`), inserts N seeded
synthetic chunks in batches of 500 and flushes (in a child process), reopens the file in a new client, then
times dense, BM25, hybrid (RRF) and filtered searches, a query by filter and a delete by filter.
Needs only pymilvus, numpy and the standard library.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

DIM = 384
BATCH = 500
CHUNKS_PER_DOC = 20
COLLECTION = "bench"
SEED = 7
OUTPUT = ["source"]  # named: milvus-lite 3.x returns every field (vectors, text) when output_fields is empty

Hits = list[dict[str, Any]]


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """A fixed vocabulary of distinct pronounceable pseudo-words."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(syllables, rng.integers(2, 4)))] = None
    return list(words)


def dataset(n: int) -> tuple[list[dict[str, Any]], np.random.Generator]:
    """N seeded rows (80-120 Zipf-weighted words, a unit vector, one of N/20 sources), and the generator
    that goes on to draw the queries."""
    rng = np.random.default_rng(SEED)
    words = np.array(vocabulary(5000, rng))
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = max(1, n // CHUNKS_PER_DOC)
    rows = [
        {
            "id": f"c{i:07d}",
            "vector": vectors[i].tolist(),
            "source": f"doc_{i % docs}.md",
            "text": " ".join(rng.choice(words, rng.integers(80, 121), p=weights)),
        }
        for i in range(n)
    ]
    return rows, rng


def create(client: MilvusClient, analyzer: str) -> None:
    """The collection: id, vector, text -> BM25 -> sparse, source."""
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("text", DataType.VARCHAR, max_length=8192, enable_analyzer=True, analyzer_params={"type": analyzer})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("source", DataType.VARCHAR, max_length=512)
    schema.add_function(
        Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
    )
    index = client.prepare_index_params()
    index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(COLLECTION, schema=schema, index_params=index)


def build(path: str, n: int, analyzer: str) -> dict[str, float]:
    """Create the collection in a fresh file, insert N rows in batches, flush: the seconds each step took."""
    rows, _ = dataset(n)
    client = MilvusClient(path)
    create(client, analyzer)
    started = time.perf_counter()
    for at in range(0, n, BATCH):
        client.insert(COLLECTION, rows[at : at + BATCH])
    inserted = time.perf_counter()
    client.flush(COLLECTION)
    flushed = time.perf_counter()
    client.close()
    return {"insert_s": inserted - started, "flush_s": flushed - inserted}


def timed(fn: Callable[[int], list[Hits]], repeat: int) -> tuple[list[float], list[Hits]]:
    """Seconds taken by each of fn(0) .. fn(repeat - 1), and the hits each returned for its first query."""
    seconds, hits = [], []
    for i in range(repeat):
        started = time.perf_counter()
        result = fn(i)
        seconds.append(time.perf_counter() - started)
        hits.append(list(result[0]) if result else [])
    return seconds, hits


def percentiles(seconds: list[float]) -> str:
    return f"p50 {np.percentile(seconds, 50) * 1000:6.1f} ms   p99 {np.percentile(seconds, 99) * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="chunks to insert (default 10000)")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind (default 200)")
    parser.add_argument(
        "--analyzer", default="standard", help='analyzer type of `text` (default standard; "english" fails on milvus-lite 3.x)'
    )
    parser.add_argument("--build", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n, q = args.n, args.queries
    if args.build:
        print(json.dumps(build(args.build, n, args.analyzer)))
        return
    print(
        f"milvus-lite {importlib.metadata.version('milvus-lite')}, pymilvus {importlib.metadata.version('pymilvus')}: "
        f"{n} chunks, {q} queries of each kind, analyzer {args.analyzer!r}"
    )

    rows, rng = dataset(n)
    docs = max(1, n // CHUNKS_PER_DOC)
    picks = rng.integers(0, n, q)
    dense_queries = np.array([rows[i]["vector"] for i in picks]) + rng.standard_normal((q, DIM)) * 0.05
    dense_queries /= np.linalg.norm(dense_queries, axis=1, keepdims=True)
    text_queries = [" ".join(rng.choice(rows[i]["text"].split(), 4, replace=False)) for i in picks]
    table: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        # Insert in a child process that then exits, so that the reopen below is a cold one: a closed
        # MilvusClient leaves milvus-lite's engine for its file running until the process ends.
        child = subprocess.run(
            [sys.executable, __file__, "--build", path, "--n", str(n), "--analyzer", args.analyzer],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        built = json.loads(child.stdout.splitlines()[-1])
        table.append(("insert", f"{n / built['insert_s']:.0f} chunks/s ({built['insert_s']:.2f} s, batches of {BATCH})"))
        table.append(("flush", f"{built['flush_s'] * 1000:.0f} ms"))

        started = time.perf_counter()
        client = MilvusClient(path)
        client.load_collection(COLLECTION)
        table.append(("reopen in a new process + load_collection", f"{(time.perf_counter() - started) * 1000:.0f} ms"))

        def dense(i: int, expr: str = "") -> list[Hits]:
            return client.search(
                COLLECTION,
                [dense_queries[i].tolist()],
                anns_field="vector",
                limit=10,
                filter=expr,
                search_params={"metric_type": "COSINE"},
                output_fields=OUTPUT,
            )

        def bm25(i: int) -> list[Hits]:
            return client.search(
                COLLECTION,
                [text_queries[i]],
                anns_field="sparse",
                limit=10,
                search_params={"metric_type": "BM25"},
                output_fields=OUTPUT,
            )

        def hybrid(i: int) -> list[Hits]:
            requests = [
                AnnSearchRequest([dense_queries[i].tolist()], "vector", {"metric_type": "COSINE"}, limit=10),
                AnnSearchRequest([text_queries[i]], "sparse", {"metric_type": "BM25"}, limit=10),
            ]
            return client.hybrid_search(COLLECTION, requests, RRFRanker(60), limit=10, output_fields=OUTPUT)

        def by_filter(i: int) -> list[Hits]:
            return [client.query(COLLECTION, filter=f'source == "doc_{i % docs}.md"', output_fields=["id", "source"])]

        hits: dict[str, list[Hits]] = {}
        for name, fn in (
            ("dense search, top 10", dense),
            ("BM25 search, top 10", bm25),
            ("hybrid_search dense + BM25, RRFRanker", hybrid),
            ('dense search + filter source like "doc_1%"', lambda i: dense(i, 'source like "doc_1%"')),
            ('query filter source == "doc_K.md"', by_filter),
        ):
            seconds, hits[name] = timed(fn, q)
            table.append((name, percentiles(seconds)))

        def found(name: str) -> str:
            return f"{sum(rows[i]['id'] in {hit['id'] for hit in got} for i, got in zip(picks, hits[name], strict=True))}/{q}"

        table.append(("queried chunk in the top 10: dense, BM25, hybrid", ", ".join(found(name) for name in list(hits)[:3])))
        table.append(
            (
                "BM25 distances, best 3 hits of one query",
                ", ".join(f"{hit['distance']:+.3f}" for hit in hits["BM25 search, top 10"][0][:3]),
            )
        )

        gone = [f"doc_{k}.md" for k in range(min(10, docs))]
        started = time.perf_counter()
        client.delete(COLLECTION, filter=f"source in {json.dumps(gone)}")
        delete_s = time.perf_counter() - started
        left = client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"]
        table.append((f"delete by filter source in [{len(gone)} sources]", f"{delete_s * 1000:.0f} ms ({n - left} rows gone)"))
        client.close()

    width = max(len(name) for name, _ in table)
    print(f"{'measure':{width}}  result\n{'-' * width}  {'-' * 36}")
    for name, value in table:
        print(f"{name:{width}}  {value}")


if __name__ == "__main__":
    main()
