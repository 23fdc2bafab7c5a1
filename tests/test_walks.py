"""Walking what ingest is given: link loops, odd file names, special files, several roots (issue #14, 1/4/5/11)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from tests.conftest import memory_session, payload, server_env
from tools.errors import UserError
from tools.ingest import ingest_documents
from tools.manage import describe_collection
from tools.paths import collect
from tools.search import search_milvus_docs
from tools.services import Services
from tools.store import Store

pytestmark = pytest.mark.anyio


async def test_a_glob_through_a_link_loop_ends_and_says_what_it_passed_over(tmp_path: Path) -> None:
    root = tmp_path / "root"
    loop = root / "loopdir"
    loop.mkdir(parents=True)
    (loop / "l.md").write_text("# Loop\n\nThe only real file.\n")
    os.symlink(".", loop / "self1")
    os.symlink(".", loop / "self2")
    async with memory_session(server_env(tmp_path / "loop.db", root)) as session:
        with anyio.fail_after(60):
            result = await session.call_tool("ingest_documents", {"paths": ["loopdir/**/*.md"]})
        assert not result.is_error, result.content
        done = payload(result)
        assert (done["files"], done["chunks_added"], done["skipped_by_reason"]) == (1, 1, {})
        with anyio.fail_after(60):
            walked = payload(await session.call_tool("ingest_documents", {"paths": ["loopdir"]}))
        assert (walked["files"], walked["chunks_unchanged"]) == (1, 1)
        assert walked["skipped_by_reason"] == {"symbolic link to a folder (not followed)": 2}


def test_a_walk_stops_when_the_call_is_cancelled(tmp_path: Path) -> None:
    for i in range(30):
        folder = tmp_path / f"d{i}"
        folder.mkdir()
        for j in range(100):
            (folder / f"f{j}.md").write_text("x")
    checks = 0

    class Cancelled(Exception):
        pass

    def check_cancelled() -> None:
        nonlocal checks
        checks += 1
        if checks == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        collect(["."], [tmp_path], check_cancelled)
    assert checks == 2  # stopped at the second check, after about 2,000 of the 3,030 entries


async def test_odd_names_special_files_and_links_are_skipped_with_their_reason(services: Services, docs: Path) -> None:
    odd = docs / "odd"
    odd.mkdir()
    (odd / "good.md").write_text("# Good\n\nA file with a plain name.\n")
    (odd / "new\nline.md").write_text("# Newline\n\nIts name has a newline.\n")
    (odd / "tab\tname.md").write_text("# Tab\n\nIts name has a tab.\n")
    with open(os.fsencode(odd) + b"/caf\xff.md", "w") as bad_name:
        bad_name.write("# Bytes\n\nIts name is not UTF-8.\n")
    (odd / "notes[1].md").write_text("# Brackets\n\nIts name has brackets.\n")
    os.mkfifo(odd / "pipe.md")
    os.symlink(docs / "milvus_docs", odd / "folder-link")
    os.symlink(docs / "nowhere.md", odd / "dangling.md")
    result = await ingest_documents(services, ["odd"])
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in result.skipped}
    assert reasons == {
        "new\nline.md": "file name contains control characters (newline, tab)",
        "tab\tname.md": "file name contains control characters (newline, tab)",
        "caf\\udcff.md": "file name is not valid UTF-8",
        "pipe.md": "not a regular file (FIFO)",
        "folder-link": "symbolic link to a folder (not followed)",
        "dangling.md": "symbolic link to nothing",
    }
    assert result.files == 2  # good.md and notes[1].md
    pruned = await ingest_documents(services, ["odd"], prune=True)  # prune over the same folder works too
    assert pruned.chunks_removed == 0 and pruned.files == 2
    (odd / "good.md").unlink()
    assert (await ingest_documents(services, ["odd"], prune=True)).chunks_removed == 1
    exact = await ingest_documents(services, ["odd/notes[1].md"])  # `[` in an exact name is not a glob
    assert exact.files == 1 and exact.chunks_unchanged == 1


async def test_two_roots_with_the_same_paths_keep_their_own_documents(tmp_path: Path, embedder: object) -> None:
    a, b = tmp_path / "A", tmp_path / "B"
    for root, word in ((a, "apples"), (b, "bananas")):
        root.mkdir()
        (root / "readme.md").write_text(f"# Readme\n\nThis root is about {word}.\n")
    (a / "guide.md").write_text("# Guide\n\nOnly root A has a guide.\n")
    store = Store(str(tmp_path / "roots.db"))
    services = Services(store=store, embedder=embedder, roots=[a, b])  # type: ignore[arg-type]
    try:
        first = await ingest_documents(services, [str(a)])
        second = await ingest_documents(services, [str(b)], prune=True)
        assert (first.files, second.files, second.chunks_removed) == (2, 1, 0)
        report = await describe_collection(services)
        assert sorted((s.source, Path(s.root).name) for s in report.listed) == [
            ("guide.md", "A"), ("readme.md", "A"), ("readme.md", "B"),
        ]  # fmt: skip
        hits = await search_milvus_docs(services, "what is this root about", top_k=5)
        assert {h.text.rsplit(" ", 1)[-1] for h in hits.results if h.source == "readme.md"} == {"apples.", "bananas."}
        (b / "readme.md").unlink()
        pruned = await ingest_documents(services, [str(b)], prune=True)
        assert pruned.chunks_removed == 1
        assert sorted(s.source for s in (await describe_collection(services)).listed) == ["guide.md", "readme.md"]
        with pytest.raises(UserError, match="matched no files"):
            await ingest_documents(services, [str(b / "*.md")])
    finally:
        store.close()
