"""Milvus Lite engine benchmark, to choose the milvus-lite version to pin.

Run it with the interpreter of a venv that holds the version to measure, e.g.

    /tmp/venv-lite25/bin/python bench/bench_milvus_lite.py            # pymilvus 3.0.2 + milvus-lite 2.5.1
    /tmp/venv-lite3/bin/python bench/bench_milvus_lite.py --n 2000    # pymilvus 3.0.2 + milvus-lite 3.x

On a fresh file in a temporary folder it creates a collection shaped like the server's (VARCHAR id, 384-dim
COSINE vector, analyzed `text` feeding a BM25 function into a sparse field, `source`), inserts N seeded
synthetic chunks in batches of 500, flushes, reopens the file in a new client, then times dense, BM25,
hybrid (RRF) and filtered searches, a query by filter and a delete by filter. Needs only pymilvus and numpy.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
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


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """A fixed vocabulary of pronounceable pseudo-words, distinct and seeded."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(syllables, rng.integers(2, 4)))] = None
    return list(words)


def make_chunks(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """N texts of 80-120 Zipf-weighted words, and N unit vectors."""
    words = np.array(vocabulary(5000, rng))
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    texts = [" ".join(rng.choice(words, rng.integers(80, 121), p=weights)) for _ in range(n)]
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, vectors


def create(client: MilvusClient, analyzer: str) -> None:
    """The collection: id, vector, text -> BM25 -> sparse, source."""
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("text", DataType.VARCHAR, max_length=8192, enable_analyzer=True,
                     analyzer_params={"type": analyzer})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("source", DataType.VARCHAR, max_length=512)
    schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(COLLECTION, schema=schema, index_params=index)


def timed(fn: Callable[[int], list[list[dict[str, Any]]]], repeat: int) -> tuple[list[float], list[list[dict[str, Any]]]]:
    """Seconds taken by fn(0) .. fn(repeat - 1), one call each, and the first hit list of each call."""
    seconds, results = [], []
    for i in range(repeat):
        started = time.perf_counter()
        result = fn(i)
        seconds.append(time.perf_counter() - started)
        results.append(list(result[0]) if result else [])
    return seconds, results


def ms(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="chunks to insert (default 10000)")
    parser.add_argument("--queries", type=int, default=200, help="queries per search kind (default 200)")
    parser.add_argument("--analyzer", default="standard",
                        help='analyzer type of `text` (default standard; "english" fails on milvus-lite 3.x)')
    args = parser.parse_args()
    n, q = args.n, args.queries
    print(f"milvus-lite {importlib.metadata.version('milvus-lite')}, pymilvus {importlib.metadata.version('pymilvus')}, "
          f"numpy {np.__version__}: {n} chunks, {q} queries, analyzer {args.analyzer!r}")

    rng = np.random.default_rng(SEED)
    texts, vectors = make_chunks(n, rng)
    docs = max(1, n // CHUNKS_PER_DOC)
    rows = [{"id": f"c{i:07d}", "vector": vectors[i], "text": texts[i], "source": f"doc_{i % docs}.md"}
            for i in range(n)]
    picks = rng.integers(0, n, q)
    dense_queries = vectors[picks] + rng.standard_normal((q, DIM)).astype(np.float32) * 0.05
    dense_queries /= np.linalg.norm(dense_queries, axis=1, keepdims=True)
    text_queries = [" ".join(rng.choice(texts[i].split(), 4, replace=False)) for i in picks]
    rows_table: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        client = MilvusClient(path)
        create(client, args.analyzer)
        started = time.perf_counter()
        for at in range(0, n, BATCH):
            client.insert(COLLECTION, rows[at:at + BATCH])
        insert_s = time.perf_counter() - started
        rows_table.append(("insert", f"{insert_s:.2f} s = {n / insert_s:.0f} chunks/s (batches of {BATCH})"))
        started = time.perf_counter()
        client.flush(COLLECTION)
        rows_table.append(("flush", f"{(time.perf_counter() - started) * 1000:.0f} ms"))
        client.close()

        started = time.perf_counter()
        client = MilvusClient(path)
        client.load_collection(COLLECTION)
        rows_table.append(("reopen + load_collection", f"{(time.perf_counter() - started) * 1000:.0f} ms"))

        def dense(i: int, expr: str = "") -> list[Any]:
            return client.search(COLLECTION, [dense_queries[i].tolist()], anns_field="vector", limit=10,
                                 filter=expr, search_params={"metric_type": "COSINE"})

        def bm25(i: int) -> list[Any]:
            return client.search(COLLECTION, [text_queries[i]], anns_field="sparse", limit=10,
                                 search_params={"metric_type": "BM25"})

        def hybrid(i: int) -> list[Any]:
            requests = [
                AnnSearchRequest([dense_queries[i].tolist()], "vector", {"metric_type": "COSINE"}, limit=10),
                AnnSearchRequest([text_queries[i]], "sparse", {"metric_type": "BM25"}, limit=10),
            ]
            return client.hybrid_search(COLLECTION, requests, RRFRanker(60), limit=10)

        searches: dict[str, Callable[[int], Any]] = {
            "dense search top-10": dense,
            "BM25 search top-10": bm25,
            "hybrid_search dense+BM25 RRF": hybrid,
            'dense + filter source like "doc_1%"': lambda i: dense(i, 'source like "doc_1%"'),
        }
        results = {}
        for name, fn in searches.items():
            values, results[name] = timed(fn, q)
            rows_table.append((name, f"p50 {ms(values, 50)} ms, p99 {ms(values, 99)} ms"))
        values, _ = timed(lambda i: [client.query(COLLECTION, filter=f'source == "doc_{i % docs}.md"',
                                                  output_fields=["id", "source"])], q)
        rows_table.append(('query source == "doc_K.md"', f"p50 {ms(values, 50)} ms, p99 {ms(values, 99)} ms"))

        def found(name: str) -> str:
            return f"{sum(rows[i]['id'] in [hit['id'] for hit in hits] for i, hits in zip(picks, results[name]))}/{q}"

        rows_table.append(("queried chunk in top 10: dense / BM25 / hybrid",
                           " / ".join(found(name) for name in list(searches)[:3])))
        rows_table.append(("BM25 distances of one query's top 3",
                           ", ".join(f"{hit['distance']:+.3f}" for hit in results["BM25 search top-10"][0][:3])))
        gone = [f"doc_{k}.md" for k in range(min(10, docs))]
        started = time.perf_counter()
        client.delete(COLLECTION, filter=f"source in {json.dumps(gone)}")
        delete_s = time.perf_counter() - started
        left = client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"]
        rows_table.append(("delete by filter (source in [10 docs])", f"{delete_s * 1000:.0f} ms, {n - left} rows gone"))
        client.close()

    width = max(len(name) for name, _ in rows_table)
    print(f"{'measure':{width}}  result\n{'-' * width}  {'-' * 40}")
    for name, value in rows_table:
        print(f"{name:{width}}  {value}")


if __name__ == "__main__":
    main()
