"""Navigation figures, side by side in one run on the FAQ (Milvus Lite, the local embedder, in process):

- search p50 without a filter and with each kind of `where` (lang, pages, title, after, contains, metadata);
- get_document_outline p50 for the largest FAQ document;
- watch: the time from a file written to its chunks searchable, and from a file deleted to its chunks gone.

    .venv/bin/python bench/bench_navigation.py            # 30 searches per filter
    .venv/bin/python bench/bench_navigation.py --runs 100
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools import watch
from tools.embedders import OnnxMiniLM
from tools.ingest import ingest_documents
from tools.outline import get_document_outline
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store import Store
from tools.store.filters import NumberRange, PageRange, Where

QUERY = "How is data stored in milvus?"


async def p50(call: Callable[[], Awaitable[Any]], runs: int) -> float:
    await call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(REPO / "data" / "milvus_docs", root / "milvus_docs")
        store = Store(str(Path(tmp) / "bench.db"))
        services = Services(store=store, embedder=OnnxMiniLM(), roots=[root])
        await ingest_documents(services, ["milvus_docs/en/faq"])
        cases: dict[str, Where | None] = {
            "none": None,
            "lang": Where(lang=["en"]),
            "pages": Where(pages=PageRange(first=1)),
            "title": Where(title="*faq*"),
            "after": Where(after="2000-01-01"),
            "contains": Where(contains="object storage"),
            "metadata": Where(metadata={"year": NumberRange(min=2020)}),
        }
        print("search p50 (ms, hybrid, top 3, FAQ):")
        for label, where in cases.items():
            ms = await p50(lambda where=where: search_milvus_docs(services, QUERY, where=where), runs)
            print(f"  {label:9s} {ms:7.1f}")
        counts = await store.sources(services.collection)
        largest = max(counts, key=lambda key: counts[key])[1]
        ms = await p50(lambda: get_document_outline(services, largest), runs)
        print(f"outline p50 of {largest} ({counts[next(k for k in counts if k[1] == largest)]} chunks): {ms:.1f} ms")

        task = asyncio.create_task(watch.watch(services, debounce_ms=100))
        try:
            await asyncio.sleep(2)  # the first sync
            note = root / "milvus_docs" / "watched.md"
            started = time.perf_counter()
            note.write_text("# Zebra notes\n\nZebras are not vectors, but their stripes could be embedded.\n")
            while not any(s.endswith("watched.md") for _, s in await store.sources(services.collection)):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            print(f"watch: written -> stored {(time.perf_counter() - started) * 1000:.0f} ms (debounce 100 ms)")
            started = time.perf_counter()
            note.unlink()
            while any(s.endswith("watched.md") for _, s in await store.sources(services.collection)):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            print(f"watch: deleted -> gone {(time.perf_counter() - started) * 1000:.0f} ms")
        finally:
            task.cancel()
            store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
