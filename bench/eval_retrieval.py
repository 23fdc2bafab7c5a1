"""Retrieval quality on ../shared/eval/eval_dev.jsonl: recall@1/3/5/10 and MRR@10 for every search mode,
on the FAQ alone and on the FAQ inside the whole English docs (scoring as ../shared/eval/README.md says).

    .venv/bin/python bench/eval_retrieval.py                 # both corpora, all modes
    .venv/bin/python bench/eval_retrieval.py --corpora faq --misses
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.embedders import OnnxMiniLM  # noqa: E402
from tools.ingest import ingest_documents  # noqa: E402
from tools.search import MODES, SearchHit, search_milvus_docs  # noqa: E402
from tools.services import Services  # noqa: E402
from tools.store import Store  # noqa: E402

KS = (1, 3, 5, 10)
CORPORA = {"faq": "milvus_docs_faq_2.4.tar.gz", "all": "milvus_docs_en_2.4.tar.gz"}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def is_hit(hit: SearchHit, gold: dict[str, str]) -> bool:
    """From the gold file, and inside the gold section (heading path, or the heading line in the text)."""
    if hit.source != gold["file"] and not hit.source.endswith("/" + gold["file"]):
        return False
    heading = _norm(gold["heading"])
    if any(_norm(h) == heading for h in hit.headings):
        return True
    return any(_norm(line.lstrip("#")) == heading for line in hit.text.splitlines() if line.lstrip().startswith("#"))


def score(items: list[dict], ranked: list[list[SearchHit]]) -> dict[str, float]:
    """Recall@k (the fraction of gold sections found, averaged) and MRR@10."""
    recall = {k: 0.0 for k in KS}
    mrr = 0.0
    for item, hits in zip(items, ranked, strict=True):
        gold = item["relevant"]
        for k in KS:
            recall[k] += sum(any(is_hit(h, g) for h in hits[:k]) for g in gold) / len(gold)
        first = next((i for i, h in enumerate(hits[:10]) if any(is_hit(h, g) for g in gold)), None)
        mrr += 0.0 if first is None else 1 / (first + 1)
    n = len(items)
    return {**{f"R@{k}": recall[k] / n for k in KS}, "MRR@10": mrr / n}


async def evaluate(corpus: str, items: list[dict], modes: list[str], shared: Path, misses: bool) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(shared / "corpus" / CORPORA[corpus]) as tar:
            tar.extractall(f"{tmp}/docs", filter="data")
        services = Services(store=Store(f"{tmp}/eval.db"), embedder=OnnxMiniLM(), roots=[Path(f"{tmp}/docs")])
        started = time.perf_counter()
        ingested = await ingest_documents(services, ["en"])
        took = time.perf_counter() - started
        for mode in modes:
            ranked = []
            latencies = []
            for item in items:
                started = time.perf_counter()
                found = await search_milvus_docs(services, item["question"], top_k=10, mode=mode)
                latencies.append((time.perf_counter() - started) * 1000)
                ranked.append(found.results)
            figures = score(items, ranked)
            p50 = sorted(latencies)[len(latencies) // 2]
            rows.append(
                f"| {corpus} | {mode} | " + " | ".join(f"{figures[k]:.3f}" for k in figures)
                + f" | {p50:.1f} | {ingested.chunks_added} | {took:.0f} |"
            )
            if misses:
                _print_misses(corpus, mode, items, ranked)
        services.store.close()
    return rows


def _print_misses(corpus: str, mode: str, items: list[dict], ranked: list[list[SearchHit]]) -> None:
    for item, hits in zip(items, ranked, strict=True):
        if not all(any(is_hit(h, g) for h in hits[:3]) for g in item["relevant"]):
            print(f"miss [{corpus}/{mode}] {item['id']}: {item['question']}", file=sys.stderr)
            print(f"    gold: {[g['heading'] for g in item['relevant']]}", file=sys.stderr)
            for hit in hits[:3]:
                print(f"    got:  {hit.source} § {hit.heading}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--eval", type=Path, help="question set (default: <shared>/eval/eval_dev.jsonl)")
    parser.add_argument("--corpora", default="faq,all")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--misses", action="store_true", help="list questions whose gold section is not in the top 3")
    args = parser.parse_args()
    eval_file = args.eval or args.shared / "eval" / "eval_dev.jsonl"
    items = [json.loads(line) for line in eval_file.open()]
    print(f"{len(items)} questions from {eval_file.name}, embedder all-MiniLM-L6-v2 (int8 ONNX)\n")
    print("| corpus | mode | R@1 | R@3 | R@5 | R@10 | MRR@10 | search p50 ms | chunks | ingest s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for corpus in args.corpora.split(","):
        for row in asyncio.run(evaluate(corpus, items, args.modes.split(","), args.shared, args.misses)):
            print(row, flush=True)


if __name__ == "__main__":
    main()
