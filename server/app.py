"""The MCP server: registers the tools as thin wrappers over `tools/`, and nothing more."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, StrictInt

from server import __version__, client_log
from server.settings import Settings
from tools import answer, context, defaults, ingest, manage, search
from tools.errors import ProgressFn, UserError
from tools.readers import supported_suffixes
from tools.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")

FILE_TYPES = ", ".join(supported_suffixes())
INSTRUCTIONS = f"""Search and answer questions over documents stored in Milvus.
Use search_milvus_docs to find passages (with sources and section headings), answer_with_qwen
to get an answer from Qwen that cites them, and ingest_documents to add files ({FILE_TYPES})."""

Collection = Annotated[str | None, Field(description="Collection to use; default: the server's MILVUS_COLLECTION")]


async def _answer(call: Awaitable[T]) -> T:
    """Run a tool body; turn failures people can act on into readable tool errors."""
    try:
        return await call
    except UserError as exc:
        raise ToolError(str(exc)) from exc


def _progress(ctx: Context) -> ProgressFn:
    async def report(progress: float, total: float | None, message: str) -> None:
        await ctx.report_progress(progress, total, message)

    return report


def create_server(settings: Settings, services: Services | None = None) -> MCPServer:
    """An MCPServer with the tools registered; heavy parts load in the background after start."""
    services = services or settings.services()

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_warm_up, services)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
        await services.embedder.close()
        services.store.close()

    mcp = MCPServer(name="milvus-qwen", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)

    if not settings.read_only:  # the one tool that writes

        @mcp.tool(
            title="Ingest documents",
            description=f"Load files into Milvus, chunked by headings and embedded; unchanged files are skipped. "
            f"Reads {FILE_TYPES}.",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
            ),
        )
        async def ingest_documents(
            paths: Annotated[
                list[str], Field(description="Files, folders (recursive) or globs such as docs/**/*.md, inside INGEST_ROOTS")
            ],
            ctx: Context,
            collection: Collection = None,
            prune: Annotated[bool, Field(description="Also remove chunks of files that are gone from the folders given")] = False,
        ) -> ingest.IngestResult:
            result = await _answer(
                ingest.ingest_documents(services, paths, collection=collection, prune=prune, progress=_progress(ctx))
            )
            await client_log.after_ingest(ctx, result)
            return result

        @mcp.tool(
            title="Store a text",
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
            ),
        )
        async def ingest_text(
            text: Annotated[str, Field(description="The text to store: Markdown or plain text")],
            source: Annotated[
                str,
                Field(
                    description="The name to store it under, e.g. notes/meeting-2026-12-01.md; the same name with "
                    "a new text replaces the old one"
                ),
            ],
            title: Annotated[str | None, Field(description="Its title; default: its first # heading")] = None,
            collection: Collection = None,
        ) -> ingest.IngestResult:
            """Store a note, a page you fetched or a summary you wrote, so later searches find it; chunked by its
            Markdown headings. Storing the same text under the same name again changes nothing."""
            return await _answer(ingest.ingest_text(services, text, source, title=title, collection=collection))

        @mcp.tool(
            title="Delete documents",
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False),
        )
        async def delete_documents(
            sources: Annotated[list[str], Field(description="Stored source names or globs, e.g. en/faq/*.md")],
            collection: Collection = None,
        ) -> manage.DeleteResult:
            """Remove documents from the index: every chunk of the matching sources."""
            return await _answer(manage.delete_documents(services, sources, collection=collection))

    @mcp.tool(
        title="Search the documents",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def search_milvus_docs(
        query: Annotated[str, Field(description="The question or words to search for")],
        ctx: Context,
        top_k: Annotated[int, Field(description=f"How many chunks to return (1-{search.MAX_TOP_K})")] = defaults.TOP_K,
        source: Annotated[str | None, Field(description="Only sources matching this glob, e.g. en/faq/*.md")] = None,
        collection: Collection = None,
        mode: Annotated[
            defaults.Mode | None,
            Field(description="dense (meaning), bm25 (exact words) or hybrid (both); default: the server's SEARCH_MODE"),
        ] = None,
    ) -> search.SearchResponse:
        """Find the document chunks most relevant to a query, with scores, sources and section headings."""
        result = await _answer(
            search.search_milvus_docs(services, query, top_k=top_k, source=source, collection=collection, mode=mode)
        )
        await client_log.after_search(ctx, result)
        return result

    @mcp.tool(title="Read around a search hit", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def read_context(
        chunk_id: Annotated[str, Field(description="A chunk_id from a search_milvus_docs result")],
        before: Annotated[int, Field(description=f"Chunks to add before it (0-{context.MAX_AROUND})")] = 1,
        after: Annotated[int, Field(description=f"Chunks to add after it (0-{context.MAX_AROUND})")] = 1,
        section: Annotated[bool, Field(description="Return its whole section instead (before/after are ignored)")] = False,
        collection: Collection = None,
    ) -> context.ContextResult:
        """The text around a search hit: the chunk with its neighbours joined in document order, or its whole
        section, so you can read on without searching again."""
        return await _answer(
            context.read_context(services, chunk_id, before=before, after=after, section=section, collection=collection)
        )

    @mcp.tool(
        title="Answer with Qwen",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
    )
    async def answer_with_qwen(
        question: Annotated[str, Field(description="The question to answer from the documents")],
        ctx: Context,
        top_k: Annotated[int, Field(description="How many chunks to give the model as context")] = defaults.TOP_K,
        model: Annotated[str | None, Field(description="Chat model, e.g. qwen-plus or qwen3-32b; default QWEN_MODEL")] = None,
        enable_thinking: Annotated[
            bool | None, Field(description="Let Qwen 3 think before answering; default: the model's own default")
        ] = None,
        thinking_budget: Annotated[  # strict: a JSON true is not the integer 1
            StrictInt | None,
            Field(description="Most tokens the model may spend thinking (a positive integer; turns thinking on)"),
        ] = None,
        include_reasoning: Annotated[bool, Field(description="Return the model's reasoning text too")] = False,
        source: Annotated[str | None, Field(description="Only sources matching this glob")] = None,
        collection: Collection = None,
    ) -> answer.AnswerResult:
        """Answer a question from the documents with Qwen 3, citing the retrieved passages as [1], [2], ..."""
        result = await _answer(
            answer.answer_with_qwen(
                services,
                question,
                top_k=top_k,
                model=model,
                enable_thinking=enable_thinking,
                thinking_budget=thinking_budget,
                include_reasoning=include_reasoning,
                source=source,
                collection=collection,
                progress=_progress(ctx),
            )
        )
        await client_log.after_answer(ctx, result)
        return result

    @mcp.tool(
        title="Describe a collection",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def describe_collection(
        collection: Collection = None,
        source: Annotated[str | None, Field(description="Only list sources matching this glob")] = None,
        limit: Annotated[int, Field(description=f"Most sources to list (1-{manage.MAX_LISTED})")] = manage.DEFAULT_LISTED,
    ) -> manage.CollectionReport:
        """What a collection holds: its embedder, chunk and source counts, the sources, and the other collections."""
        return await _answer(manage.describe_collection(services, collection=collection, source=source, limit=limit))

    client_log.enable_set_level(mcp)
    return mcp


async def _warm_up(services: Services) -> None:
    """Load the embedder and open Milvus so the first tool call is fast; failures surface on that call."""
    try:
        await services.embedder.warm_up()
        await services.store.connect()
    except Exception as exc:  # reported again, clearly, by the first tool call that needs the part
        log.warning("warm-up failed: %s", exc)
