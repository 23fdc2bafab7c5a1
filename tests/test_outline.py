"""get_document_outline: every reader's test document mapped from its stored chunks, on real Milvus Lite."""

from __future__ import annotations

from pathlib import Path

import pytest

from server import render
from tests.documents import MANUAL_SECTIONS, Documents
from tools.context import read_context
from tools.errors import UserError
from tools.ingest import ingest_documents, ingest_text
from tools.outline import SHORT_ID, OutlineNode, OutlineResult, get_document_outline
from tools.services import Services
from tools.store import Store

pytestmark = pytest.mark.anyio
MANUAL_TOP = [heading for level, heading, _ in MANUAL_SECTIONS if level == 1]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Documents:
    return Documents(tmp_path_factory.mktemp("documents"))


def walk(nodes: list[OutlineNode], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], OutlineNode]]:
    """Every node with its heading path, in document order."""
    out = []
    for node in nodes:
        out.append(((*path, node.heading), node))
        out += walk(node.children, (*path, node.heading))
    return out


async def stored(services: Services, source: str) -> list[tuple[str, list[str], int, int]]:
    """The short id, heading path and pages of every stored chunk of `source`, in order."""
    info = await services.store.info(services.collection)
    assert info is not None
    refs = (await services.store.existing(info.name, [source]))[source]
    rows = await services.store.document_chunks(info.name, (refs[0].root, source), 0, len(refs))
    return [(r.id[:SHORT_ID], r.headings, r.page_start, r.page_end) for r in rows]


def check_against_chunks(result: OutlineResult, chunks: list[tuple[str, list[str], int, int]]) -> None:
    """Each chunk sits in the node of its heading path, every id once, counts and pages add up."""
    nodes = walk(result.sections)
    assert (
        result.chunks == len(chunks) == sum(node.chunks for _, node in nodes if node.level == 1) + len(result.unheaded_chunk_ids)
    )
    listed = [i for _, node in nodes for i in node.chunk_ids] + result.unheaded_chunk_ids
    assert sorted(listed) == sorted(c[0] for c in chunks)
    where = {i: path for path, node in nodes for i in node.chunk_ids}
    for short, headings, first, last in chunks:
        if headings:
            assert where[short] == tuple(headings)
        node = dict(nodes)[tuple(headings)] if headings else None
        if node is not None and first:
            assert node.page_start <= first and last <= node.page_end
    for _, node in nodes:
        assert node.chunks == len(node.chunk_ids) + sum(child.chunks for child in node.children)
        assert all(child.level == node.level + 1 for child in node.children)


@pytest.mark.parametrize(
    ("document", "pages"),
    [
        ("manual_md", ""),
        ("manual_docx", ""),
        ("handbook_docx", ""),
        ("manual_pdf", "p."),
        ("manual_pdf_without_outline", "p."),
        ("deck_pptx", "slide"),
        ("page_html", ""),
        ("manual_rst", ""),
        ("plain_pdf", "p."),
    ],
)
async def test_outline_of_every_readers_document(
    made: Documents, tmp_path: Path, embedder: object, document: str, pages: str
) -> None:
    path: Path = getattr(made, document)
    store = Store(str(tmp_path / "outline.db"))
    services = Services(store=store, embedder=embedder, roots=[made.folder])  # type: ignore[arg-type]
    try:
        ingested = await ingest_documents(services, [str(path)])
        assert ingested.files == 1, ingested.skipped
        source = path.relative_to(made.folder).as_posix()
        result = await get_document_outline(services, source)
        assert result.source == source and result.page_label == pages and result.chunks == ingested.chunks_added
        check_against_chunks(result, await stored(services, source))
        if document in ("manual_md", "manual_docx", "manual_pdf", "manual_rst", "page_html"):
            flat = [path for path, _ in walk(result.sections)]
            assert all(any(p[-1] == heading for p in flat) for _, heading, _ in MANUAL_SECTIONS), flat
        if pages:
            assert result.page_start == 1 and result.page_end >= 2
        if document == "deck_pptx":
            assert [n.heading for _, n in walk(result.sections)][:3] == ["Roadmap 2025", "Goals", "Schedule"]
        text = render.outline(result)
        assert text.splitlines()[0].startswith(source) and all(n.heading in text for _, n in walk(result.sections))
    finally:
        store.close()


async def test_depth_limit_folds_deeper_sections(services: Services) -> None:
    body = "# Guide\n\nIntro text.\n\n## Install\n\nInstall it.\n\n### On Linux\n\nUse apt.\n\n#### Debian\n\nUse apt-get.\n"
    body += "\n## Use\n\nRun it.\n"
    await ingest_text(services, "Before any heading.\n\n" + body, "guide.md")
    full = await get_document_outline(services, "guide.md")
    assert full.deepest == full.depth == 4 and full.note is None and len(full.unheaded_chunk_ids) == 1
    install = full.sections[0].children[0]
    assert [n.heading for n in install.children] == ["On Linux"] and install.chunks == 3 and len(install.chunk_ids) == 1
    cut = await get_document_outline(services, "guide.md", depth=2)
    install_cut = cut.sections[0].children[0]
    assert (
        cut.depth == 2
        and install_cut.children == []
        and install_cut.chunk_ids == [i for _, n in walk([install]) for i in n.chunk_ids]
    )
    assert cut.note and "depth=3" in cut.note
    # an id from the outline reads its section
    section = await read_context(services, install_cut.chunk_ids[0], section=True)
    assert "Install it." in section.text
    # a glob naming one document works; one naming several, or none, says so
    assert (await get_document_outline(services, "gui*.md")).source == "guide.md"
    await ingest_text(services, "# Other\n\nText.\n", "guide2.md")
    with pytest.raises(UserError, match="matches 2 documents"):
        await get_document_outline(services, "guide*.md")
    with pytest.raises(UserError, match="No document 'nothing.md'"):
        await get_document_outline(services, "nothing.md")
    with pytest.raises(UserError, match="depth must be"):
        await get_document_outline(services, "guide.md", depth=0)


async def test_a_heading_that_comes_back_is_a_new_section(services: Services) -> None:
    await ingest_text(services, "# A\n\none\n\n# B\n\ntwo\n\n# A\n\nthree\n", "again.md")
    result = await get_document_outline(services, "again.md")
    assert [n.heading for n in result.sections] == ["A", "B", "A"] and [n.chunks for n in result.sections] == [1, 1, 1]


@pytest.mark.slow
def test_outline_from_the_cli(tmp_path: Path) -> None:
    import json
    import subprocess

    from tests.conftest import run_cli, server_env

    env = server_env(tmp_path / "cli.db", HOME=str(tmp_path), COLUMNS="200")

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(env, *args, stdin=stdin)

    assert cli("ingest-text", "guide.md", stdin="# Guide\n\n## Install\n\nInstall it.\n\n## Use\n\nRun it.\n").returncode == 0
    shown = cli("outline", "guide.md")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith("guide.md") and "  - Install · 1 chunk · ids " in shown.stdout
    as_json = json.loads(cli("outline", "guide.md", "--depth", "1", "--json").stdout)
    assert as_json["depth"] == 1 and as_json["sections"][0]["children"] == [] and len(as_json["sections"][0]["chunk_ids"]) == 2
    missing = cli("outline", "nope.md")
    assert missing.returncode == 1 and "`milvus-qwen info`" in missing.stderr


async def test_list_changed_after_an_ingest_changes_the_documents_language(tmp_path: Path) -> None:
    """An ingest that changes the language the tool listing names notifies the client, which then lists again."""
    import anyio

    from tests.conftest import memory_session

    got: list[str] = []

    async def on_message(message: object) -> None:
        root = getattr(message, "root", message)
        method = getattr(root, "method", None)
        if isinstance(method, str) and method.endswith("list_changed"):
            got.append(method)

    env = {"MILVUS_URI": str(tmp_path / "changed.db"), "INGEST_ROOTS": str(tmp_path)}
    async with memory_session(env, message_handler=on_message) as session:
        listed = {t.name: t for t in (await session.list_tools()).tools}
        assert "mostly in" not in (listed["search_milvus_docs"].description or "")
        stored = await session.call_tool(
            "ingest_text", {"text": "# Storage\n\nMilvus stores data in object storage.\n", "source": "a.md"}
        )
        assert not stored.is_error
        with anyio.fail_after(10):
            while "notifications/tools/list_changed" not in got:
                await anyio.sleep(0.01)
        assert "notifications/resources/list_changed" in got
        listed = {t.name: t for t in (await session.list_tools()).tools}
        assert "mostly in English" in (listed["search_milvus_docs"].description or "")
        got.clear()
        await session.call_tool("ingest_text", {"text": "# More\n\nAnother English note about segments.\n", "source": "b.md"})
        with anyio.fail_after(10):
            while "notifications/resources/list_changed" not in got:
                await anyio.sleep(0.01)
        assert "notifications/tools/list_changed" not in got  # still English: the tools say the same
