"""get_document_outline: a stored document's heading tree, the map an agent reads before read_context.

Built from the chunks alone (their heading paths, pages and order), so every stored document has one, whatever
its format, and it always agrees with what search returns. Each node lists its own chunks' short ids (as search
results show them; read_context takes them) and counts the chunks under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from tools.errors import UserError
from tools.globs import matches
from tools.readers import reader_for
from tools.result import Result
from tools.search import citation, open_collection
from tools.services import Services
from tools.store import ChunkRow

SHORT_ID = 12  # hex characters of a chunk id, as search results show them; read_context takes any unique prefix of 8+
MAX_DEPTH = 6
MAX_NODES = 200  # without a depth, the outline is cut to the deepest level that keeps it within this many nodes
OUTLINE_FIELDS = ["id", "source", "root", "title", "headings", "chunk_index", "page_start", "page_end"]


class OutlineNode(Result):
    """A section: its heading, where it is, and the chunks in it."""

    heading: str
    level: int = Field(description="1 for a top heading")
    chunks: int = Field(description="Chunks in this section and every section under it")
    chunk_ids: list[str] = Field(
        description="This section's own chunks' short ids, in order (with those of deeper sections cut by `depth`); "
        "read_context takes them, with section=true for the whole section"
    )
    page_start: int = Field(0, description="First page (or slide) of the section; 0 where the format has no pages")
    page_end: int = Field(0, description="Last page (or slide)")
    citation: str = Field(description="The source and the section's pages, as search results cite them")
    children: list[OutlineNode] = Field(default_factory=list)


class OutlineResult(Result):
    """A document's heading tree."""

    collection: str
    source: str
    root: str = Field("", description='The ingest root the file came from ("" for text stored by name)')
    title: str
    chunks: int = Field(description="Chunks in the whole document")
    page_label: str = Field(description='What the page numbers count: "p." (pages), "slide", or "" where there are none')
    page_start: int = 0
    page_end: int = 0
    depth: int = Field(description="The deepest heading level shown; deeper sections are folded into their parent")
    deepest: int = Field(description="The deepest heading level the document has")
    unheaded_chunk_ids: list[str] = Field(
        default_factory=list, description="Short ids of chunks under no heading (before the first one, a slide without a title)"
    )
    sections: list[OutlineNode]
    note: str | None = Field(None, description="What to know: the outline was cut to a depth, another root holds the name")


@dataclass
class _Node:
    heading: str
    level: int
    ids: list[tuple[int, str]] = field(default_factory=list)  # (chunk index, short id)
    pages: list[int] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    def total(self) -> int:
        return len(self.ids) + sum(child.total() for child in self.children)

    def all_pages(self) -> list[int]:
        return self.pages + [n for child in self.children for n in child.all_pages()]


async def get_document_outline(
    services: Services, source: str, *, collection: str | None = None, depth: int | None = None
) -> OutlineResult:
    """The heading tree of the stored document `source` (its exact name, or a glob that matches one document),
    down to heading level `depth` (default: all, unless that is more than `MAX_NODES` sections)."""
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH):
        raise UserError(f"depth must be a whole number from 1 to {MAX_DEPTH}, not {depth!r}")
    if not isinstance(source, str) or not source.strip():
        raise UserError("Give the source of a stored document (search results and describe_collection name them)")
    info = await open_collection(services, collection)
    documents = await _documents(services, info.name, source.strip())
    root, name = documents[0]
    rows = await services.store.document_chunks(info.name, (root, name), 0, 2**62, fields=OUTLINE_FIELDS)
    tree, unheaded = _tree(rows)
    deepest = max((level for node in tree for level in _levels(node)), default=0)
    shown = depth or _fitting_depth(tree, deepest)
    notes = []
    if shown < deepest:
        notes.append(
            f"Shown to heading level {shown} of {deepest}; deeper sections are folded into their parent "
            f"(depth={min(shown + 1, MAX_DEPTH)} shows more)"
        )
    if len(documents) > 1:
        notes.append(f"{len(documents)} ingest roots hold {name!r}; this is the one under {root or '(text)'}")
    pages = [n for row in rows for n in (row.page_start, row.page_end) if n]
    reader = reader_for(Path(name))
    return OutlineResult(
        collection=info.name,
        source=name,
        root=root,
        title=rows[0].title if rows else "",
        chunks=len(rows),
        page_label=(reader.page_label if reader is not None else "p.") if pages else "",
        page_start=min(pages, default=0),
        page_end=max(pages, default=0),
        depth=min(shown, deepest),
        deepest=deepest,
        unheaded_chunk_ids=unheaded,
        sections=[_shape(node, name, shown) for node in tree],
        note="; ".join(notes) or None,
    )


async def _documents(services: Services, name: str, source: str) -> list[tuple[str, str]]:
    """The stored documents (root, source) named `source` exactly, else the one a glob matches."""
    counts = await services.store.sources(name)
    exact = sorted(key for key in counts if key[1] == source)
    if exact:
        return exact
    matching = sorted({key[1] for key in counts if matches(key[1], source)})
    if len(matching) == 1:
        return sorted(key for key in counts if key[1] == matching[0])
    if matching:
        shown = ", ".join(matching[:5]) + (f" and {len(matching) - 5} more" if len(matching) > 5 else "")
        raise UserError(f"source={source!r} matches {len(matching)} documents ({shown}); name one of them")
    raise UserError(f"No document {source!r} in {name!r}; describe_collection lists them")


def _tree(rows: list[ChunkRow]) -> tuple[list[_Node], list[str]]:
    """Sections in document order: a chunk joins the last section on its heading path, or opens new ones; a
    heading that comes back after another section is a new section."""
    top: list[_Node] = []
    unheaded: list[str] = []
    for row in rows:
        if not row.headings:
            unheaded.append(row.id[:SHORT_ID])
            continue
        siblings, node = top, None
        for level, heading in enumerate(row.headings, start=1):
            if not siblings or siblings[-1].heading != heading:
                siblings.append(_Node(heading, level))
            node = siblings[-1]
            siblings = node.children
        assert node is not None
        node.ids.append((row.chunk_index, row.id[:SHORT_ID]))
        node.pages += [n for n in (row.page_start, row.page_end) if n]
    return top, unheaded


def _levels(node: _Node) -> list[int]:
    return [node.level] + [level for child in node.children for level in _levels(child)]


def _fitting_depth(tree: list[_Node], deepest: int) -> int:
    """The deepest level whose outline has at most `MAX_NODES` sections (at least 1)."""
    for depth in range(deepest, 1, -1):
        if sum(1 for node in tree for level in _levels(node) if level <= depth) <= MAX_NODES:
            return depth
    return 1


def _shape(node: _Node, source: str, depth: int) -> OutlineNode:
    pages = node.all_pages()
    folded = node.level >= depth
    ids = sorted(node.ids + ([i for child in node.children for i in _all_ids(child)] if folded else []))
    return OutlineNode(
        heading=node.heading,
        level=node.level,
        chunks=node.total(),
        chunk_ids=[short for _, short in ids],
        page_start=min(pages, default=0),
        page_end=max(pages, default=0),
        citation=citation(source, min(pages, default=0), max(pages, default=0)),
        children=[] if folded else [_shape(child, source, depth) for child in node.children],
    )


def _all_ids(node: _Node) -> list[tuple[int, str]]:
    return node.ids + [i for child in node.children for i in _all_ids(child)]
