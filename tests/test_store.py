"""A real Milvus Lite file: create, write, search, reopen, refuse a different embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.errors import UserError
from tools.store import ChunkRow, Store
from tools.store.filters import quote
from tools.store.store import QUERY_WINDOW

pytestmark = pytest.mark.anyio

DIM = 4


def _row(cid: str, source: str, vector: list[float], text: str = "some text") -> ChunkRow:
    return ChunkRow(
        id=cid,
        source=source,
        root="",
        title="T",
        headings=["T", cid],
        text=text,
        chunk_index=0,
        content_hash=cid,
        vector=vector,
        heading_vector=vector,
    )


async def test_round_trip_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    store = Store(path)
    await store.ensure("docs", "toy", DIM)
    sources = ['a"quote.md', "back\\slash.md", "plain.md", "x_1.md", "xa1.md"]
    await store.upsert("docs", [_row(f"id{i}", s, [1.0, i / 10, 0.0, 0.0]) for i, s in enumerate(sources)])
    await store.flush("docs")
    assert sum((await store.sources("docs")).values()) == 5
    found = await store.existing("docs", ['a"quote.md', "back\\slash.md"])
    assert set(found) == {'a"quote.md', "back\\slash.md"}
    hits = await store.search_dense("docs", [1.0, 0.0, 0.0, 0.0], 2)
    assert [h.chunk_id for h in hits] == ["id0", "id1"]
    assert hits[0].row is not None and hits[0].row.headings == ["T", "id0"] and hits[0].row.source == 'a"quote.md'
    fetched = await store.fetch("docs", ["id1"], vectors=["vector", "heading_vector"])
    assert fetched["id1"].vector == pytest.approx([1.0, 0.1, 0.0, 0.0]) and fetched["id1"].heading_vector is not None
    store.close()

    reopened = Store(path)
    info = await reopened.info("docs")
    assert info is not None and (info.embedder, info.dim, info.hybrid, info.heading_vectors) == ("toy", DIM, True, True)
    hits = await reopened.search_dense("docs", [1.0, 0.0, 0.0, 0.0], 5, source="x_1.md")
    assert [h.row.source for h in hits if h.row] == ["x_1.md"]  # `_` in a glob is literal
    hits = await reopened.search_dense("docs", [1.0, 0.0, 0.0, 0.0], 5, source="*.md", rows=False)
    assert len(hits) == 5 and all(h.row is None for h in hits)
    await reopened.delete_ids("docs", ["id0", "id1"])
    assert sum((await reopened.sources("docs")).values()) == 3
    with pytest.raises(UserError, match="built with embedder toy"):
        await reopened.ensure("docs", "other-model", DIM)
    reopened.close()


@pytest.mark.processes
async def test_a_plain_client_holding_the_file_is_refused_and_our_processes_share_it(tmp_path: Path) -> None:
    """A plain milvus-lite client (another program) owns its engine: ours refuses the file, clearly. Once it is gone,
    a second process of ours shares the file with this one."""
    import subprocess
    import sys

    path = tmp_path / "locked.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from pymilvus import MilvusClient; import sys, time; MilvusClient({str(path)!r}); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(UserError, match="already open in another process") as err:
            await Store(str(path)).connect()
        assert str(path) in str(err.value) and str(holder.pid) in str(err.value)
    finally:
        holder.kill()
        holder.wait()

    store = Store(str(path))
    await store.ensure("docs", "toy", DIM)
    other = (
        "import asyncio; from tools.store import Store\n"
        "async def main():\n"
        f"    store = Store({str(path)!r})\n"
        "    await store.ensure('theirs', 'toy', 4)\n"
        "    print(await store.collections(), store.connection.engine_status().started_here)\n"
        "    store.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", other], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['docs',", "'theirs']", "False"]  # it joined this process's engine
    assert await store.collections() == ["docs", "theirs"]  # and what it made is seen here
    status = store.connection.engine_status()
    assert status is not None and status.started_here and status.processes == 1
    store.close()


def test_quote_escapes_and_refuses_control_characters() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote('" or id != "') == '"\\" or id != \\""'
    with pytest.raises(UserError, match="control characters"):
        quote("a\nb")


async def test_bad_lite_file_names_are_explained(tmp_path: Path) -> None:
    for name in ("my docs.db", "milvus.sqlite", "x" * 40 + ".db"):
        with pytest.raises(UserError, match="Milvus Lite file name"):
            await Store(str(tmp_path / name)).connect()


async def test_row_listings_past_one_query_window(tmp_path: Path) -> None:
    """More rows than one Milvus query returns: the listing goes on with an iterator and misses none."""
    store = Store(str(tmp_path / "big.db"))
    await store.ensure("docs", "toy", DIM)
    total = QUERY_WINDOW + 7
    for at in range(0, total, 4000):
        await store.upsert(
            "docs", [_row(f"id{i}", f"dir/{i % 3}.md", [1.0, 0.0, 0.0, i / total]) for i in range(at, min(at + 4000, total))]
        )
    await store.flush("docs")
    assert sum((await store.sources("docs", "dir")).values()) == total
    found = await store.existing("docs", ["dir/0.md", "dir/1.md"])
    assert len({r.id for rows in found.values() for r in rows}) == len([i for i in range(total) if i % 3 < 2])
    store.close()
