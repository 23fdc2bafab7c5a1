"""Retrieval quality on ../shared/eval/eval_dev.jsonl: recall@1/3/5/10 and MRR@10 for each search mode,
on the FAQ alone and on the FAQ inside the whole English docs (scored as ../shared/eval/README.md says).

    .venv/bin/python bench/eval_retrieval.py                         # both corpora, every mode
    .venv/bin/python bench/eval_retrieval.py --corpora faq --misses
    .venv/bin/python bench/eval_retrieval.py --modes dense --json /tmp/eval.json

Question sets in English, Korean and Chinese (--langs) are scored side by side, for search alone and, with
--answer, through answer_with_qwen (its sources' recall@3): with `--answer stand-in` a loopback stand-in for
DashScope rewrites each Korean or Chinese question into the English dev question with the same id (a perfect
translation: an upper bound for the rewrite step), with `--answer dashscope` the real model does.

The embedder, reranker and chat model are the server's, from the same settings (EMBEDDING_*, RERANK_*,
DASHSCOPE_*); DashScope's multilingual embeddings, its reranker and the real rewrite, all at once:
    DASHSCOPE_API_KEY=sk-... EMBEDDING_PROVIDER=dashscope RERANK_PROVIDER=dashscope \
    .venv/bin/python bench/eval_retrieval.py --answer dashscope
(outside mainland China add DASHSCOPE_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
sys.path.insert(0, str(REPO))

from server.settings import Settings
from tests.dashscope_stub import run_stub
from tools.answer import answer_with_qwen
from tools.ingest import ingest_documents
from tools.llm import LLMConfig
from tools.search import SearchHit, search_milvus_docs
from tools.services import Services
from tools.store import Store

STAND_IN_KEY = "sk-eval-stand-in"
DASHSCOPE_RERUN = """\
    DASHSCOPE_API_KEY=sk-... EMBEDDING_PROVIDER=dashscope RERANK_PROVIDER=dashscope \\
    .venv/bin/python bench/eval_retrieval.py --answer dashscope
(outside mainland China add DASHSCOPE_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1)"""

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
    return any(_norm(line.lstrip().lstrip("#")) == heading for line in hit.text.splitlines() if line.lstrip().startswith("#"))


def score(items: list[dict[str, Any]], ranked: list[list[SearchHit]]) -> dict[str, float]:
    """Recall@k (the fraction of gold sections found in the top k, averaged) and MRR@10."""
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


async def search(services: Services, query: str, mode: str) -> list[SearchHit]:
    """The top 10."""
    return (await search_milvus_docs(services, query, top_k=10, mode=mode)).results


async def through_answers(services: Services, items: list[dict[str, Any]]) -> tuple[list[list[SearchHit]], list[float]]:
    """Each question through answer_with_qwen: the passages its answer cited (as search hits) and its time."""
    ranked, seconds = [], []
    for item in items:
        started = time.perf_counter()
        result = await answer_with_qwen(services, item["question"], top_k=3)
        seconds.append(time.perf_counter() - started)
        if not result.sources:  # nothing relevant enough: no passage reached the model
            ranked.append([])
            continue
        found = await search_milvus_docs(services, result.search_query or item["question"], top_k=3)
        assert [h.chunk_id for h in found.results] == [s.chunk_id for s in result.sources]
        ranked.append(found.results)
    return ranked, seconds


def translations(sets: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Each Korean or Chinese question, and the English question with the same id."""
    english = {item["id"]: item["question"] for item in sets.get("en", [])}
    return {item["question"]: english[item["id"].rsplit("-", 1)[0]] for lang, items in sets.items() if lang != "en"
            for item in items if item["id"].rsplit("-", 1)[0] in english}  # fmt: skip


async def evaluate(
    corpus: str, sets: dict[str, list[dict[str, Any]]], modes: list[str], shared: Path, misses: bool, answer: str | None
) -> list[dict[str, Any]]:
    """Ingest one corpus into a fresh Milvus Lite file, then score every question set in every mode on it."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp, "docs")
        with tarfile.open(shared / "corpus" / CORPORA[corpus]) as tar:
            tar.extractall(docs, filter="data")
        settings = Settings.load([])
        services = dataclasses.replace(settings.services(), store=Store(f"{tmp}/eval.db"), roots=[docs])
        started = time.perf_counter()
        ingested = await ingest_documents(services, ["."])
        ingest_s = time.perf_counter() - started
        for lang, items in sets.items():
            for mode in modes:
                ranked, latencies = [], []
                for item in items:
                    started = time.perf_counter()
                    ranked.append(await search(services, item["question"], mode))
                    latencies.append((time.perf_counter() - started) * 1000)
                rows.append(
                    {
                        "corpus": corpus,
                        "lang": lang,
                        "mode": mode,
                        **score(items, ranked),
                        "search_p50_ms": sorted(latencies)[len(latencies) // 2],
                        "chunks": ingested.chunks_added,
                        "ingest_s": ingest_s,
                    }
                )
                if misses:
                    print_misses(f"{corpus}, {lang}", mode, items, ranked)
        if answer is not None:
            with run_stub(api_key=STAND_IN_KEY) as stub:
                if answer == "stand-in":
                    stub.translations = translations(sets)
                    services.llm = LLMConfig(base_url=stub.base_url, api_key=STAND_IN_KEY)
                for lang, items in sets.items():
                    ranked, seconds = await through_answers(services, items)
                    p50 = sorted(seconds)[len(seconds) // 2] * 1000
                    mode = f"answer:{answer}"
                    rows.append({"corpus": corpus, "lang": lang, "mode": mode, **score(items, ranked), "search_p50_ms": p50,
                                 "chunks": ingested.chunks_added, "ingest_s": ingest_s})  # fmt: skip
                    if misses:
                        print_misses(f"{corpus}, {lang}", mode, items, ranked)
        services.store.close()
    return rows


def print_misses(corpus: str, mode: str, items: list[dict[str, Any]], ranked: list[list[SearchHit]]) -> None:
    """The questions with a gold section not in the top 3, and what came instead."""
    print(f"\nmisses in the top 3 ({corpus}, {mode}):")
    for item, hits in zip(items, ranked, strict=True):
        if all(any(is_hit(h, g) for h in hits[:3]) for g in item["relevant"]):
            continue
        print(f"  {item['id']}: {item['question']}")
        for gold in item["relevant"]:
            print(f"      gold: {gold['file']} § {gold['heading']}")
        for rank, hit in enumerate(hits[:3], start=1):
            print(f"      {rank}.    {hit.source} § {hit.heading}")


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = ["R@1", "R@3", "R@5", "R@10", "MRR@10"]
    print(
        f"\n{'corpus':<7} {'lang':<5} {'mode':<16} "
        + " ".join(f"{c:>6}" for c in columns)
        + f" {'p50 ms':>7} {'chunks':>7} {'ingest s':>9}"
    )
    for r in rows:
        print(
            f"{r['corpus']:<7} {r['lang']:<5} {r['mode']:<16} "
            + " ".join(f"{r[c]:>6.3f}" for c in columns)
            + f" {r['search_p50_ms']:>7.1f} {r['chunks']:>7} {r['ingest_s']:>9.1f}"
        )


def question_file(shared: Path, lang: str) -> Path:
    return shared / "eval" / ("eval_dev.jsonl" if lang == "en" else f"eval_dev_{lang}.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder with corpus/ (default: %(default)s)")
    parser.add_argument("--eval", type=Path, help="one question set instead of --langs")
    parser.add_argument("--langs", default="en,ko,zh", help="question sets by language: <shared>/eval/eval_dev[_xx].jsonl")
    parser.add_argument("--corpora", default="faq,all", help="faq (the FAQ alone), all (the FAQ inside all English docs)")
    parser.add_argument("--modes", default="dense,bm25,hybrid")
    parser.add_argument("--misses", action="store_true", help="list questions whose gold section is not in the top 3")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--answer", choices=["stand-in", "dashscope"], help="also score answer_with_qwen's sources (see above)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    files = {"set": args.eval} if args.eval else {lang: question_file(args.shared, lang) for lang in args.langs.split(",")}
    sets = {lang: [json.loads(line) for line in path.open() if line.strip()] for lang, path in files.items()}
    print(f"{', '.join(f'{len(v)} {k}' for k, v in sets.items())} questions, embedder {Settings().embedder().name}, top_k 10")
    rows = []
    for corpus in args.corpora.split(","):
        rows += asyncio.run(evaluate(corpus, sets, modes, args.shared, args.misses, args.answer))
    print_table(rows)
    if Settings.load([]).dashscope_api_key is None:
        print(f"\nThe same with DashScope's embeddings, reranker and the real rewrite (needs a key):\n{DASHSCOPE_RERUN}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
