"""Multi-hop evidence recall on ../shared/eval/eval_multihop_dev.jsonl over all 224 English pages: naive search
against research_with_qwen, side by side (scored as ../shared/eval/README.md says: the fraction of a question's
listed sections among the passages a system returns or cites).

    nice -n 19 .venv/bin/python bench/eval_research.py
    nice -n 19 .venv/bin/python bench/eval_research.py --limit 5 --json /tmp/research.json

Rows:
- naive top 5, top 10: search_milvus_docs with the question, its passages;
- research, stand-in planner: a loopback stand-in for DashScope answers `step: plan` with the set's gold
  `sub_questions`, `step: judge` with every passage number and `step: reflect` with `[]`, and writes a report
  citing every passage: the machinery's upper bound, a perfect planner and an agreeable judge;
- research, no split: the same stand-in planning the question itself (what the rounds add without a planner);
- research, DashScope: the real model at every step, when DASHSCOPE_API_KEY is set (else the command is printed):
    DASHSCOPE_API_KEY=sk-... nice -n 19 .venv/bin/python bench/eval_research.py --dashscope
  (outside mainland China add DASHSCOPE_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1).
Research rows are scored on the passages the report cites. Tokens are as the service counts them; the stand-in
counts 4 characters a token.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from eval_retrieval import CORPORA, is_hit

from server.settings import Settings
from tests.dashscope_stub import run_stub
from tools.defaults import RESEARCH_TOP_K
from tools.ingest import ingest_documents
from tools.llm import LLMConfig
from tools.research import ResearchResult, research_with_qwen
from tools.search import SearchHit, citation, search_milvus_docs
from tools.services import Services
from tools.store import Store

STAND_IN_KEY = "sk-eval-research-stand-in"
DASHSCOPE_RERUN = """\
    DASHSCOPE_API_KEY=sk-... nice -n 19 .venv/bin/python bench/eval_research.py --dashscope
(outside mainland China add DASHSCOPE_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1)"""


@dataclasses.dataclass
class Run:
    """One system's outcome on one question."""

    hits: list[SearchHit]
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0


def recall(item: dict[str, Any], hits: list[SearchHit]) -> float:
    gold = item["relevant"]
    return sum(any(is_hit(h, g) for h in hits) for g in gold) / len(gold)


async def cited_hits(services: Services, result: ResearchResult) -> list[SearchHit]:
    """The passages the report cites, read back from the store so they can be scored like search hits."""
    hits = []
    for source in (s for s in result.sources if s.cited):
        row = (await services.store.fetch(source.collection, [source.chunk_id]))[source.chunk_id]
        hits.append(
            SearchHit(rank=source.n, score=source.score, source=row.source, heading=source.heading, headings=row.headings,
                      text=row.text, chunk_id=source.chunk_id, title=row.title,
                      citation=citation(row.source, row.page_start, row.page_end))
        )  # fmt: skip
    return hits


async def naive(services: Services, item: dict[str, Any], k: int) -> Run:
    started = time.perf_counter()
    hits = (await search_milvus_docs(services, item["question"], top_k=k)).results
    return Run(hits, seconds=time.perf_counter() - started)


async def research(services: Services, item: dict[str, Any]) -> Run:
    started = time.perf_counter()
    result = await research_with_qwen(services, item["question"])
    seconds = time.perf_counter() - started
    tokens = result.usage.get("total", {}).get("total_tokens", 0)
    return Run(await cited_hits(services, result), result.model_calls, tokens, seconds)


def row(name: str, items: list[dict[str, Any]], runs: list[Run]) -> dict[str, Any]:
    return {
        "system": name,
        "evidence_recall": statistics.mean(recall(i, r.hits) for i, r in zip(items, runs, strict=True)),
        "all_found": statistics.mean(recall(i, r.hits) == 1.0 for i, r in zip(items, runs, strict=True)),
        "passages": statistics.mean(len(r.hits) for r in runs),
        "model_calls": statistics.mean(r.calls for r in runs),
        "tokens": statistics.mean(r.tokens for r in runs),
        "p50_s": statistics.median(r.seconds for r in runs),
    }


async def evaluate(items: list[dict[str, Any]], shared: Path, dashscope: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp, "docs")
        with tarfile.open(shared / "corpus" / CORPORA["all"]) as tar:
            tar.extractall(docs, filter="data")
        settings = Settings.load([])
        services = dataclasses.replace(settings.services(), store=Store(f"{tmp}/eval.db"), roots=[docs])
        started = time.perf_counter()
        ingested = await ingest_documents(services, ["."])
        print(f"ingested {ingested.chunks_added} chunks in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for k in (5, 10):
            rows.append(row(f"naive top {k}", items, [await naive(services, i, k) for i in items]))
        with run_stub(api_key=STAND_IN_KEY) as stub:
            real = services.llm
            services.llm = LLMConfig(base_url=stub.base_url, api_key=STAND_IN_KEY)
            stub.research_plans = {i["question"]: i["sub_questions"] for i in items}
            rows.append(row("research, stand-in planner", items, [await research(services, i) for i in items]))
            stub.research_plans = {}
            rows.append(row("research, no split", items, [await research(services, i) for i in items]))
            services.llm = real
        if dashscope:
            rows.append(row("research, DashScope", items, [await research(services, i) for i in items]))
        services.store.close()
    return rows


def print_table(rows: list[dict[str, Any]], top_k: int) -> None:
    print(f"\n{'system':<28} {'recall':>7} {'all':>6} {'passages':>9} {'calls':>6} {'tokens':>8} {'p50 s':>6}")
    for r in rows:
        print(
            f"{r['system']:<28} {r['evidence_recall']:>7.3f} {r['all_found']:>6.3f} {r['passages']:>9.1f} "
            f"{r['model_calls']:>6.1f} {r['tokens']:>8.0f} {r['p50_s']:>6.2f}"
        )
    print(f"(research: its defaults, top_k {top_k} per query; recall over the cited passages)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder with corpus/ and eval/")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--dashscope", action="store_true", help="also research with the real model (DASHSCOPE_API_KEY)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    path = args.shared / "eval" / "eval_multihop_dev.jsonl"
    items = [json.loads(line) for line in path.open() if line.strip()][: args.limit]
    key = Settings.load([]).dashscope_api_key
    if args.dashscope and key is None:
        parser.error("--dashscope needs DASHSCOPE_API_KEY")
    print(f"{len(items)} multi-hop questions over all English pages, embedder {Settings().embedder().name}")
    rows = asyncio.run(evaluate(items, args.shared, args.dashscope))
    print_table(rows, RESEARCH_TOP_K)
    if not args.dashscope:
        print(f"\nThe same with the real model at every step (needs a key):\n{DASHSCOPE_RERUN}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
