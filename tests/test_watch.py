"""Watch mode on real folders, real Milvus Lite and the real embedder: files created, edited in place, renamed,
deleted and replaced by a link end as a clean ingest would leave them; one watcher per root and store, replaced
when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.conftest import REPO, until
from tools import watch
from tools.ingest import ingest_documents
from tools.services import Services
from tools.store import Store

pytestmark = pytest.mark.anyio
WAIT_S = 60


async def state(services: Services) -> set[tuple[str, int, str]]:
    """Every stored chunk as (source, index, content hash)."""
    store, name = services.store, services.collection
    if await store.info(name) is None:
        return set()
    out: set[tuple[str, int, str]] = set()
    for root, source in await store.sources(name):
        refs = (await store.existing(name, [source])).get(source, [])
        out |= {(r.source, r.chunk_index, r.content_hash) for r in refs if r.root == root}
    return out


async def clean_ingest(root: Path, tmp: Path, services: Services) -> set[tuple[str, int, str]]:
    store = Store(str(tmp / f"clean-{time.monotonic_ns()}.db"))
    clean = Services(store=store, embedder=services.embedder, roots=[root])
    try:
        await ingest_documents(clean, [str(root)], prune=True)
        return await state(clean)
    finally:
        store.close()


async def settles(services: Services, root: Path, tmp: Path, what: str) -> set[tuple[str, int, str]]:
    """Wait until the watched store holds exactly what a clean ingest of `root` gives now."""
    expected = await clean_ingest(root, tmp, services)
    with anyio.fail_after(WAIT_S):
        while (now := await state(services)) != expected:
            await anyio.sleep(0.1)
    assert now == expected, what
    return now


def note(name: str, words: str) -> str:
    return f"# {name}\n\n{words}\n"


async def test_a_watched_folder_stays_in_sync(tmp_path: Path, embedder: object) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "kept.md").write_text(note("Kept", "This note is there before the watcher starts."))
    outside = tmp_path / "outside.md"
    outside.write_text(note("Outside", "A file outside the roots."))
    store = Store(str(tmp_path / "watched.db"))
    services = Services(store=store, embedder=embedder, roots=[root])  # type: ignore[arg-type]
    batches: list[tuple[str, list[str]]] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: watch.watch(services, debounce_ms=100, on_batch=lambda k, r, gone: batches.append((k, gone))))
            sources = await settles(services, root, tmp_path, "the first sync")
            assert {s for s, _, _ in sources} == {"kept.md"}
            (root / "sub" / "new.md").write_text(note("New", "Etcd keeps the metadata."))  # created
            await settles(services, root, tmp_path, "a new file")
            with (root / "kept.md").open("a") as f:  # edited in place
                f.write("\n## Added\n\nA second section written later.\n")
            await settles(services, root, tmp_path, "an edit in place")
            (root / "sub" / "new.md").rename(root / "sub" / "renamed.md")  # renamed
            sources = await settles(services, root, tmp_path, "a rename")
            assert {s for s, _, _ in sources} == {"kept.md", "sub/renamed.md"}
            (root / "kept.md").unlink()
            os.symlink(outside, root / "kept.md")  # replaced by a link out of the roots
            sources = await settles(services, root, tmp_path, "a file replaced by a link")
            assert {s for s, _, _ in sources} == {"sub/renamed.md"}
            (root / "sub" / "renamed.md").unlink()  # deleted
            assert await settles(services, root, tmp_path, "a delete") == set()
            tg.cancel_scope.cancel()
        assert batches[0][0] == "sync" and any("kept.md" in gone for _, gone in batches)
    finally:
        store.close()


async def test_one_watcher_per_root_and_store(tmp_path: Path, embedder: object) -> None:
    """Two watchers of one root on one store: the second waits, and takes over when the first stops."""
    root = tmp_path / "docs"
    root.mkdir()
    stores = [Store(str(tmp_path / "shared.db")) for _ in range(2)]
    services = [Services(store=s, embedder=embedder, roots=[root]) for s in stores]  # type: ignore[arg-type]
    seen: list[list[str]] = [[], []]
    try:
        async with anyio.create_task_group() as tg:
            first = anyio.CancelScope()

            async def run_first() -> None:
                with first:
                    await watch.watch(services[0], debounce_ms=100, on_batch=lambda k, r, g: seen[0].append(k))

            tg.start_soon(run_first)
            with anyio.fail_after(WAIT_S):
                while not seen[0]:
                    await anyio.sleep(0.05)
            tg.start_soon(lambda: watch.watch(services[1], debounce_ms=100, on_batch=lambda k, r, g: seen[1].append(k)))
            (root / "a.md").write_text(note("A", "Only one watcher ingests this."))
            await settles(services[0], root, tmp_path, "a new file")
            await anyio.sleep(0.5)
            assert seen[1] == [] and "change" in seen[0]  # the second watcher waited
            first.cancel()  # the first watcher goes; the second takes over
            with anyio.fail_after(WAIT_S):
                while "sync" not in seen[1]:
                    await anyio.sleep(0.05)
            (root / "b.md").write_text(note("B", "The second watcher ingests this one."))
            await settles(services[1], root, tmp_path, "a file after the takeover")
            tg.cancel_scope.cancel()
    finally:
        for s in stores:
            s.close()


def _watcher(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "server.cli", "watch"], cwd=REPO, env=env, stdout=out, stderr=out)


@pytest.mark.slow
async def test_two_processes_share_the_store_and_a_killed_watcher_is_replaced(tmp_path: Path, embedder: object) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    db = tmp_path / "watched.db"
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MILVUS_URI": str(db), "INGEST_ROOTS": str(root),
        "WATCH_DEBOUNCE_MS": "100",
    }  # fmt: skip
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    processes = [_watcher(env, logs[0])]
    store = Store(str(db))
    services = Services(store=store, embedder=embedder, roots=[root])  # type: ignore[arg-type]
    try:
        until(lambda: "watching (pid" in logs[0].read_text(), WAIT_S, "the first watcher to start")
        processes.append(_watcher(env, logs[1]))
        until(lambda: "waiting to take over" in logs[1].read_text(), WAIT_S, "the second watcher to wait")
        for i in range(3):
            (root / f"n{i}.md").write_text(note(f"N{i}", f"Note number {i} about segments."))
        await settles(services, root, tmp_path, "three new files")
        (root / "n0.md").write_text(note("N0", "Note zero, edited."))
        await settles(services, root, tmp_path, "an edit")
        text = "".join(log.read_text() for log in logs)
        ingested = [line.split("ingesting ", 1)[1] for line in text.splitlines() if "ingesting " in line]
        names = [name for line in ingested for name in line.split(", ")]
        assert names.count("n1.md") == 1 and names.count("n0.md") == 2, text  # no file ingested twice for one change
        holder = int((Path(watch.lock_path(services, root.resolve())).read_text() or "0").strip())
        assert holder == processes[0].pid
        os.kill(holder, signal.SIGKILL)
        processes[0].wait(timeout=30)
        until(lambda: "watching (pid" in logs[1].read_text(), WAIT_S, "the second watcher to take over")
        (root / "n1.md").unlink()
        (root / "n3.md").write_text(note("N3", "Written after the first watcher was killed."))
        sources = await settles(services, root, tmp_path, "changes after the takeover")
        assert {s for s, _, _ in sources} == {"n0.md", "n2.md", "n3.md"}
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        store.close()
