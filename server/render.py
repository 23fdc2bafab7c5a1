"""The text a model reads: each result rendered compactly, every field once.

Tool results carry two copies: the structured content (every field, described by the output schema) for
clients that read it, and this text, which is all Qwen-Agent and most agents read. Search passages come
as a numbered list, each with its citation, section path, score and short id (`read_context` takes it);
a passage's own heading line is left out when the section path already says it.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel

from tools import language
from tools.answer import AnswerResult
from tools.context import ContextResult
from tools.ingest import IngestResult
from tools.manage import CollectionReport, DeleteResult
from tools.outline import OutlineResult
from tools.research import ResearchResult, plural
from tools.search import SearchHit, SearchResponse

SHORT_ID = 12  # hex characters of a chunk id shown; read_context takes any unique prefix of 8 or more
MAX_SKIPPED_SHOWN = 10
MAX_SOURCES_SHOWN = 50
MAX_IDS_SHOWN = 4  # per outline section; the structured content has them all
_HEADING_LINE = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")  # CommonMark: up to three spaces before


def text(result: BaseModel) -> str:
    """The compact text of any tool result."""
    if isinstance(result, SearchResponse):
        return search(result)
    if isinstance(result, AnswerResult):
        return answer(result)
    if isinstance(result, ResearchResult):
        return research(result)
    if isinstance(result, ContextResult):
        return context(result)
    if isinstance(result, IngestResult):
        return ingest(result)
    if isinstance(result, CollectionReport):
        return collection(result)
    if isinstance(result, OutlineResult):
        return outline(result)
    if isinstance(result, DeleteResult):
        return delete(result)
    return result.model_dump_json(exclude_none=True)


def section_path(title: str, headings: list[str]) -> str:
    """`Title > Heading > Subheading`, each part once."""
    return " > ".join(part for part in dict.fromkeys([title, *headings]) if part)


def passage(hit_text: str, path: list[str]) -> str:
    """The chunk text without its leading heading lines when the section path already names them."""
    lines = hit_text.splitlines()
    while lines and (((m := _HEADING_LINE.match(lines[0])) and m.group(2) in path) or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines) or hit_text


def search(result: SearchResponse) -> str:
    if not result.results:
        return f"No results ({result.mode} search)." + (f"\nnote: {result.note}" if result.note else "")
    parts = [f"{len(result.results)} results ({result.scores} scores)"]
    if result.note:  # before the passages: it says how to read them (another language, a fallback)
        parts.append(f"note: {result.note}")
    parts += [_hit(hit) for hit in result.results]
    return "\n\n".join(parts)


def _hit(hit: SearchHit) -> str:
    # the document is named by its source: its title (or top heading) is left out of a deeper section path
    path = section_path("", hit.headings[1:] if len(hit.headings) > 1 else hit.headings)
    head = f"[{hit.rank}] {hit.citation}" + (f" § {path}" if path else "")
    return f"{head} · score {hit.score:.3f} · id {hit.chunk_id[:SHORT_ID]}\n{passage(hit.text, [hit.title, *hit.headings])}"


def answer(result: AnswerResult) -> str:
    lines = [result.answer.strip()]
    if result.sources:
        lines.append("")
        lines.append("Sources:")
        lines += [f"[{s.n}] {s.citation}" + (f" § {s.heading}" if s.heading else "") for s in result.sources]
    if result.reasoning:
        lines += ["", "Reasoning:", result.reasoning.strip()]
    if result.note:
        lines += ["", f"note: {result.note}"]
    return "\n".join(lines)


def research(result: ResearchResult) -> str:
    """The report, the passages it cites (with their ids), then one line on the research and its notes."""
    lines = [result.report.strip()]
    cited = [s for s in result.sources if s.cited]
    if cited:
        lines += ["", "Sources:"]
        for s in cited:
            path = section_path("", s.headings[1:] if len(s.headings) > 1 else s.headings)
            lines.append(f"[{s.n}] {s.citation}" + (f" § {path}" if path else "") + f" · id {s.chunk_id[:SHORT_ID]}")
    uncited = len(result.sources) - len(cited)
    rounds = "; ".join(f"{r.kept} of {r.new} new kept" for r in result.rounds)
    tokens = result.usage.get("total", {}).get("total_tokens")
    lines += [
        "",
        f"Research: {plural(len(result.sub_questions), 'sub-question')}, {plural(len(result.rounds), 'round')} "
        f"({rounds}), {plural(result.model_calls, 'model call')}"
        + (f", {tokens} tokens" if tokens is not None else "")
        + (f"; {plural(uncited, 'passage')} read but not cited" if uncited else "")
        + ("; partial" if result.partial else ""),
    ]
    lines += [f"note: {note}" for note in result.notes]
    if result.reasoning:
        lines += ["", "Reasoning:", result.reasoning.strip()]
    return "\n".join(lines)


def context(result: ContextResult) -> str:
    path = section_path(result.title, result.headings)
    where = "; ".join(
        part
        for part in (
            "starts the document" if result.first_in_document else "",
            "ends the document" if result.last_in_document else "",
        )
        if part
    )
    head = f"{result.citation}" + (f" § {path}" if path else "") + f" · chunks {result.chunks[0].chunk_index}"
    head += f"-{result.chunks[-1].chunk_index}" if len(result.chunks) > 1 else ""
    return head + (f" ({where})" if where else "") + "\n" + result.text


def ingest(result: IngestResult) -> str:
    lines = [result.summary]
    lines += [
        f"would {p.action} {p.source}" + (f" ({p.chunks} chunks)" if p.chunks else "") + (f": {p.reason}" if p.reason else "")
        for p in result.documents
        if p.action not in ("unchanged", "skip", "navigation", "keep")  # those are in the skips or the counts
    ]
    lines += [f"skipped {s.path}: {s.reason}" for s in result.skipped[:MAX_SKIPPED_SHOWN]]
    more = sum(result.skipped_by_reason.values()) - min(len(result.skipped), MAX_SKIPPED_SHOWN)
    if more > 0:
        lines.append(f"... and {more} more skipped (skipped_by_reason counts them)")
    return "\n".join(lines)


def outline(result: OutlineResult) -> str:
    """`source "Title" · N chunks · pp. a-b`, then one indented line per section with its pages, count and ids."""
    where = result.page_label and _pages(result.page_label, result.page_start, result.page_end)
    head = f"{result.source}" + (f' "{result.title}"' if result.title else "") + f" · {result.chunks} chunks"
    lines = [head + (f" · {where}" if where else "")]
    if result.unheaded_chunk_ids:
        n = len(result.unheaded_chunk_ids)
        lines.append(f"(no heading) {n} chunk{'s' if n != 1 else ''} · ids {_ids(result.unheaded_chunk_ids)}")
    stack = list(reversed(result.sections))
    while stack:
        node = stack.pop()
        pages = result.page_label and _pages(result.page_label, node.page_start, node.page_end)
        line = "  " * (node.level - 1) + f"- {node.heading}" + (f" ({pages})" if pages else "")
        line += f" · {node.chunks} chunk{'s' if node.chunks != 1 else ''}"
        lines.append(line + (f" · ids {_ids(node.chunk_ids)}" if node.chunk_ids else ""))
        stack += reversed(node.children)
    if result.note:
        lines.append(f"note: {result.note}")
    return "\n".join(lines)


def _pages(label: str, first: int, last: int) -> str:
    if not first:
        return ""
    if last <= first:
        return f"{label} {first}"
    return f"{'pp.' if label == 'p.' else label + 's'} {first}-{last}"


def _ids(ids: list[str]) -> str:
    shown = " ".join(ids[:MAX_IDS_SHOWN])
    return shown + (f" +{len(ids) - MAX_IDS_SHOWN} more" if len(ids) > MAX_IDS_SHOWN else "")


def delete(result: DeleteResult) -> str:
    """A dry run says what it would remove, and that nothing was; only a done delete says removed."""
    what = f"{result.chunks_removed} chunks of {len(result.sources_removed)} sources from {result.collection}"
    head = f"Dry run, nothing was deleted: would remove {what}:" if result.dry_run else f"Removed {what}:"
    return "\n".join([head, *(f"- {source}" for source in result.sources_removed)])


_REPORTED = {"collection", "exists", "embedder", "dim", "hybrid", "chunks", "sources", "languages", "listed", "collections"}


def collection(report: CollectionReport) -> str:
    """What a collection holds in lines; fields this does not know yet follow as `name: JSON`."""
    others = ", ".join(report.collections) or "none"
    if not report.exists:
        lines = [f"Collection {report.collection} does not exist yet (nothing was ingested into it). Collections: {others}"]
    else:
        kind = "hybrid (dense + BM25)" if report.hybrid else "dense only"
        lines = [
            f"{report.collection}: {report.chunks} chunks from {report.sources} sources · embedder {report.embedder} "
            f"({report.dim} dims) · {kind}"
        ]
        if report.languages:
            lines.append("languages: " + ", ".join(f"{language.label(c)} {s:.0%}" for c, s in report.languages.items()))
        roots = {item.root for item in report.listed}
        for item in report.listed:
            root = f" (root {item.root or '(text)'})" if len(roots) > 1 else ""
            lines.append(f"- {item.source}{root}: {item.chunks} chunks")
        if len(report.listed) < report.sources:
            lines.append(f"{len(report.listed)} of {report.sources} sources listed (source and limit choose which)")
        lines.append(f"collections: {others}")
    rest = report.model_dump(mode="json", exclude=_REPORTED, exclude_none=True)
    lines += [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in rest.items()]
    return "\n".join(lines)
