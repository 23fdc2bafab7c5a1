"""Faults of the disk under a Milvus Lite store (issue #14, items 2, 3 and 9): a store made read-only while the server
runs, a full disk, a read-only filesystem, an unusable lock folder, paths that are too long.

Everything here is real: `python -m server` over stdio, milvus-lite's engine, Lite files on a real tmpfs or a real
read-only bind mount (each in a mount namespace of its own, `unshare -m`, entered with `nsenter`), and root's
override of file permissions dropped with `capsh`. Embeddings come from a loopback stand-in
(tests/embeddings_stub.py). What a server says it stored is checked against what a fresh process finds in the file.
Every wait is bounded in time, every loop in count. A case whose kernel facility is refused here is skipped, saying
which.
"""

from __future__ import annotations

import random
import shlex
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession

from tests.conftest import REPO, payload, process_env, server_env, stdio_session
from tests.embeddings_stub import EmbeddingsStub, run_embeddings_stub
from tests.engines import Namespace, engines, no_engine_left
from tools.errors import UserError, first_error
from tools.store import Store
from tools.store.locks import runtime_dir

pytestmark = pytest.mark.anyio
KEY = "sk-store-faults"
COLLECTION = "milvus_docs"
QUESTION = "How does the harbour keep its lanterns?"
NO_OVERRIDE = ["capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--"]
VOCABULARY = (
    "harbour lantern keeper ledger tide copper signal north river vessel anchor rope timber granary mill "
    "orchard bridge market weaver candle bell tower quarry salt archive letter window garden stair cellar "
    "beacon compass chart pilot current shoal reef gull cliff meadow barley wheel forge anvil hammer nail"
)
WORDS = VOCABULARY.split()


# documents, the stand-in embedder, servers


@pytest.fixture(scope="module")
def stub() -> Iterator[EmbeddingsStub]:
    with run_embeddings_stub(KEY) as stub:
        stub.delay_s = 0.0
        yield stub


def _write_corpus(folder: Path, files: int, chars: int, seed: int) -> None:
    """`files` Markdown files of about `chars` characters each, of words drawn from a fixed list (seeded)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        parts = [f"# Ledger {seed}-{n}\n"]
        size = 0
        section = 0
        while size < chars:
            if size // 3000 >= section:
                section += 1
                parts.append(f"\n## Section {section}\n")
            sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + ". "
            parts.append(sentence)
            size += len(sentence)
        (folder / f"ledger{n:03d}.md").write_text("".join(parts) + "\n")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    _write_corpus(root / "a", files=6, chars=6000, seed=1)
    _write_corpus(root / "b", files=6, chars=6000, seed=2)
    return root


def _env(db: Path, root: Path, stub: EmbeddingsStub) -> dict[str, str]:
    return process_env(server_env(db, root, **stub.settings(), LOG_LEVEL="INFO"))


@asynccontextmanager
async def _server(env: dict[str, str], log: Path, prefix: list[str] | None = None) -> AsyncIterator[ClientSession]:
    """`python -m server` over stdio, started through `prefix` (capsh, nsenter) when given, its stderr in `log`."""
    with log.open("a") as errlog:
        async with stdio_session(env, errlog=errlog, prefix=prefix or ()) as session:
            yield session


async def _call(session: ClientSession, tool: str, arguments: dict[str, Any], timeout: float = 120) -> tuple[bool, str, Any]:
    """(is_error, text, result); a call that does not end in `timeout` seconds fails the test."""
    with anyio.fail_after(timeout):
        result = await session.call_tool(tool, arguments)
    return bool(result.is_error), result.content[0].text, result


async def _ok(session: ClientSession, tool: str, arguments: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    error, text, result = await _call(session, tool, arguments, timeout)
    assert not error, f"{tool}: {text}"
    return payload(result)


async def _refused(session: ClientSession, tool: str, arguments: dict[str, Any], timeout: float = 120) -> str:
    """The error text of a call that must fail with a reason (never the bare 'Error executing tool')."""
    error, text, _ = await _call(session, tool, arguments, timeout)
    assert error, f"{tool} should have failed: {text[:500]}"
    assert text.strip() != f"Error executing tool {tool}", text  # a crash with its reason hidden
    return text


async def _chunks(session: ClientSession) -> int:
    return int((await _ok(session, "describe_collection", {"limit": 1}))["chunks"])


def _stored(db: Path) -> int:
    """Chunks in the file, as a fresh engine (started by this process) finds them."""
    store = Store(str(db))
    try:

        def count(client: Any) -> int:
            client.load_collection(COLLECTION)
            return int(client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"])

        return store.connection.call(count)
    finally:
        store.close()


# processes, engines, namespaces


def _need_capsh(tmp_path: Path) -> None:
    """Skip unless capsh can drop root's override of file permissions here."""
    probe = tmp_path / "probe"
    probe.write_text("")
    probe.chmod(0o444)
    try:
        done = subprocess.run(
            [*NO_OVERRIDE, "-c", f"echo x > {shlex.quote(str(probe))}"], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        pytest.skip("capsh is not installed (it drops root's override of file permissions)")
    finally:
        probe.chmod(0o644)
    if done.returncode == 0:
        pytest.skip(f"capsh could not drop root's override of file permissions here: {done.stderr.strip()[:200]}")


@pytest.fixture
def namespace() -> Iterator[Callable[[str], Namespace]]:
    """Make namespaces (skipped where the kernel refuses them); each is closed after the test."""
    made: list[Namespace] = []

    def make(script: str) -> Namespace:
        try:
            space = Namespace(script)
        except OSError as exc:
            pytest.skip(f"cannot make a mount namespace with `{script}` here (unshare -m, mount): {exc}")
        made.append(space)
        return space

    yield make
    for space in made:
        space.close()


# the cases


async def test_first_error_is_the_real_failure_not_the_closed_stream_it_caused() -> None:
    """Ingest's shape: a writer takes batches from a stream (one buffered) while the sender prepares more. When a
    write fails, the writer's end closes, and the sender, waiting to hand over the next batch, fails with
    BrokenResourceError. The caller must see the writer's error."""
    send, receive = anyio.create_memory_object_stream[int](max_buffer_size=1)

    async def write() -> None:
        async with receive:
            async for _ in receive:
                await anyio.sleep(0.05)
                raise UserError("The disk holding /x is full")

    with pytest.raises(UserError, match="disk holding /x is full"), first_error():
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            async with send:
                for n in range(100):
                    await send.send(n)


async def test_first_error_prefers_an_error_over_a_cancellation() -> None:
    async def fail() -> None:
        await anyio.sleep(0.01)
        raise UserError("the real one")

    with pytest.raises(UserError, match="the real one"), first_error():
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.sleep, 30)
            tg.start_soon(fail)


UPSERTER = """
import random, sys, time
from tools.store.connection import Connection
connection = Connection(sys.argv[1])
rng = random.Random(int(sys.argv[3]))
rows = [{"id": f"id{i:05d}", "vector": [rng.random() for _ in range(8)]} for i in range(3000)]
connection.call(lambda client: client.load_collection("c"))  # joined the engine before the start
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
for _ in range(3):
    for at in range(0, len(rows), 50):
        connection.call(lambda client: client.upsert("c", rows[at : at + 50]))
connection.close()
"""


@pytest.mark.processes
def test_processes_writing_the_same_ids_at_once_store_each_once(tmp_path: Path) -> None:
    """Milvus Lite applies an upsert as a delete and an insert: two processes upserting the same ids at the same
    moment (two ingests of one folder) left both rows of many ids. Writes to a Lite file take turns."""
    db = tmp_path / "u.db"
    store = Store(str(db))
    try:
        store.connection.call(
            lambda client: client.create_collection("c", dimension=8, id_type="string", max_length=16, consistency_level="Strong")
        )
    finally:
        store.close()
    start = str(time.time() + 4)  # after every process has started and joined the engine
    processes = [
        subprocess.Popen([sys.executable, "-c", UPSERTER, str(db), start, str(n)], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
    store = Store(str(db))
    try:

        def rows(client: Any) -> tuple[int, int]:
            client.load_collection("c")
            count = client.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]
            ids = {r["id"] for r in client.query("c", filter="", output_fields=["id"], limit=16384)}
            return int(count), len(ids)

        assert store.connection.call(rows) == (3000, 3000)
    finally:
        store.close()
    no_engine_left(db)


@pytest.mark.slow
async def test_a_store_made_read_only_while_the_server_runs(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    """Item 2: without root's override, the .db made 444 and its folder 555 under a running server. An ingest is an
    error naming the file, with nothing counted that is not stored; searches go on; once writable again, the same
    server writes, and a restart finds exactly what the server reported."""
    _need_capsh(tmp_path)
    folder = tmp_path / "store"
    db = folder / "r.db"
    env = _env(db, root, stub)
    async with _server(env, tmp_path / "server.log", NO_OVERRIDE) as server:
        first = await _ok(server, "ingest_documents", {"paths": ["a"]})
        assert first["chunks_added"] > 0
        try:
            db.chmod(0o444)
            folder.chmod(0o555)
            text = await _refused(server, "ingest_documents", {"paths": ["b"]})
            assert str(db) in text and "cannot be written" in text, text
            assert await _chunks(server) == first["chunks_added"]
            hits = await _ok(server, "search_milvus_docs", {"query": QUESTION})
            assert hits["results"]
            text = await _refused(server, "delete_documents", {"sources": ["a/*"]})
            assert str(db) in text and "cannot be written" in text, text
            assert await _chunks(server) == first["chunks_added"]
        finally:
            folder.chmod(0o755)
            db.chmod(0o644)
        second = await _ok(server, "ingest_documents", {"paths": ["b"]})  # writable again: no restart needed
        assert second["chunks_added"] > 0
        total = first["chunks_added"] + second["chunks_added"]
        assert await _chunks(server) == total
    no_engine_left(db)
    assert _stored(db) == total
    no_engine_left(db)


@pytest.mark.slow
async def test_a_write_the_engine_could_not_store_is_an_error(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    """The engine acknowledges a write to a read-only file and only logs the failure. Here the engine is started by
    a server without root's override and joined by one with it: the joining server may write the file itself, so
    only what the engine did tells it the write was lost. Its ingest must fail, and no process may go on seeing
    the rows the file does not hold."""
    _need_capsh(tmp_path)
    folder = tmp_path / "store"
    db = folder / "r.db"
    env = _env(db, root, stub)
    async with _server(env, tmp_path / "a.log", NO_OVERRIDE) as a:
        first = await _ok(a, "ingest_documents", {"paths": ["a"]})
        async with _server(env, tmp_path / "b.log") as b:
            engine = (await _ok(b, "describe_collection", {"limit": 1}))["engine"]
            assert engine["started_here"] is False  # B joined the engine A started
            try:
                db.chmod(0o444)
                folder.chmod(0o555)
                text = await _refused(b, "ingest_documents", {"paths": ["b"]})
                assert str(db) in text and "not stored" in text and "readonly database" in text, text
                assert await _chunks(b) == first["chunks_added"]
                assert await _chunks(a) == first["chunks_added"]
                assert (await _ok(a, "search_milvus_docs", {"query": QUESTION}))["results"]
            finally:
                folder.chmod(0o755)
                db.chmod(0o644)
    no_engine_left(db)
    assert _stored(db) == first["chunks_added"]
    no_engine_left(db)


@pytest.mark.slow
async def test_a_full_disk(stub: EmbeddingsStub, tmp_path: Path, namespace: Callable[[str], Namespace]) -> None:
    """Item 3: the store on a 4 MB tmpfs, an ingest of more than fits. The error comes at once, says the disk is full
    and names the folder; the server then counts only what is stored (a restart finds the same); with more room,
    the same ingest completes, and a restart finds every chunk it reported.

    Sizes: a batch of 16 of these files takes about 2.6 MB in the file, so the first fits and leaves more than the
    1 MB below which writes are refused beforehand; the second is the engine's to fail (its write is acknowledged
    in memory, then refused by SQLite), which the server must notice and undo."""
    root = tmp_path / "root"
    _write_corpus(root / "big", files=40, chars=30_000, seed=3)
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "r.db"
    env = _env(db, root, stub)
    space = namespace(f"mount -t tmpfs -o size=4m tmpfs {shlex.quote(str(folder))}")
    log = tmp_path / "server.log"
    async with _server(env, log, space.prefix) as server:
        started = time.monotonic()
        text = await _refused(server, "ingest_documents", {"paths": ["big"]}, timeout=120)
        assert time.monotonic() - started < 60, "the full disk was reported late"
        assert "was not stored" in text and "full" in text and str(folder) in text, text
        stored_here = await _chunks(server)
        assert stored_here > 0  # the first batch
        text = await _refused(server, "ingest_documents", {"paths": ["big"]}, timeout=120)  # again, at once
        assert "full" in text and str(folder) in text, text
        assert await _chunks(server) == stored_here
    async with _server(env, log, space.prefix) as server:
        assert await _chunks(server) == stored_here  # a restart finds what the server said it held
    no_engine_left(db)

    grown = space.run("mount", "-o", "remount,size=64m", str(folder))
    assert grown.returncode == 0, grown.stderr
    async with _server(env, log, space.prefix) as server:
        again = await _ok(server, "ingest_documents", {"paths": ["big"]}, timeout=300)
        assert again["files"] == 40
        total = again["chunks_added"] + again["chunks_unchanged"]
        assert again["chunks_unchanged"] == stored_here
        assert await _chunks(server) == total
    async with _server(env, log, space.prefix) as server:
        assert await _chunks(server) == total
    no_engine_left(db)


@pytest.mark.slow
async def test_a_read_only_filesystem(
    root: Path, stub: EmbeddingsStub, tmp_path: Path, namespace: Callable[[str], Namespace]
) -> None:
    """Item 9: a store on a read-only mount is searched and described; ingest and delete are refused, saying why
    and what to change. Nothing is written in the folder."""
    folder = tmp_path / "store"
    db = folder / "r.db"
    env = _env(db, root, stub)
    log = tmp_path / "server.log"
    async with _server(env, log) as server:
        first = await _ok(server, "ingest_documents", {"paths": ["a"]})
    no_engine_left(db)
    listed = sorted(p.name for p in folder.iterdir())
    space = namespace(f"mount --bind -o ro {shlex.quote(str(folder))} {shlex.quote(str(folder))}")
    probe = space.run("touch", str(folder / "x"))
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"the bind mount is not read-only here: {probe.stderr.strip()[:200]}")
    async with _server(env, log, space.prefix) as server:
        assert (await _ok(server, "search_milvus_docs", {"query": QUESTION}))["results"]
        assert await _chunks(server) == first["chunks_added"]
        for tool, arguments in (("ingest_documents", {"paths": ["b"]}), ("delete_documents", {"sources": ["a/*"]})):
            text = await _refused(server, tool, arguments)
            assert str(db) in text and "read-only" in text, text
        assert await _chunks(server) == first["chunks_added"]
    no_engine_left(db)
    assert sorted(p.name for p in folder.iterdir()) == listed


@pytest.mark.slow
async def test_an_unusable_socket_folder_is_named(
    root: Path, stub: EmbeddingsStub, tmp_path: Path, namespace: Callable[[str], Namespace]
) -> None:
    """Item 9: the folder for engine sockets (and for lock files of read-only folders) cannot be written: every tool
    says which folder and what to change."""
    runtime = runtime_dir()
    runtime.mkdir(mode=0o700, exist_ok=True)
    db = tmp_path / "store" / "r.db"
    env = _env(db, root, stub)
    async with _server(env, tmp_path / "server.log") as server:
        await _ok(server, "ingest_documents", {"paths": ["a"]})
    no_engine_left(db)
    space = namespace(f"mount --bind -o ro {shlex.quote(str(runtime))} {shlex.quote(str(runtime))}")
    probe = space.run("touch", str(runtime / "x"))
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"the bind mount is not read-only here: {probe.stderr.strip()[:200]}")
    async with _server(env, tmp_path / "server.log", space.prefix) as server:
        for tool, arguments in (
            ("ingest_documents", {"paths": ["a"]}),
            ("search_milvus_docs", {"query": QUESTION}),
            ("describe_collection", {}),
        ):
            text = await _refused(server, tool, arguments)
            assert str(runtime) in text and "cannot be written" in text, text
    no_engine_left(db)


@pytest.mark.slow
async def test_an_unopenable_lock_file_is_named(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    """Item 9: a lock file beside the store that this user may not open (another user's, say): the error names it."""
    _need_capsh(tmp_path)
    folder = tmp_path / "store"
    db = folder / "r.db"
    env = _env(db, root, stub)
    async with _server(env, tmp_path / "server.log") as server:
        await _ok(server, "ingest_documents", {"paths": ["a"]})
    no_engine_left(db)
    lock = folder / ".r.db.engine.lock"
    lock.chmod(0o000)
    try:
        async with _server(env, tmp_path / "server.log", NO_OVERRIDE) as server:
            text = await _refused(server, "search_milvus_docs", {"query": QUESTION})
            assert str(lock) in text and "Permission denied" in text, text
    finally:
        lock.chmod(0o600)
    no_engine_left(db)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["long-path", "long-name"])
async def test_paths_too_long_are_refused_with_the_limit(root: Path, stub: EmbeddingsStub, tmp_path: Path, shape: str) -> None:
    """Item 9: a Lite file whose path SQLite cannot open (over 504 bytes), or a folder name over 255 bytes
    (ENAMETOOLONG): every tool says the path is too long."""
    if shape == "long-path":
        folder = tmp_path
        while len(str(folder)) < 560:
            folder = folder / ("d" * 60)
    else:
        folder = tmp_path / ("n" * 300)
    db = folder / "r.db"
    env = _env(db, root, stub)
    async with _server(env, tmp_path / "server.log") as server:
        text = await _refused(server, "ingest_documents", {"paths": ["a"]})
        assert "too long" in text and "MILVUS_URI" in text, text
        error, text, _ = await _call(server, "search_milvus_docs", {"query": QUESTION})
        assert error and "too long" in text, text
    assert not engines(db)
