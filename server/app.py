"""The MCP server: the tools, a prompt and the documents as resources, as thin wrappers over `tools/`.

Every tool result carries the full structured content (described by its output schema) and a compact text
(server/render.py), which is all that Qwen-Agent and most agents read.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, InputRequiredResult, Resource, TextContent, ToolAnnotations
from mcp_types import Tool as MCPTool
from pydantic import BaseModel, Field, StrictInt, ValidationError

from server import __version__, client_log, render
from server.arguments import argument_errors, unknown_arguments
from server.settings import Settings
from tools import answer, context, defaults, globs, ingest, language, manage, outline, research, search, watch
from tools.errors import ProgressFn, UserError
from tools.readers import supported_suffixes
from tools.services import Services
from tools.store.filters import Where

log = logging.getLogger(__name__)

FILE_TYPES = ", ".join(supported_suffixes())
DOCUMENT_URI = "milvus-docs://{collection}/{+source}"
MAX_RESOURCES = 200
WATCH_RETRY_S = 5.0
LANGUAGES_WAIT_S = 5  # tools/list waits this long at most for the store to say its documents' languages
INSTRUCTIONS = f"""Search and answer questions over documents stored in Milvus.
- search_milvus_docs finds passages (with their source, section and a short id); read_context reads around one.
- get_document_outline maps one document: its heading tree with each section's chunk ids and pages.
- answer_with_qwen answers a question with Qwen from the passages it finds, citing them as [1], [2].
- research_with_qwen researches a question that needs several searches (sub-questions, rounds) and writes a cited report.
- ingest_documents adds files ({FILE_TYPES}); ingest_url fetches web pages; ingest_text stores a text you give it.
- describe_collection says what is stored (sources, languages) and lists the collections.
Write search queries in the documents' language (describe_collection reports it)."""

Collection = Annotated[str | None, Field(description="Collection to use; default: the server's MILVUS_COLLECTION")]
SourceFilter = Annotated[
    str | None,
    Field(
        description=f"Only sources matching this glob: {globs.RULES}. E.g. docs/**/*.pdf, *guide*, or a stored source's "
        "name (describe_collection lists them)"
    ),
]
WhereArg = Annotated[
    Where | None,
    Field(
        description="Filters beyond the source glob, all of which must hold: lang, pages, title, after/before, contains, metadata"
    ),
]
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def _reply(result: BaseModel) -> CallToolResult:
    """The compact text a model reads, and every field as structured content."""
    text = TextContent(type="text", text=render.text(result))
    return CallToolResult(content=[text], structured_content=result.model_dump(mode="json"))


async def _answer(call: Awaitable[Any]) -> Any:
    """Run a tool body; turn failures people can act on into readable tool errors."""
    try:
        return await call
    except UserError as exc:
        raise ToolError(str(exc)) from exc


def _progress(ctx: Context) -> ProgressFn:
    async def report(progress: float, total: float | None, message: str) -> None:
        await ctx.report_progress(progress, total, message)

    return report


class DocsServer(MCPServer):
    """An MCPServer whose resource list is the stored documents of the default collection, and whose tool
    listing names the documents' language and leaves out what only repeats: a title per argument (`Top K` for
    `top_k`) and docstring indents. After a write that changes what its listings say, it tells the client
    (`notifications/tools/list_changed`, `notifications/resources/list_changed`), for clients that list again."""

    services: Services
    _said: str | None = None  # the language line tools/list last named

    def advertise_list_changed(self) -> None:
        """Declare `listChanged` for tools and resources in the initialize result (MCPServer leaves it off)."""
        low = self._lowlevel_server
        plain = low.create_initialization_options

        def with_list_changed(notification_options: NotificationOptions | None = None, **kwargs: Any) -> Any:
            options = notification_options or NotificationOptions(tools_changed=True, resources_changed=True)
            return plain(options, **kwargs)

        low.create_initialization_options = with_list_changed  # type: ignore[method-assign,assignment]

    async def after_write(self, ctx: Context, documents_changed: bool) -> None:
        """Notify the client when the tool descriptions' language line or the stored documents changed."""
        if not documents_changed:
            return
        said = await self._languages_line()
        if said != self._said:
            self._said = said
            await ctx.session.send_tool_list_changed()
        await ctx.session.send_resource_list_changed()

    async def list_tools(self) -> list[MCPTool]:
        listed = await super().list_tools()
        for tool in listed:
            tool.description = inspect.cleandoc(tool.description or "")
            tool.input_schema = {key: value for key, value in tool.input_schema.items() if key != "title"}
            tool.input_schema["properties"] = {
                name: {key: value for key, value in field.items() if key != "title"}
                for name, field in tool.input_schema.get("properties", {}).items()
            }
            tool.input_schema["additionalProperties"] = False  # call_tool refuses what a tool does not take
            if tool.name == "search_milvus_docs":
                self._said = said = await self._languages_line()
                tool.description += "\n" + said if said else ""
        return listed

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The SDK's call, with unknown arguments refused and bad ones explained a line each (server/arguments.py)."""
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            return await super().call_tool(name, arguments, context)
        if refused := unknown_arguments(name, arguments, tool.parameters):
            raise ToolError(f"Error executing tool {name}: {refused}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"Error executing tool {name}: {argument_errors(exc.__cause__, tool.parameters)}") from None
            raise

    async def _languages_line(self) -> str | None:
        """`The documents in milvus_docs are mostly in English: write queries in English.`, when that is known
        within `LANGUAGES_WAIT_S` (search itself calls no model, so the calling agent translates)."""
        name = self.services.collection
        with anyio.move_on_after(LANGUAGES_WAIT_S):
            try:
                codes = language.main_languages(await search.document_languages(self.services, name))
            except (UserError, KeyError):  # no store, or no such collection yet
                return None
            codes = [code for code in codes if code in language.NAMES]  # "latin" or a script name says too little
            if codes:
                names = " and ".join(language.name(code) for code in codes)
                return f"The documents in {name} are mostly in {names}: write queries in {names}."
        return None

    async def list_resources(self) -> list[Resource]:
        listed = await super().list_resources()
        try:
            counts = await self.services.store.sources(self.services.collection)
        except (UserError, KeyError):  # no store, or no such collection yet
            return listed
        name = self.services.collection
        for _, source in sorted(counts, key=lambda key: key[1])[:MAX_RESOURCES]:
            uri = DOCUMENT_URI.replace("{collection}", name).replace("{+source}", source)
            listed.append(Resource(uri=uri, name=source, mime_type="text/markdown"))
        return listed


def create_server(settings: Settings, services: Services | None = None) -> MCPServer:
    """An MCPServer with the tools registered; heavy parts load in the background after start."""
    services = services or settings.services()

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_warm_up, services)
            if settings.watch and not settings.read_only:
                tg.start_soon(keep_watching, services, settings.watch_debounce_ms)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
        await services.embedder.close()
        if services.reranker is not None:
            await services.reranker.close()
        services.store.close()

    mcp = DocsServer(name="milvus-qwen", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)
    mcp.services = services
    mcp.advertise_list_changed()

    if not settings.read_only:  # the tools that write
        _register_writers(mcp, services)

    @mcp.tool(title="Search the documents", annotations=READ)
    async def search_milvus_docs(
        query: Annotated[str, Field(description="The question or words to search for, in the documents' language")],
        ctx: Context,
        top_k: Annotated[int, Field(description=f"How many passages to return (1-{search.MAX_TOP_K})")] = defaults.TOP_K,
        source: SourceFilter = None,
        collection: Collection = None,
        mode: Annotated[
            defaults.Mode | None,
            Field(description="dense (meaning), bm25 (exact words) or hybrid (both); default: the server's SEARCH_MODE"),
        ] = None,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, search.SearchResponse]:
        """Find the passages most relevant to a query, best first, each with its source (and page), section,
        score and a short id for read_context. Scores only rank results within one search: cosine similarity
        (dense), BM25 (bm25), cosine plus heading and word matches (hybrid) or a reranker's relevance (rerank);
        the result says which. A query in another language than the documents' finds less: the result notes it."""
        result = await _answer(
            search.search_milvus_docs(services, query, top_k=top_k, source=source, collection=collection, mode=mode, where=where)
        )
        await client_log.after_search(ctx, result)
        return _reply(result)

    @mcp.tool(title="Read around a search hit", annotations=READ)
    async def read_context(
        chunk_id: Annotated[str, Field(description="A search result's id (its first 8 or more characters will do)")],
        before: Annotated[int, Field(description=f"Chunks to add before it (0-{context.MAX_AROUND})")] = 1,
        after: Annotated[int, Field(description=f"Chunks to add after it (0-{context.MAX_AROUND})")] = 1,
        section: Annotated[bool, Field(description="Return its whole section instead (before and after are ignored)")] = False,
        collection: Collection = None,
    ) -> Annotated[CallToolResult, context.ContextResult]:
        """The text around a search hit: the passage with its neighbours joined in document order, or its whole
        section, so you can read on without searching again."""
        found = context.read_context(services, chunk_id, before=before, after=after, section=section, collection=collection)
        return _reply(await _answer(found))

    @mcp.tool(title="Outline a document", annotations=READ)
    async def get_document_outline(
        source: Annotated[
            str, Field(description="The document's source as search results name it, or a glob matching one document")
        ],
        depth: Annotated[
            int | None,
            Field(description=f"Deepest heading level to show (1-{outline.MAX_DEPTH}); default: all (cut for long documents)"),
        ] = None,
        collection: Collection = None,
    ) -> Annotated[CallToolResult, outline.OutlineResult]:
        """A document's heading tree: each section with its pages (or slides), how many chunks it holds and their
        short ids, which read_context takes (section=true reads a whole section). Read it to find where a topic is
        before reading."""
        found = outline.get_document_outline(services, source, collection=collection, depth=depth)
        return _reply(await _answer(found))

    @mcp.tool(title="Answer with Qwen", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def answer_with_qwen(
        question: Annotated[str, Field(description="The question to answer from the documents, in any language")],
        ctx: Context,
        top_k: Annotated[int, Field(description="How many passages to give the model as context")] = defaults.TOP_K,
        model: Annotated[str | None, Field(description="Chat model, e.g. qwen-plus or qwen3.5-plus; default: QWEN_MODEL")] = None,
        enable_thinking: Annotated[
            bool | None,
            Field(description="Let the model think first; unset: the model's default (Qwen3.5 and later think)"),
        ] = None,
        thinking_budget: Annotated[  # strict: a JSON true is not the integer 1
            StrictInt | None,
            Field(description="Most tokens the model may spend thinking (a positive integer; turns thinking on)"),
        ] = None,
        include_reasoning: Annotated[bool, Field(description="Return the model's reasoning text too")] = False,
        source: SourceFilter = None,
        collection: Collection = None,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, answer.AnswerResult]:
        """Answer a question from the documents with Qwen, citing the passages it was given as [1], [2], ...
        A question in another language than the documents' is searched in theirs and answered in its own."""
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
                where=where,
            )
        )
        await client_log.after_answer(ctx, result)
        return _reply(result)

    @mcp.tool(title="Research with Qwen", annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True))
    async def research_with_qwen(
        question: Annotated[str, Field(description="The question to research in the documents, in any language")],
        ctx: Context,
        collections: Annotated[
            str | list[str] | None,
            Field(description="Collections to search: a name, a list, or * for every one; default: MILVUS_COLLECTION"),
        ] = None,
        source: SourceFilter = None,
        max_rounds: Annotated[
            StrictInt, Field(description=f"Most rounds of search (1-{research.MAX_ROUNDS})")
        ] = defaults.RESEARCH_MAX_ROUNDS,
        max_sub_questions: Annotated[
            StrictInt, Field(description=f"Most sub-questions in the plan (1-{research.MAX_SUB_QUESTIONS})")
        ] = defaults.RESEARCH_MAX_SUB_QUESTIONS,
        top_k: Annotated[StrictInt, Field(description="Passages per query and collection")] = defaults.RESEARCH_TOP_K,
        model: Annotated[str | None, Field(description="Chat model for every step; default: QWEN_MODEL")] = None,
        enable_thinking: Annotated[
            bool | None, Field(description="Let the model think before writing the report (the other steps never do)")
        ] = None,
        thinking_budget: Annotated[
            StrictInt | None, Field(description="Most tokens the report's thinking may take (a positive integer)")
        ] = None,
        include_reasoning: Annotated[bool, Field(description="Return the report's reasoning text too")] = False,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, research.ResearchResult]:
        """Research a question that one search cannot answer (two features compared, a how-to across pages):
        Qwen splits it into sub-questions, searches each, keeps the passages that help, searches again for
        what is missing, and writes a report citing them as [1], [2]. Slower than answer_with_qwen."""

        async def step(message: str) -> None:
            await client_log.send(ctx, "info", message)

        result = await _answer(
            research.research_with_qwen(
                services,
                question,
                collections=collections,
                source=source,
                max_rounds=max_rounds,
                max_sub_questions=max_sub_questions,
                top_k=top_k,
                model=model,
                enable_thinking=enable_thinking,
                thinking_budget=thinking_budget,
                include_reasoning=include_reasoning,
                progress=_progress(ctx),
                on_step=step,
                where=where,
            )
        )
        await client_log.after_research(ctx, result)
        return _reply(result)

    @mcp.tool(title="Describe a collection", annotations=READ)
    async def describe_collection(
        collection: Collection = None,
        source: SourceFilter = None,
        limit: Annotated[int, Field(description=f"Most sources to list (1-{manage.MAX_LISTED})")] = manage.DEFAULT_LISTED,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, manage.CollectionReport]:
        """What a collection holds (its sources, chunk counts, languages and embedder) and which collections
        exist; on a fresh store, that nothing does yet."""
        return _reply(
            await _answer(manage.describe_collection(services, collection=collection, source=source, limit=limit, where=where))
        )

    @mcp.prompt(name="ask_docs", title="Ask the documents")
    async def ask_docs(
        question: Annotated[str, Field(description="The question, in the documents' language")],
        top_k: Annotated[str | None, Field(description=f"How many passages to fill in (1-{search.MAX_TOP_K})")] = None,
        source: SourceFilter = None,
    ) -> list[Message]:
        """The tutorial's RAG prompt for a question: the best passages in <context>, the question in <question>.
        Its arguments are checked as the search tool's are; a bad one is an invalid-params error that says why
        (prompt arguments arrive as strings, so top_k is read here)."""
        k = int(top_k) if top_k is not None and top_k.strip().isdigit() else defaults.TOP_K if top_k is None else top_k
        try:
            found = await search.search_milvus_docs(services, question, top_k=k, source=source)  # type: ignore[arg-type]
        except UserError as exc:
            raise MCPError(INVALID_PARAMS, str(exc)) from exc
        system, user = answer.build_messages(question, found.results)
        return [UserMessage(f"{system['content']}\n\n{user['content']}")]

    @mcp.resource(DOCUMENT_URI, title="A stored document", mime_type="text/markdown")
    async def document(collection: str, source: str) -> str:
        """A stored document's text, its chunks joined back in order."""
        try:
            return (await context.read_document(services, source, collection=collection)).text
        except UserError as exc:
            raise ResourceError(str(exc)) from exc

    client_log.enable_set_level(mcp)
    return mcp


def _register_writers(mcp: DocsServer, services: Services) -> None:
    """ingest_documents, ingest_url, ingest_text, delete_documents and drop_collection (left out when READ_ONLY)."""
    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    deletes = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

    @mcp.tool(
        title="Ingest documents",
        description="Load files into Milvus, chunked by headings (and pages) and embedded; unchanged files cost "
        f"nothing. Reads {FILE_TYPES}. The result says what was skipped and why.",
        annotations=writes,
    )
    async def ingest_documents(
        paths: Annotated[
            list[str], Field(description="Files, folders (recursive) or globs such as docs/**/*.pdf, inside INGEST_ROOTS")
        ],
        ctx: Context,
        collection: Collection = None,
        prune: Annotated[bool, Field(description="Also remove documents whose files are gone from the folders given")] = False,
        exclude: Annotated[
            list[str] | None, Field(description="Globs of files to leave out, such as **/genindex*.html or drafts/**")
        ] = None,
        dry_run: Annotated[
            bool, Field(description="Only list what would be added, replaced, kept, removed and skipped; change nothing")
        ] = False,
    ) -> Annotated[CallToolResult, ingest.IngestResult]:
        result = await _answer(
            ingest.ingest_documents(
                services, paths, collection=collection, prune=prune, exclude=exclude, dry_run=dry_run, progress=_progress(ctx)
            )
        )
        await client_log.after_ingest(ctx, result)
        await mcp.after_write(ctx, bool(result.chunks_added or result.chunks_removed) and not dry_run)
        return _reply(result)

    @mcp.tool(title="Store a text", annotations=writes)
    async def ingest_text(
        text: Annotated[str, Field(description="The text to store: Markdown or plain text")],
        source: Annotated[
            str,
            Field(description="The name to store it under, e.g. notes/meeting.md; the same name with a new text replaces it"),
        ],
        ctx: Context,
        title: Annotated[str | None, Field(description="Its title; default: its first # heading")] = None,
        collection: Collection = None,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description='The document\'s metadata, e.g. {"author": "Ada", "year": 2024, "tags": ["ops"]}; filters test it'),
        ] = None,
    ) -> Annotated[CallToolResult, ingest.IngestResult]:
        """Store a note, a page you fetched or a summary you wrote, so later searches find it; chunked by its
        Markdown headings. Storing the same text under the same name again changes nothing."""
        stored = ingest.ingest_text(services, text, source, title=title, collection=collection, metadata=metadata)
        result = await _answer(stored)
        await mcp.after_write(ctx, bool(result.chunks_added or result.chunks_removed))
        return _reply(result)

    @mcp.tool(
        title="Ingest web pages",
        description="Fetch web pages by URL (http, https) and load them into Milvus like files, each stored under its "
        "URL; the page's content type picks the reader (HTML, PDF, the other file types). A page that did not change "
        "changes nothing. Pages on private, loopback or link-local addresses are refused unless URL_ALLOW_PRIVATE. "
        "The result says what was skipped and why.",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True),
    )
    async def ingest_url(
        urls: Annotated[list[str], Field(description="Page URLs, such as https://milvus.io/docs/overview.md")],
        ctx: Context,
        collection: Collection = None,
    ) -> Annotated[CallToolResult, ingest.IngestResult]:
        result = await _answer(ingest.ingest_url(services, urls, collection=collection, progress=_progress(ctx)))
        await client_log.after_ingest(ctx, result)
        await mcp.after_write(ctx, bool(result.chunks_added or result.chunks_removed))
        return _reply(result)

    @mcp.tool(title="Delete documents", annotations=deletes)
    async def delete_documents(
        sources: Annotated[list[str], Field(description=f"Source names or globs ({globs.RULES}), e.g. docs/old/*.md or *draft*")],
        ctx: Context,
        collection: Collection = None,
        dry_run: Annotated[bool, Field(description="List what would be removed; remove nothing")] = False,
        where: Annotated[
            Where | None, Field(description="Only the documents among them with a chunk passing these filters (as search's)")
        ] = None,
    ) -> Annotated[CallToolResult, manage.DeleteResult]:
        """Remove documents from the index: every chunk of the matching sources."""
        result = await _answer(manage.delete_documents(services, sources, collection=collection, dry_run=dry_run, where=where))
        await mcp.after_write(ctx, not dry_run)
        return _reply(result)

    @mcp.tool(title="Drop a collection", annotations=deletes)
    async def drop_collection(
        collection: Annotated[str, Field(description="The exact name of the collection to delete, with all it holds")],
    ) -> Annotated[CallToolResult, manage.DropResult]:
        """Delete a whole collection and every document in it (for a mistyped or unwanted one)."""
        return _reply(await _answer(manage.drop_collection(services, collection)))


async def keep_watching(services: Services, debounce_ms: int) -> None:
    """WATCH=true: keep INGEST_ROOTS in sync; a watcher that fails is started again after a pause, so the server
    goes on serving."""
    while True:
        try:
            await watch.watch(services, debounce_ms=debounce_ms)
        except Exception as exc:
            log.warning("watcher failed (%s: %s); starting it again in %g s", type(exc).__name__, exc, WATCH_RETRY_S)
        await anyio.sleep(WATCH_RETRY_S)


async def _warm_up(services: Services) -> None:
    """Load the embedder and open Milvus so the first tool call is fast; failures surface on that call."""
    try:
        await services.embedder.warm_up()
        await services.store.connect()
    except Exception as exc:  # reported again, clearly, by the first tool call that needs the part
        log.warning("warm-up failed: %s", exc)
