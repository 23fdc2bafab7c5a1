"""The tax of a remote embedder: the same model (all-MiniLM-L6-v2 int8 ONNX) in this process, and served over an
OpenAI-compatible endpoint on loopback (tests/embeddings_stub.py running the model, no added delay), searched side
by side in one run, query by query, on the FAQ in one Milvus Lite file (target: remote - local <= 3 ms at the
median). Also the query embedding alone, through our embedder, through the openai SDK's typed parsing, and as one
bare httpx round trip with the same body.

    nice -n 19 .venv/bin/python bench/bench_remote_embedder.py            # 200 queries per mode
    nice -n 19 .venv/bin/python bench/bench_remote_embedder.py --queries 500 --modes dense

With a DashScope key the remote side can be DashScope itself (the whole network then counts):
    DASHSCOPE_API_KEY=sk-... .venv/bin/python bench/bench_remote_embedder.py --dashscope
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from tests.embeddings_stub import run_embeddings_stub
from tools.embedders import OnnxMiniLM
from tools.embedders.openai import OpenAIEmbedder
from tools.ingest import ingest_documents
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store import Store

FAQ = REPO / "data" / "milvus_docs" / "en" / "faq"
KEY = "sk-bench"
DASHSCOPE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(args: argparse.Namespace) -> None:
    import httpx2 as httpx
    import openai

    questions = [json.loads(line)["question"] for line in (SHARED / "eval" / "eval_dev.jsonl").open()]
    queries = [questions[i % len(questions)] for i in range(args.queries)]
    local = OnnxMiniLM()
    await local.warm_up()
    with run_embeddings_stub(KEY) as stub, tempfile.TemporaryDirectory() as tmp:
        stub.delay_s = 0
        stub.model = local._encode  # the same loaded model answers over HTTP
        if args.dashscope:
            url, key, model = (
                "https://dashscope.aliyuncs.com/compatible-mode/v1",
                os.environ["DASHSCOPE_API_KEY"],
                "text-embedding-v4",
            )
        else:
            url, key, model = stub.base_url, KEY, local.name
        remote = OpenAIEmbedder(model, url, key)
        await remote.warm_up()
        store = Store(f"{tmp}/faq.db")
        await ingest_documents(Services(store=store, embedder=local, roots=[FAQ]), ["."])
        sides = {"local": Services(store=store, embedder=local, roots=[FAQ])}
        if not args.dashscope:  # the same model's vectors: the same collection serves both
            sides["remote"] = Services(store=store, embedder=remote, roots=[FAQ])
        times: dict[str, list[float]] = {}
        for mode in args.modes.split(","):
            for query in queries:
                for side, services in sides.items():
                    started = time.perf_counter()
                    await search_milvus_docs(services, query, mode=mode)
                    times.setdefault(f"{mode} {side}", []).append((time.perf_counter() - started) * 1000)
        sdk = openai.AsyncOpenAI(base_url=url, api_key=key)
        bare = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"})
        for query in queries:
            for label, call in (
                ("embed: local model", lambda q=query: local.embed_query(q)),
                ("embed: our remote embedder", lambda q=query: remote.embed_query(q)),
                (
                    "embed: openai SDK, parsed",
                    lambda q=query: sdk.embeddings.create(model=model, input=[q], encoding_format="float"),
                ),
                ("embed: bare httpx round trip", lambda q=query: bare.post("/embeddings", json={"model": model, "input": [q]})),
            ):
                started = time.perf_counter()
                await call()
                times.setdefault(label, []).append((time.perf_counter() - started) * 1000)
        await sdk.close()
        await bare.aclose()
        await remote.close()
        store.close()
    where = "DashScope" if args.dashscope else "loopback, the same model"
    print(f"FAQ, top_k 3, {args.queries} queries, in-process; remote: {where}; ms")
    print(f"  {'what':<32} {'p50':>6} {'p90':>6} {'p99':>6}")
    for label, values in times.items():
        print(f"  {label:<32} " + " ".join(f"{pct(values, q):>6.2f}" for q in (0.5, 0.9, 0.99)))
    for mode in args.modes.split(","):
        if f"{mode} remote" in times:
            tax = pct(times[f"{mode} remote"], 0.5) - pct(times[f"{mode} local"], 0.5)
            print(f"  {mode}: remote - local at the median: {tax:+.2f} ms (target <= 3 ms)")
    print(f"  requests the stand-in served: {stub.requests} (one per query embedding)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--modes", default="dense,hybrid")
    parser.add_argument("--dashscope", action="store_true", help="remote: DashScope text-embedding-v4 (DASHSCOPE_API_KEY)")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
