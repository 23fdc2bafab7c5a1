"""Milvus Lite engine speed, to choose the version to pin: run it in a venv with each version.

    .venv/bin/python bench/bench_milvus_lite.py                 # the pinned milvus-lite 2.5.1
    /tmp/venv-lite3/bin/python bench/bench_milvus_lite.py       # pymilvus 3.0.2 + milvus-lite 3.x

Inserts N chunks (384-dim unit vectors, text with a BM25 function), flushes, then times dense, BM25 and
filtered searches, a reopen, and a delete, on a fresh file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import tempfile
import time

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

WORDS = ("milvus vector index search collection segment flush etcd minio query partition metric cosine "
         "embedding schema field cluster node memory disk load release insert delete upsert").split()


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def timed(fn, repeat: int) -> list[float]:
    out = []
    for i in range(repeat):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((args.n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [" ".join(rng.choice(WORDS, 40)) for _ in range(args.n)]
    print(f"milvus-lite {importlib.metadata.version('milvus-lite')}, pymilvus {importlib.metadata.version('pymilvus')}, "
          f"{args.n} rows")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.db")
        client = MilvusClient(path)
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
        schema.add_field("text", DataType.VARCHAR, max_length=4096, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("source", DataType.VARCHAR, max_length=256)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("c", schema=schema, index_params=index)
        started = time.perf_counter()
        for at in range(0, args.n, 500):
            client.insert("c", [{"id": i, "vector": vectors[i], "text": texts[i], "source": f"doc_{i % 100}.md"}
                                for i in range(at, min(at + 500, args.n))])
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        client.flush("c")
        flush_s = time.perf_counter() - started
        client.close()
        started = time.perf_counter()
        client = MilvusClient(path)
        client.load_collection("c")
        reopen_s = time.perf_counter() - started
        q = args.queries
        dense = timed(lambda i: client.search("c", [vectors[i]], anns_field="vector", limit=10), q)
        bm25 = timed(lambda i: client.search("c", [texts[i][:60]], anns_field="sparse", limit=10,
                                             search_params={"metric_type": "BM25"}), q)
        filtered = timed(lambda i: client.search("c", [vectors[i]], anns_field="vector", limit=10,
                                                 filter='source like "doc_1%"'), q)
        by_id = timed(lambda i: client.get("c", ids=list(range(i, i + 10))), q)
        started = time.perf_counter()
        client.delete("c", filter='source == "doc_5.md"')
        delete_s = time.perf_counter() - started
        client.close()
    print(f"insert {args.n / insert_s:.0f} rows/s | flush {flush_s * 1000:.0f} ms | reopen+load {reopen_s * 1000:.0f} ms"
          f" | delete by filter {delete_s * 1000:.0f} ms")
    for name, values in (("dense top-10", dense), ("BM25 top-10", bm25), ("filtered dense", filtered), ("get 10 ids", by_id)):
        print(f"{name:15s} p50 {p(values, 0.5):7.1f} ms   p99 {p(values, 0.99):7.1f} ms")


if __name__ == "__main__":
    main()
