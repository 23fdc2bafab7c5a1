"""ingest_documents' exclude globs and dry runs, and a damaged file that keeps its chunks: real Milvus Lite, real model."""

from __future__ import annotations

import logging
from pathlib import Path

import docx
import pytest

from tests.conftest import memory_session, payload, server_env
from tools import defaults
from tools.errors import UserError
from tools.ingest import ingest_documents
from tools.ingest_plan import KEPT
from tools.manage import describe_collection
from tools.services import Services

pytestmark = pytest.mark.anyio


async def test_exclude_globs_from_the_call_and_the_settings(services: Services, docs: Path) -> None:
    faq = docs / "milvus_docs" / "en" / "faq"
    (faq / "genindex-A.html").write_text("<html><body><p>index entries</p></body></html>")
    services.exclude = ["**/genindex*.html"]
    result = await ingest_documents(services, ["milvus_docs/en"], exclude=["*/troubleshooting.md"])
    assert result.files == 3
    assert result.skipped_by_reason == {"excluded by **/genindex*.html": 1, "excluded by */troubleshooting.md": 1}
    sources = {s.source for s in (await describe_collection(services)).listed}
    assert not any(s.endswith(("genindex-A.html", "troubleshooting.md")) for s in sources)
    # an excluded file is as good as gone: prune removes what it held before
    again = await ingest_documents(services, ["milvus_docs/en"], exclude=["**/performance_faq.md"], prune=True)
    assert again.chunks_removed > 0 and again.files == 3
    with pytest.raises(UserError, match="exclude pattern"):
        await ingest_documents(services, ["milvus_docs/en"], exclude=[""])


async def test_dry_run_lists_what_would_happen_and_changes_nothing(services: Services, docs: Path) -> None:
    counting: list[int] = []
    inner = services.embedder.embed_documents

    async def embed(texts: list[str]) -> list[list[float]]:
        counting.append(len(texts))
        return await inner(texts)

    services.embedder.embed_documents = embed  # type: ignore[method-assign]
    try:
        preview = await ingest_documents(services, ["milvus_docs/en"], dry_run=True)
        assert preview.dry_run and preview.planned == {"add": 4} and counting == []
        assert await services.store.collections() == []  # nothing made, nothing embedded
        assert preview.summary.startswith("Dry run, nothing changed: in milvus_docs this would add 4 document(s)")
        first = await ingest_documents(services, ["milvus_docs/en"])
        assert first.chunks_added == preview.chunks_added
        faq = docs / "milvus_docs" / "en" / "faq"
        (faq / "operational_faq.md").write_text((faq / "operational_faq.md").read_text() + "\n\n## Zebras?\n\nStriped.\n")
        (faq / "troubleshooting.md").unlink()
        (faq / "broken.md").write_bytes(b"\x89PNG\x00\x00\x01")
        counting.clear()
        plan = await ingest_documents(services, ["milvus_docs/en"], dry_run=True, prune=True)
        assert plan.planned == {"unchanged": 2, "replace": 1, "remove": 1, "skip": 1} and counting == []
        actions = {d.source.rsplit("/", 1)[-1]: d.action for d in plan.documents}
        assert actions["operational_faq.md"] == "replace" and actions["troubleshooting.md"] == "remove"
        assert plan.chunks_added == 1 and plan.chunks_removed > 0
        assert {s.reason for s in plan.skipped} == {"binary file, not text"}
        assert (await describe_collection(services)).chunks == first.chunks_added  # still all there
    finally:
        del services.embedder.embed_documents


async def test_a_docx_overwritten_with_its_first_half_keeps_its_chunks(services: Services, docs: Path) -> None:
    path = docs / "report.docx"
    document = docx.Document()
    for n in range(12):
        document.add_heading(f"Part {n}", level=1)
        document.add_paragraph(f"Findings of part {n}: " + "measured and written down. " * 30)
    document.save(str(path))
    first = await ingest_documents(services, ["report.docx"])
    assert first.chunks_added >= 12
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a save in progress
    result = await ingest_documents(services, ["report.docx"])
    assert result.chunks_removed == 0 and result.kept_unreadable == 1
    assert result.skipped[0].reason.startswith("not a readable DOCX") and result.skipped[0].reason.endswith(KEPT)
    assert "1 document(s) cannot be read now and keep their chunks from before" in result.summary
    assert (await describe_collection(services)).chunks == first.chunks_added
    path.write_bytes(b"")  # emptied: the same
    assert (await ingest_documents(services, ["report.docx"])).chunks_removed == 0
    assert (await ingest_documents(services, ["report.docx"], prune=True)).chunks_removed == first.chunks_added


async def test_a_long_ingest_logs_progress_at_a_steady_interval(
    services: Services, docs: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "PROGRESS_LOG_S", 0.0)  # every step counts as a while after the last line
    for n in range(40):
        (docs / f"note{n}.md").write_text(f"# Note {n}\n\nThe {n}th note about nothing much.\n")
    sections = "".join(f"## Part {n}\n\nPart {n} of the long handbook, about segment {n}.\n\n" for n in range(300))
    (docs / "handbook.md").write_text("# Handbook\n\n" + sections)
    with caplog.at_level(logging.INFO, logger="tools.ingest"):
        result = await ingest_documents(services, ["."], exclude=["milvus_docs/**"])
    lines = [r.getMessage() for r in caplog.records if r.name == "tools.ingest"]
    assert result.files == 41 and result.chunks_added == 340
    # the first batch (the handbook's 300 chunks and 15 notes) is embedded in slices, each followed by a line
    assert lines[:3] == [line for line in lines[:3] if line.startswith("ingest: 0/41 files, ") and "time left unknown" in line]
    assert [line.split(", ")[1] for line in lines[:3]] == ["128 chunks", "256 chunks", "315 chunks"]
    assert any(line.startswith("ingest: 16/41 files, ") and "chunks/s, about " in line for line in lines)
    assert lines[-1].startswith("ingest: done, 41 files, 340 chunks in ")


async def test_the_tool_takes_exclude_and_dry_run_and_its_text_says_would(tmp_path: Path, docs: Path) -> None:
    env = server_env(tmp_path / "tool.db", docs, INGEST_EXCLUDE="**/troubleshooting.md")
    async with memory_session(env) as session:
        args = {"paths": ["milvus_docs/en"], "exclude": ["**/product_faq.md"], "dry_run": True}
        result = await session.call_tool("ingest_documents", args)
        assert not result.is_error, result.content
        found = payload(result)
        assert found["dry_run"] is True and found["planned"] == {"add": 2}
        assert found["skipped_by_reason"] == {"excluded by **/troubleshooting.md": 1, "excluded by **/product_faq.md": 1}
        text = result.content[0].text
        assert text.startswith("Dry run, nothing changed") and "would add milvus_docs/en/faq/operational_faq.md" in text
        described = payload(await session.call_tool("describe_collection", {}))
        assert not described.get("chunks")  # nothing was stored
