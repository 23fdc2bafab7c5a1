"""ingest_documents and search_milvus_docs as plain functions, on real Milvus Lite and the real model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.embedders import Embedder
from tools.errors import UserError
from tools.ingest import ingest_documents
from tools.manage import delete_documents, describe_collection
from tools.search import search_milvus_docs
from tools.services import Services

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"


class CountingEmbedder(Embedder):
    """The real embedder, counting the texts it is given."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.name, self.dim, self.texts = inner, inner.name, inner.dim, 0

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return await self.inner.embed_documents(texts)


async def test_ingest_search_and_reingest(services: Services, docs: Path) -> None:
    counting = CountingEmbedder(services.embedder)
    services.embedder = counting
    first = await ingest_documents(services, ["milvus_docs/en"])
    assert first.files == 4 and first.chunks_added > 40 and first.chunks_removed == 0
    assert counting.texts == 2 * first.chunks_added  # each chunk's text and its section heading

    result = await search_milvus_docs(services, QUESTION)
    assert len(result.results) == 3
    assert "Where does Milvus store data?" in [hit.heading for hit in result.results]
    top = result.results[0]
    assert top.rank == 1 and top.source.startswith("milvus_docs/en/faq/") and top.text and top.chunk_id

    counting.texts = 0
    again = await ingest_documents(services, ["milvus_docs/en"])
    assert (again.chunks_added, again.chunks_removed, again.chunks_unchanged) == (0, 0, first.chunks_added)
    assert counting.texts == 0


async def test_changed_file_has_its_chunks_replaced(services: Services, docs: Path) -> None:
    faq = docs / "milvus_docs" / "en" / "faq" / "performance_faq.md"
    first = await ingest_documents(services, [str(faq)])
    text = faq.read_text()
    head, heading, rest = text.partition("#### Why do queries sometimes take longer on smaller datasets?")
    faq.write_text(head + "#### A brand new question about zebras?\n\nZebras are not vectors.\n\n" + heading + rest)
    second = await ingest_documents(services, [str(faq)])
    assert second.chunks_added == 1 and second.chunks_removed == 0
    assert second.chunks_unchanged == first.chunks_added
    hits = await search_milvus_docs(services, "zebras", top_k=1)
    assert hits.results[0].heading == "A brand new question about zebras?"

    faq.write_text(head)  # drop everything after the first sections
    third = await ingest_documents(services, [str(faq)])
    assert third.chunks_added == 0 and third.chunks_removed > 0
    report = await describe_collection(services)
    assert report.chunks == first.chunks_added + 1 - third.chunks_removed


async def test_source_filter(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en/faq/*.md"])
    result = await search_milvus_docs(services, QUESTION, top_k=5, source="*/performance_faq.md")
    assert result.results and {h.source for h in result.results} == {"milvus_docs/en/faq/performance_faq.md"}
    none = await search_milvus_docs(services, QUESTION, source='" or source != "')
    assert none.results == [] and "No document matches" in (none.note or "")
    for mode in ("dense", "bm25", "hybrid"):
        scoped = await search_milvus_docs(services, QUESTION, top_k=5, source="faq/product_faq.md", mode=mode)
        assert scoped.results and {h.source for h in scoped.results} == {"milvus_docs/en/faq/product_faq.md"}
        everything = await search_milvus_docs(services, "Milvus", top_k=5, source="*", mode=mode)
        assert len(everything.results) == 5
    missing = await search_milvus_docs(services, QUESTION, source="nothing/*.md")
    assert missing.results == [] and missing.note is not None
    assert missing.note.startswith("No document matches source='nothing/*.md'") and "milvus_docs/en/faq/" in missing.note


async def test_bad_files_are_skipped_with_reasons(services: Services, docs: Path) -> None:
    bad = docs / "bad"
    bad.mkdir()
    (bad / "binary.md").write_bytes(b"\x89PNG\x00\x00\x01")
    (bad / "empty.md").write_text("")
    (bad / "big.md").write_text("x" * 2048)
    (bad / "ok.txt").write_text("Plain text is fine.")
    (bad / "image.png").write_bytes(b"\x89PNG")
    (bad / "notes.xyz").write_text("a format nobody reads")
    services.max_file_bytes = 1024
    result = await ingest_documents(services, ["bad", "bad/notes.xyz"])
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons["binary.md"] == "binary file, not text"
    assert reasons["empty.md"] == "no text to index"
    assert reasons["big.md"] == "larger than the 1 KB limit (MAX_FILE_MB)"
    assert reasons["image.png"] == "not a readable image (damaged, truncated, or not the format its name says)"
    assert reasons["notes.xyz"] == "unsupported file type .xyz"
    assert result.files == 1 and result.chunks_added == 1
    assert result.skipped_by_reason["unsupported file type .xyz"] == 2  # found by the walk, and named
    assert result.summary.startswith("1 document(s) in milvus_docs: 1 chunks added") and "Skipped 6 file(s)" in result.summary


async def test_paths_outside_the_roots_are_refused(services: Services, docs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nDo not index me.\n")
    os.symlink(secret, docs / "link.md")
    os.symlink(tmp_path, docs / "linkdir")
    for path in [str(secret), "../secret.md", "link.md", "linkdir/secret.md", str(tmp_path / "*.md"), "/etc/passwd"]:
        with pytest.raises(UserError, match="outside the folders this server may read"):
            await ingest_documents(services, [path])
    result = await ingest_documents(services, ["."])  # walking the root skips the links that leave it
    assert all("secret" not in s for s in [h for h in (s.path for s in result.skipped)])
    hits = await search_milvus_docs(services, "Do not index me", top_k=50)
    assert all("Do not index me" not in h.text for h in hits.results)


async def test_clear_errors_for_bad_arguments(services: Services) -> None:
    with pytest.raises(UserError, match="does not exist"):
        await ingest_documents(services, ["nowhere.md"])
    with pytest.raises(UserError, match="matched no files"):
        await ingest_documents(services, ["*.pdf"])
    with pytest.raises(UserError, match="does not exist yet"):
        await search_milvus_docs(services, QUESTION, collection="never_made")
    with pytest.raises(UserError, match="Invalid collection name"):
        await search_milvus_docs(services, QUESTION, collection="x; drop")
    for top_k in (0, -1, 10_000):
        with pytest.raises(UserError, match="top_k must be"):
            await search_milvus_docs(services, QUESTION, top_k=top_k)
    for query in ("", "   ", "x" * 5000):
        with pytest.raises(UserError, match="query"):
            await search_milvus_docs(services, query)


async def test_hybrid_and_bm25_modes(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en"])
    hybrid = await search_milvus_docs(services, QUESTION, mode="hybrid")
    assert hybrid.mode == "hybrid" and hybrid.note is None
    assert "Where does Milvus store data?" in [h.heading for h in hybrid.results]
    assert [h.score for h in hybrid.results] == sorted((h.score for h in hybrid.results), reverse=True)
    exact = await search_milvus_docs(services, "etcd MinIO", top_k=5, mode="bm25")
    assert exact.results and all("etcd" in h.text.lower() or "minio" in h.text.lower() for h in exact.results)
    scoped = await search_milvus_docs(services, QUESTION, top_k=5, source="*/performance_faq.md", mode="hybrid")
    assert {h.source for h in scoped.results} == {"milvus_docs/en/faq/performance_faq.md"}
    with pytest.raises(UserError, match="mode must be one of"):
        await search_milvus_docs(services, QUESTION, mode="fuzzy")


async def test_collection_without_bm25_is_searched_dense_with_a_hint(services: Services) -> None:
    """A collection made before the BM25 and heading fields existed keeps working."""
    from pymilvus import DataType

    def old_schema(client) -> None:
        schema = client.create_schema(auto_id=False, description='{"embedder": "all-MiniLM-L6-v2", "dim": 384}')
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
        for field in ("text", "source", "title", "content_hash"):
            schema.add_field(field, DataType.VARCHAR, max_length=4096)
        schema.add_field("headings", DataType.JSON)
        schema.add_field("chunk_index", DataType.INT64)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        client.create_collection("old_docs", schema=schema, index_params=index)

    await services.store.connection.run(old_schema)
    result = await ingest_documents(services, ["milvus_docs/en/faq/product_faq.md"], collection="old_docs")
    assert result.chunks_added > 10
    found = await search_milvus_docs(services, QUESTION, collection="old_docs", mode="hybrid")
    assert found.mode == "dense" and "re-ingest" in (found.note or "")
    assert "Where does Milvus store data?" in [h.heading for h in found.results]


async def test_prune_describe_and_delete(services: Services, docs: Path) -> None:
    first = await ingest_documents(services, ["milvus_docs/en"])
    report = await describe_collection(services)
    assert (report.chunks, report.sources, report.embedder, report.dim) == (first.chunks_added, 4, "all-MiniLM-L6-v2", 384)
    assert report.collections == ["milvus_docs"]
    (docs / "milvus_docs" / "en" / "faq" / "troubleshooting.md").unlink()
    kept = await ingest_documents(services, ["milvus_docs/en"])  # without prune, nothing is removed
    assert kept.chunks_removed == 0
    pruned = await ingest_documents(services, ["milvus_docs/en"], prune=True)
    gone = next(s.chunks for s in report.listed if s.source.endswith("troubleshooting.md"))
    assert pruned.chunks_removed == gone
    deleted = await delete_documents(services, ["*/performance_faq.md"])
    assert deleted.sources_removed == ["milvus_docs/en/faq/performance_faq.md"] and deleted.chunks_removed > 0
    after = await describe_collection(services)
    assert after.sources == 2 and after.chunks == first.chunks_added - gone - deleted.chunks_removed
    with pytest.raises(UserError, match="No source"):
        await delete_documents(services, ["nothing/*.md"])


async def test_search_in_an_empty_collection_finds_nothing(services: Services, docs: Path) -> None:
    (docs / "empty.md").write_text("")
    result = await ingest_documents(services, ["empty.md"])
    assert result.chunks_added == 0 and result.skipped_by_reason == {"no text to index": 1}
    assert result.summary.startswith("Found 1 file(s) but could index none")
    assert await services.store.collections() == []  # an ingest that stores nothing makes no collection
    await services.store.ensure(services.collection, services.embedder.name, services.embedder.dim)
    for mode in ("dense", "bm25", "hybrid"):
        assert (await search_milvus_docs(services, QUESTION, mode=mode)).results == []
