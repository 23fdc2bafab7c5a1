"""The dense index chosen per collection: recorded when the collection is made, matched by every search, shown by
describe_collection; an index the backend refuses is one clear error. On a real Milvus Lite file."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from server.settings import Settings
from tools.embedders import OnnxMiniLM
from tools.errors import UserError
from tools.manage import describe_collection
from tools.services import Services
from tools.store import ChunkRow, DenseIndex, Store

pytestmark = pytest.mark.anyio
DIM = 4


def _rows(count: int) -> list[ChunkRow]:
    rows = []
    for i in range(count):
        angle = i / count * math.pi / 2
        vector = [math.cos(angle), math.sin(angle), 0.0, 0.0]
        rows.append(
            ChunkRow(f"c{i:03d}", f"doc{i % 3}.md", "", "T", ["T"], f"text {i}", i, f"h{i}", vector=vector, heading_vector=vector)
        )
    return rows


def test_searches_send_what_the_index_takes() -> None:
    hnsw = DenseIndex.chosen("HNSW", m=8, ef_construction=64, ef=32)
    assert hnsw.index_params() == {"index_type": "HNSW", "metric_type": "COSINE", "params": {"M": 8, "efConstruction": 64}}
    assert hnsw.search_params(10) == {"metric_type": "COSINE", "params": {"ef": 32}}
    assert hnsw.search_params(150) == {"metric_type": "COSINE", "params": {"ef": 150}}  # HNSW needs ef >= limit
    ivf = DenseIndex.chosen("IVF_FLAT", nlist=8, nprobe=16)
    assert ivf.search_params(5) == {"metric_type": "COSINE", "params": {"nprobe": 8}}  # no more clusters than exist
    assert DenseIndex.chosen("FLAT", m=99).index_params()["params"] == {}
    assert DenseIndex().search_params(5) == {"metric_type": "COSINE"}
    assert hnsw.describe() == "HNSW (M=8, efConstruction=64; searches ef=32, or the result count if larger)"


@pytest.mark.parametrize(
    "chosen", [DenseIndex.chosen("FLAT"), DenseIndex.chosen("IVF_FLAT", nlist=4, nprobe=2), DenseIndex.chosen("AUTOINDEX")]
)
async def test_each_lite_index_is_recorded_and_kept(tmp_path: Path, chosen: DenseIndex) -> None:
    path = str(tmp_path / "m.db")
    store = Store(path, dense_index=chosen)
    info = await store.ensure("docs", "toy", DIM)
    assert info.index == chosen
    await store.upsert("docs", _rows(40))
    await store.flush("docs")
    hits = await store.search_dense("docs", [1.0, 0.0, 0.0, 0.0], 3)
    assert [h.chunk_id for h in hits] == ["c000", "c001", "c002"]
    ids = [f"c{i:03d}" for i in range(10, 40, 3)]
    restricted = await store.search_dense("docs", [1.0, 0.0, 0.0, 0.0], len(ids), ids=ids, field="heading_vector", rows=False)
    assert sorted(h.chunk_id for h in restricted) == ids
    store.close()

    # reopened by a server whose settings now ask for another index: the collection keeps its own
    reopened = Store(path, dense_index=DenseIndex.chosen("FLAT" if chosen.type != "FLAT" else "AUTOINDEX", nprobe=3))
    try:
        again = await reopened.info("docs")
        assert again is not None and (again.index.type, again.index.build, again.index.nprobe) == (chosen.type, chosen.build, 3)
        made = await reopened.connection.run(lambda client: client.describe_index("docs", "vector"))
        assert made["index_type"] == chosen.type and {k: int(made[k]) for k in chosen.build} == chosen.build
        assert len(await reopened.search_dense("docs", [0.0, 1.0, 0.0, 0.0], 5)) == 5
        report = await describe_collection(Services(store=reopened, embedder=_Toy(), roots=[tmp_path]), collection="docs")
        assert report.index == again.index.describe() and report.index.startswith(chosen.type)
    finally:
        reopened.close()


class _Toy(OnnxMiniLM):
    """describe_collection checks the embedder by name and size only: nothing is embedded."""

    name, dim = "toy", DIM


async def test_hnsw_on_lite_is_one_clear_error_and_leaves_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(str(tmp_path / "m.db"), dense_index=DenseIndex.chosen("HNSW"))
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(UserError) as refused:
            await store.ensure("docs", "toy", DIM)
        message = str(refused.value)
        assert "cannot build a HNSW index (DENSE_INDEX): Milvus Lite builds only AUTOINDEX, FLAT, IVF_FLAT" in message
        assert "Set DENSE_INDEX to one it builds" in message
        assert await store.collections() == []
        assert not [r for r in caplog.records if "dense-only" in r.getMessage()]
    finally:
        store.close()


async def test_collections_made_before_the_record_have_autoindex(tmp_path: Path) -> None:
    from pymilvus import DataType

    path = str(tmp_path / "m.db")
    store = Store(path, dense_index=DenseIndex.chosen("IVF_FLAT"))
    try:

        def make_old(client: object) -> None:
            schema = client.create_schema(auto_id=False, description=json.dumps({"embedder": "toy", "dim": DIM}))  # type: ignore[attr-defined]
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
            schema.add_field("source", DataType.VARCHAR, max_length=100)
            index = client.prepare_index_params()  # type: ignore[attr-defined]
            index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
            client.create_collection("old", schema=schema, index_params=index)  # type: ignore[attr-defined]
            client.insert("old", [{"id": "a", "vector": [1.0, 0, 0, 0], "source": "a.md"}])  # type: ignore[attr-defined]

        await store.connection.run(make_old)
        info = await store.info("old")
        assert info is not None and (info.index.type, info.index.build) == ("AUTOINDEX", {})
        assert [h.chunk_id for h in await store.search_dense("old", [1.0, 0.0, 0.0, 0.0], 1)] == ["a"]
    finally:
        store.close()


def test_settings_choose_and_tune_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DENSE_INDEX", "HNSW")
    monkeypatch.setenv("HNSW_M", "32")
    monkeypatch.setenv("HNSW_EF", "128")
    store = Settings.load([]).services().store
    assert store.dense_index == DenseIndex("HNSW", {"M": 32, "efConstruction": 200}, ef=128, nprobe=16)
    assert Settings.load(["--dense-index", "IVF_FLAT", "--ivf-nlist", "64"]).services().store.dense_index.build == {"nlist": 64}
