"""`tools.store.Store` against real Milvus servers on loopback: Milvus Lite's engine over gRPC, and Milvus 2.3
standalone (no BM25, one vector field per collection, JSON objects only) in a loopback-only network namespace."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.milvus_lite_server import serve_milvus_lite
from tests.milvus_server import STANDALONE_INSTALL, STANDALONE_VENV, serve_milvus_standalone
from tools.errors import UserError
from tools.store import ChunkRow, DenseIndex, Store

pytestmark = [pytest.mark.anyio, pytest.mark.milvus_server]
DIM = 4


@pytest.fixture(scope="module")
def standalone() -> Iterator[str]:
    """One Milvus 2.3 standalone for the module (about 3 s to start once its binaries are unpacked)."""
    if not (STANDALONE_VENV / "bin" / "python").exists():
        pytest.skip(f"Milvus standalone is not installed: {STANDALONE_INSTALL}")
    with serve_milvus_standalone() as uri:
        yield uri


@pytest.fixture
def lite_server(tmp_path: Path) -> Iterator[str]:
    with serve_milvus_lite(tmp_path / "served.db") as uri:
        yield uri


def _row(cid: str, vector: list[float], text: str) -> ChunkRow:
    return ChunkRow(
        id=cid,
        source=f"{cid}.md",
        root="",
        title="T",
        headings=["T", cid],
        text=text,
        chunk_index=0,
        content_hash=cid,
        vector=vector,
        heading_vector=vector,
    )


async def _round_trip(uri: str, name: str) -> tuple[bool, bool]:
    """Create, write with one client, search with another at once, reopen; the (hybrid, heading_vectors) it got."""
    writer, reader = Store(uri), Store(uri)
    try:
        info = await writer.ensure(name, "toy", DIM)
        rows = [
            _row("a", [1.0, 0.0, 0.0, 0.0], "Milvus stores data in object storage"),
            _row("b", [0.0, 1.0, 0.0, 0.0], "Bananas are yellow"),
        ]
        await writer.upsert(name, rows)
        # no flush: Session reads see this process's writes at once (pymilvus keeps the write timestamps per process)
        hits = await reader.search_dense(name, [1.0, 0.1, 0.0, 0.0], 2)
        assert [h.chunk_id for h in hits] == ["a", "b"]
        assert hits[0].row is not None and hits[0].row.headings == ["T", "a"]
        if info.hybrid:
            assert [h.chunk_id for h in await reader.search_bm25(name, "where is data stored", 2)][:1] == ["a"]
        await writer.upsert(name, [_row("a", [0.0, 0.0, 1.0, 0.0], "changed")])
        await writer.delete_ids(name, ["b"])
        # a delete by another client reaches Session reads on Milvus 2.3 within a moment (it passed and failed at once)
        for _ in range(50):
            if await reader.sources(name) == {("", "a.md"): 1}:
                break
            await anyio.sleep(0.1)
        assert await reader.sources(name) == {("", "a.md"): 1}
        assert (await reader.fetch(name, ["a"]))["a"].text == "changed"
        assert await reader.existing(name, ["a.md"]) != {}  # query_iterator
    finally:
        writer.close()
        reader.close()
    reopened = Store(uri)
    try:
        again = await reopened.info(name)
        assert again == info
        return info.hybrid, info.heading_vectors
    finally:
        reopened.close()


async def test_lite_server_round_trip(lite_server: str) -> None:
    assert await _round_trip(lite_server, "docs") == (True, True)


async def test_standalone_2_3_round_trip_is_dense_only(standalone: str) -> None:
    assert await _round_trip(standalone, "docs_round_trip") == (False, False)


async def test_standalone_2_3_collection_is_dense_only(standalone: str) -> None:
    store = Store(standalone)
    try:
        info = await store.ensure("docs_dense", "toy", DIM)
        assert (info.hybrid, info.heading_vectors) == (False, False)
    finally:
        store.close()
    reopened = Store(standalone)
    try:
        assert await reopened.info("docs_dense") == info  # no half-made BM25 field left behind
    finally:
        reopened.close()


def test_milvus_2_3_facts_the_store_must_handle(standalone: str) -> None:
    """What Milvus 2.3 does with the full schema, so the store's fallback knows what to expect."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException

    client = MilvusClient(standalone)
    try:
        assert client.get_server_version().startswith("v2.3.")
        schema = client.create_schema(auto_id=False, description=json.dumps({"embedder": "toy"}))
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True, analyzer_params={"type": "english"})
        schema.add_field("headings", DataType.JSON)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"])
        )
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        with pytest.raises(MilvusException, match="create index on 104 field is not supported"):
            client.create_collection("facts", schema=schema, index_params=index, consistency_level="Strong")
        # the collection was made before its sparse index failed: a `sparse` field, no function, not loaded
        made = client.describe_collection("facts")
        assert "sparse" in {f["name"] for f in made["fields"]} and not made.get("functions")
        assert client.list_indexes("facts") == ["vector"]
        client.drop_collection("facts")

        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("headings", DataType.JSON)
        index = client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        client.create_collection("facts", schema=schema, index_params=index, consistency_level="Strong")
        with pytest.raises(MilvusException, match="cannot unmarshal array"):  # a JSON field takes objects only
            client.insert("facts", [{"id": "a", "vector": [1.0, 0, 0, 0], "headings": ["T", "a"]}])
        client.insert("facts", [{"id": "a", "vector": [1.0, 0, 0, 0], "headings": {"path": ["T", "a"]}}])
        hits = client.search(
            "facts",
            [[1.0, 0, 0, 0]],
            anns_field="vector",
            limit=1,
            output_fields=["headings"],
            search_params={"metric_type": "COSINE"},
        )
        assert hits[0][0]["entity"]["headings"] == {"path": ["T", "a"]}  # seen at once, without a flush
        client.drop_collection("facts")
    finally:
        client.close()


async def test_standalone_2_3_hnsw_is_recorded_and_searched_with_ef_at_least_the_limit(standalone: str) -> None:
    hnsw = DenseIndex.chosen("HNSW", m=8, ef_construction=32, ef=16)
    store = Store(standalone, dense_index=hnsw)
    try:
        info = await store.ensure("docs_hnsw", "toy", DIM)
        assert info.index == hnsw
        rows = [_row(f"c{i:02d}", [1.0, i / 60, (i % 7) / 7, 0.0], f"text {i}") for i in range(60)]
        await store.upsert("docs_hnsw", rows)
        await store.flush("docs_hnsw")
        made = await store.connection.run(lambda client: client.describe_index("docs_hnsw", "vector"))
        assert (made["index_type"], int(made["M"]), int(made["efConstruction"])) == ("HNSW", 8, 32)
        # 50 results from an index searched with ef=16: Milvus refuses ef < limit, so the store raises it
        assert len(await store.search_dense("docs_hnsw", [1.0, 0.0, 0.0, 0.0], 50)) == 50
        ids = [f"c{i:02d}" for i in range(0, 60, 2)]
        found = await store.search_dense("docs_hnsw", [1.0, 0.0, 0.0, 0.0], len(ids), ids=ids, rows=False)
        assert sorted(h.chunk_id for h in found) == ids
    finally:
        store.close()
    reopened = Store(standalone)  # default settings (AUTOINDEX): the collection keeps its HNSW
    try:
        again = await reopened.info("docs_hnsw")
        assert again is not None and (again.index.type, again.index.build) == ("HNSW", hnsw.build)
        assert len(await reopened.search_dense("docs_hnsw", [1.0, 0.0, 0.0, 0.0], 40)) == 40
    finally:
        reopened.close()


async def test_standalone_2_3_refused_index_is_one_clear_error(standalone: str, caplog: pytest.LogCaptureFixture) -> None:
    """Not the misleading 'cannot make it with BM25, made it dense-only' of before, and no half-made collection."""
    store = Store(standalone, dense_index=DenseIndex("IVF_FLAT", {"nlist": 70000}))
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(UserError) as refused:
            await store.ensure("docs_refused", "toy", DIM)
        assert "cannot build a IVF_FLAT index (DENSE_INDEX): it said:" in str(refused.value)
        assert "docs_refused" not in await store.collections()
        assert not [r for r in caplog.records if "dense-only" in r.getMessage()]
    finally:
        store.close()


async def test_typed_filters_on_milvus_2_3(standalone: str) -> None:
    """The metadata JSON field, ingest times and every kind of filter part on a Milvus without BM25."""
    from tools.store.filters import NumberRange, Where, build

    store = Store(standalone)
    try:
        info = await store.ensure("filters", "toy", DIM)
        rows = [
            _row("a", [1.0, 0.0, 0.0, 0.0], 'Milvus stores data in "object" storage'),
            _row("b", [0.0, 1.0, 0.0, 0.0], "Bananas are yellow"),
        ]
        rows[0].metadata, rows[0].ingested_at, rows[0].lang = {"author": "Zoë", "tags": ["db"], "year": 2021}, 100, "en"
        rows[1].metadata, rows[1].ingested_at, rows[1].lang = {"author": "Bob", "year": 2024}, 200, "en"
        await store.upsert("filters", rows)
        await store.flush("filters")
        for where, expected in [
            (Where(metadata={"author": "Zoë"}), ["a"]),
            (Where(metadata={"tags": "db"}), ["a"]),
            (Where(metadata={"author": ["Bob", "x"]}), ["b"]),
            (Where(metadata={"year": NumberRange(min=2022)}), ["b"]),
            (Where(contains='"OBJECT" storage'), ["a"]),
            (Where(title="t", lang=["en"]), ["a", "b"]),
            (Where(after="1970-01-01T00:02:30Z"), ["b"]),
        ]:
            flt = build(where, None, info.fields, "filters")
            hits = await store.search_dense("filters", [1.0, 1.0, 0.0, 0.0], 5, where=flt)
            assert sorted(h.chunk_id for h in hits) == expected, where
            assert hits[0].row is not None and hits[0].row.metadata
    finally:
        store.close()
