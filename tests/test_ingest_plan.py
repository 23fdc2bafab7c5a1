"""The ingest planner alone (tools/ingest_plan.py): what a batch embeds, keeps, moves and deletes, without Milvus."""

from __future__ import annotations

from tools.ingest_plan import KEPT, NAVIGATION, Item, plan_batch
from tools.readers import Document
from tools.readers.markdown import parse_markdown
from tools.store import ChunkRef, ChunkRow

GUIDE = "# Guide\n\n## Install\n\nRun the installer.\n\n## Use\n\nOpen the app.\n"


def _item(source: str) -> Item:
    return Item("/root", source, f"/root/{source}", lambda: parse_markdown(""))


def _stored(rows: list[ChunkRow]) -> list[ChunkRef]:
    return [ChunkRef(r.id, r.source, r.content_hash, r.chunk_index, r.root, r.page_start, r.page_end) for r in rows]


def test_new_unchanged_and_changed_documents() -> None:
    item = _item("guide.md")
    first = plan_batch([item], [parse_markdown(GUIDE)], {}, has_root=True, prune=False)
    assert [p.action for p in first.documents] == ["add"] and first.indexed == 1
    assert len(first.embed) == first.documents[0].chunks >= 2 and not first.delete
    stored = {("/root", "guide.md"): _stored([new.row for new in first.embed])}

    same = plan_batch([item], [parse_markdown(GUIDE)], stored, has_root=True, prune=False)
    assert [p.action for p in same.documents] == ["unchanged"]
    assert (same.embed, same.delete, same.move, same.unchanged) == ([], [], [], len(first.embed))

    changed = GUIDE.replace("Open the app.", "Open the app twice.")
    replaced = plan_batch([item], [parse_markdown(changed)], stored, has_root=True, prune=False)
    assert [p.action for p in replaced.documents] == ["replace"]
    assert len(replaced.embed) == 1 and len(replaced.delete) == 1 and "twice" in replaced.embed[0].row.text

    longer = parse_markdown("# Guide\n\nA new first line.\n\n" + GUIDE[8:])
    moved = plan_batch([item], [longer], stored, has_root=True, prune=False)
    assert moved.move and all(row.id in {ref.id for ref in stored[("/root", "guide.md")]} for row in moved.move)


def test_a_document_unreadable_now_keeps_its_chunks_unless_pruning() -> None:
    item = _item("guide.md")
    first = plan_batch([item], [parse_markdown(GUIDE)], {}, has_root=True, prune=False)
    stored = {("/root", "guide.md"): _stored([new.row for new in first.embed])}
    for now in ("not a readable DOCX (damaged or truncated: not a whole ZIP package)", parse_markdown("")):
        kept = plan_batch([item], [now], stored, has_root=True, prune=False)
        assert kept.delete == [] and kept.indexed == 0
        assert [(p.action, p.chunks) for p in kept.documents] == [("keep", len(first.embed))]
        assert kept.skipped[0].reason.endswith(KEPT)
    pruned = plan_batch([item], [parse_markdown("")], stored, has_root=True, prune=True)
    assert sorted(pruned.delete) == sorted(ref.id for ref in stored[("/root", "guide.md")])
    assert [p.action for p in pruned.documents] == ["remove"]
    never = plan_batch([_item("other.md")], ["binary file, not text"], stored, has_root=True, prune=False)
    assert [(p.action, p.reason) for p in never.documents] == [("skip", "binary file, not text")]


def test_a_navigation_page_is_left_out_and_what_it_held_removed() -> None:
    item = _item("genindex.html")
    first = plan_batch([item], [parse_markdown(GUIDE)], {}, has_root=True, prune=False)
    stored = {("/root", "genindex.html"): _stored([new.row for new in first.embed])}
    nav = plan_batch([item], [Document("", "Index", [], (), navigation=1)], stored, has_root=True, prune=False)
    assert nav.navigation == 1 and [p.action for p in nav.documents] == ["navigation"]
    assert len(nav.delete) == len(first.embed) and nav.skipped[0].reason == NAVIGATION
