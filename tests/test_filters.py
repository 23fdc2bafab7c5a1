"""Typed filters (lang, pages, title, after/before, contains, metadata) and document metadata, on real Milvus Lite
with the real embedder: each alone and combined, with quotes, globs and Unicode in values."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from tests.documents import Documents
from tools.answer import answer_with_qwen
from tools.errors import UserError
from tools.ingest import ingest_documents, ingest_text
from tools.manage import delete_documents, describe_collection
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store.filters import NumberRange, PageRange, Where, build

pytestmark = pytest.mark.anyio
QUOTED = 'Zoë "Q" O\'Brien \\ 100%_done'

NOTES = {
    "notes/etcd.md": (
        "---\ntitle: Etcd notes\nauthor: Ada\nyear: 2021\ntags: [ops, db]\ndate: 2026-11-30\n---\n"
        "# Etcd\n\nEtcd stores the cluster's metadata and elects a leader.\n",
        None,
    ),
    "notes/minio.md": ("# MinIO\n\nMinIO keeps the sealed segments in object storage.\n", {"author": QUOTED, "year": 2024}),
    "notes/中文.md": ("# 存储\n\nMilvus 把数据存储在对象存储中。\n", {"author": "李雷", "tags": ["存储"], "year": 2025.5}),
}


async def ingest_notes(services: Services) -> None:
    for source, (text, metadata) in NOTES.items():
        await ingest_text(services, text, source, metadata=metadata)


async def found(services: Services, where: Where | None, query: str = "where is data stored", **kw: object) -> list[str]:
    result = await search_milvus_docs(services, query, top_k=10, where=where, **kw)  # type: ignore[arg-type]
    return sorted({hit.source for hit in result.results})


async def test_metadata_from_front_matter_and_ingest_text(services: Services) -> None:
    await ingest_notes(services)
    hits = (await search_milvus_docs(services, "etcd leader", top_k=1)).results
    assert hits[0].source == "notes/etcd.md" and hits[0].title == "Etcd notes"
    assert hits[0].metadata == {"title": "Etcd notes", "author": "Ada", "year": 2021, "tags": ["ops", "db"], "date": "2026-11-30"}
    minio = (await search_milvus_docs(services, "sealed segments object storage", top_k=1)).results[0]
    assert minio.metadata == {"author": QUOTED, "year": 2024}
    with pytest.raises(UserError, match="metadata must be an object"):
        await ingest_text(services, "# x\n\ny\n", "x.md", metadata=["a"])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="cannot be stored"):
        await ingest_text(services, "# x\n\ny\n", "x.md", metadata={"big": "x" * 10_000})
    # new metadata for the same text rewrites the chunks (keeping their vectors), and nothing is embedded again
    again = await ingest_text(services, NOTES["notes/minio.md"][0], "notes/minio.md", metadata={"author": "Bob"})
    assert again.chunks_added == 0 and again.chunks_unchanged == 1
    assert (await found(services, Where(metadata={"author": "Bob"}))) == ["notes/minio.md"]


async def test_each_filter_alone_and_combined(services: Services) -> None:
    before = int(time.time())
    await ingest_notes(services)
    everything = ["notes/etcd.md", "notes/minio.md", "notes/中文.md"]
    assert await found(services, None) == everything
    assert await found(services, Where(lang=["zh"])) == ["notes/中文.md"]
    assert await found(services, Where(lang=["en"])) == ["notes/etcd.md", "notes/minio.md"]
    assert await found(services, Where(title="etcd*")) == ["notes/etcd.md"]  # a glob, ignoring case
    assert await found(services, Where(title="*o")) == ["notes/minio.md"]  # MinIO
    assert await found(services, Where(title="存?")) == ["notes/中文.md"]
    assert await found(services, Where(contains="SEALED segments")) == ["notes/minio.md"]
    assert await found(services, Where(contains="对象存储")) == ["notes/中文.md"]
    assert await found(services, Where(contains="cluster's")) == ["notes/etcd.md"]  # a quote in the value
    assert await found(services, Where(metadata={"author": QUOTED})) == ["notes/minio.md"]
    assert await found(services, Where(metadata={"author": "李雷"})) == ["notes/中文.md"]
    assert await found(services, Where(metadata={"tags": "ops"})) == ["notes/etcd.md"]  # a list holding the value
    assert await found(services, Where(metadata={"tags": ["db", "存储"]})) == ["notes/etcd.md", "notes/中文.md"]
    assert await found(services, Where(metadata={"author": ["Ada", "李雷"]})) == ["notes/etcd.md", "notes/中文.md"]
    assert await found(services, Where(metadata={"year": NumberRange(min=2022)})) == ["notes/minio.md", "notes/中文.md"]
    assert await found(services, Where(metadata={"year": NumberRange(min=2021, max=2024)})) == ["notes/etcd.md", "notes/minio.md"]
    stamp = dt.datetime.fromtimestamp(before, dt.UTC).isoformat()
    assert await found(services, Where(after=stamp)) == everything
    assert await found(services, Where(before=stamp)) == []
    assert await found(services, Where(after="2000-01-01", before="2999-01-01")) == everything
    combined = Where(lang=["en"], metadata={"year": NumberRange(max=2022)}, contains="leader", title="*notes")
    assert await found(services, combined) == ["notes/etcd.md"]
    assert await found(services, combined, source="notes/*.md") == ["notes/etcd.md"]
    assert await found(services, combined, source="other/*.md") == []
    for mode in ("dense", "bm25", "hybrid"):
        assert await found(services, Where(lang=["zh"]), query="数据 存储", mode=mode) == ["notes/中文.md"]
    result = await search_milvus_docs(services, "etcd", where=Where(contains="etcd"))
    assert result.contains_by == "like"


async def test_a_filter_that_matches_nothing_says_which_part(services: Services) -> None:
    await ingest_notes(services)
    alone = await search_milvus_docs(services, "storage", where=Where(lang=["fr"]))
    assert alone.results == [] and alone.note and "lang=['fr']" in alone.note
    part = await search_milvus_docs(services, "storage", where=Where(lang=["en"], metadata={"author": "Nobody"}))
    assert part.note and "metadata 'author' = 'Nobody'" in part.note and "lang" not in part.note
    together = await search_milvus_docs(services, "storage", where=Where(lang=["zh"], metadata={"author": "Ada"}))
    assert together.note and "no chunk matches them all together" in together.note
    glob = await search_milvus_docs(services, "storage", source="nothing/*.md", where=Where(lang=["en"]))
    assert glob.note and "source='nothing/*.md'" in glob.note and "notes/etcd.md" in glob.note
    pages = await search_milvus_docs(services, "storage", where=Where(pages=PageRange(first=1)))
    assert pages.note and "pages" in pages.note  # notes have no pages
    for bad, says in [
        (Where(after="yesterday"), "ISO 8601"),
        (Where(pages=PageRange(first=5, last=2)), "comes before"),
        (Where(pages=PageRange()), "needs"),
        (Where(metadata={'a"]': 1}), "cannot be filtered"),
        (Where(metadata={"year": NumberRange()}), "range needs"),
        (Where(contains=" "), "contains must be"),
        (Where(metadata={"author": "x\ny"}), "control characters"),
    ]:
        with pytest.raises(UserError, match=says):
            await search_milvus_docs(services, "storage", where=bad)


async def test_filters_on_answer_describe_and_delete(services: Services) -> None:
    await ingest_notes(services)
    answered = await answer_with_qwen(services, "Where is data stored?", where=Where(metadata={"author": "Nobody"}))
    assert answered.sources == [] and answered.note and "Nobody" in answered.note  # no model was called
    report = await describe_collection(services, where=Where(lang=["zh"]))
    assert [s.source for s in report.listed] == ["notes/中文.md"] and report.matching_chunks == 1 and report.sources == 3
    assert (await describe_collection(services, where=Where(lang=["fr"]))).note
    dry = await delete_documents(services, ["**"], where=Where(metadata={"year": NumberRange(min=2022)}), dry_run=True)
    assert dry.sources_removed == ["notes/minio.md", "notes/中文.md"] and dry.dry_run
    gone = await delete_documents(services, ["notes/*.md"], where=Where(contains="etcd"))
    assert gone.sources_removed == ["notes/etcd.md"]
    assert [s.source for s in (await describe_collection(services)).listed] == ["notes/minio.md", "notes/中文.md"]
    with pytest.raises(UserError, match="No document among"):
        await delete_documents(services, ["**"], where=Where(lang=["fr"]))


async def test_pages_and_docx_core_properties(tmp_path: Path, services: Services) -> None:
    import docx

    made = Documents(services.roots[0] / "made")
    document = docx.Document()
    document.core_properties.author = "Grace Hopper"
    document.core_properties.keywords = "compilers; cobol, ships"
    document.core_properties.subject = "Über Compiler"
    document.add_heading("Compilers", level=1)
    document.add_paragraph("A compiler turns source code into machine code.")
    path = made.path("hopper.docx")
    document.save(str(path))
    await ingest_documents(services, [str(path)])
    hit = (await search_milvus_docs(services, "compiler machine code", top_k=1)).results[0]
    assert hit.metadata["author"] == "Grace Hopper" and hit.metadata["keywords"] == ["compilers", "cobol", "ships"]
    assert hit.metadata["subject"] == "Über Compiler" and "created" in hit.metadata
    assert await found(services, Where(metadata={"keywords": "cobol"}), query="compiler") == ["made/hopper.docx"]
    manual = made.manual_pdf
    await ingest_documents(services, [str(manual)])
    on = (
        await search_milvus_docs(services, "pager alert health probes", top_k=10, where=Where(pages=PageRange(first=4, last=4)))
    ).results
    assert on and all(h.page_start <= 4 <= h.page_end for h in on)
    assert on[0].metadata["created"][:2] == "20"  # the PDF's document information (LibreOffice writes its dates)
    late = (await search_milvus_docs(services, "installer checksum", top_k=10, where=Where(pages=PageRange(first=5)))).results
    assert late and all(h.page_end >= 5 for h in late)


def test_older_collections_refuse_filters_on_fields_they_lack() -> None:
    old = frozenset({"id", "source", "text", "title", "headings", "chunk_index", "content_hash"})
    for where, says in [(Where(lang=["en"]), "language"), (Where(after="2026-01-01"), "ingest time"),
                        (Where(metadata={"a": 1}), "metadata"), (Where(pages=PageRange(first=1)), "pages")]:  # fmt: skip
        with pytest.raises(UserError, match=f"before chunks recorded their {says}"):
            build(where, None, old, "old")
    assert build(Where(title="*x*", contains="y"), "a/*.md", old).expr  # these need no new field


@pytest.mark.slow
def test_filter_flags_in_the_cli(tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.conftest import run_cli, server_env

    env = server_env(tmp_path / "cli.db", HOME=str(tmp_path), COLUMNS="200")

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(env, *args, stdin=stdin)

    for source, (text, metadata) in NOTES.items():
        stored = cli("ingest-text", source, *(["--metadata", json.dumps(metadata)] if metadata else []), stdin=text)
        assert stored.returncode == 0, stored.stderr
    search = cli("search", "storage", "--json", "--meta", "year>=2022", "--meta", "year<=2024.9", "--lang", "en")
    assert search.returncode == 0, search.stderr
    assert [hit["source"] for hit in json.loads(search.stdout)["results"]] == ["notes/minio.md"]
    tags = json.loads(cli("search", "storage", "--json", "--meta", 'tags=["db"]', "--contains", "LEADER").stdout)
    assert [hit["source"] for hit in tags["results"]] == ["notes/etcd.md"] and tags["contains_by"] == "like"
    info = cli("info", "--lang", "zh")
    assert info.returncode == 0 and "notes/中文.md" in info.stdout and "notes/etcd.md" not in info.stdout
    nothing = cli("search", "storage", "--meta", "author=Nobody")
    assert nothing.returncode == 0 and "author" in nothing.stdout and "Nobody" in nothing.stdout
    bad = cli("search", "storage", "--pages", "x-y")
    assert bad.returncode == 1 and "--pages must be" in bad.stderr
    deleted = cli("delete", "**", "--title", "etcd*", "--dry-run")
    assert deleted.returncode == 0 and "notes/etcd.md" in deleted.stdout and "minio" not in deleted.stdout


async def test_research_takes_the_filters(services: Services) -> None:
    from tests.dashscope_stub import run_stub
    from tools.llm import LLMConfig
    from tools.research import research_with_qwen

    await ingest_notes(services)
    key = "sk-test-research-0123456789abcdef"
    with run_stub(api_key=key) as stub:
        services.llm = LLMConfig(base_url=stub.base_url, api_key=key, max_retries=0)
        asked = "Where are the segments and the metadata stored?"
        result = await research_with_qwen(services, asked, max_rounds=1, where=Where(contains="object storage", lang=["en"]))
        assert result.sources and {s.source for s in result.sources} == {"notes/minio.md"}
        nothing = await research_with_qwen(
            services, "Where is data stored?", max_rounds=1, where=Where(metadata={"author": "Nobody"})
        )
        assert nothing.sources == []
