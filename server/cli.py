"""`milvus-qwen`: the same tools for people at a terminal, and for scripts (`--json`).

    milvus-qwen ingest docs/ --prune
    milvus-qwen ingest-text notes/today.md today.md
    milvus-qwen ingest-url https://milvus.io/docs/overview.md
    milvus-qwen search "How is data stored in milvus?" -k 5
    milvus-qwen ask "How is data stored in milvus?" --think --budget 512 --source "en/faq/*.md"
    milvus-qwen research "Which index uses less memory, IVF_PQ or HNSW?" --rounds 2 --collections "*"
    milvus-qwen info
    milvus-qwen outline manual.pdf --depth 2
    milvus-qwen delete "en/faq/*.md" --dry-run
    milvus-qwen serve [--transport streamable-http]

Settings come from the environment, as for the server (MILVUS_URI, DASHSCOPE_API_KEY, ...; `milvus-qwen serve
--help` lists them). With --json a command prints what the MCP tool returns as structured content, and nothing
else, on stdout; progress, errors and logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from server import render
from server.settings import ConfigError, Settings, exit_with
from tools import answer, defaults, ingest, language, manage, outline, research, search, watch
from tools import progress as progress_log
from tools.checks import whole_number
from tools.errors import UserError
from tools.llm import MAX_TOKENS_LIMIT
from tools.services import Services
from tools.store.filters import NumberRange, PageRange, Where

PROG = "milvus-qwen"
console = Console(soft_wrap=True)  # results, for people; prose is not cut into lines, tables fit the width
stderr = Console(stderr=True, soft_wrap=True)  # progress and errors, so that stdout carries only results

# The tools' messages name the MCP tools; here they name the commands that do the same.
COMMANDS = {
    "ingest_documents": f"{PROG} ingest PATH",
    "ingest_text": f"{PROG} ingest-text NAME",
    "ingest_url": f"{PROG} ingest-url URL",
    "search_milvus_docs": f"{PROG} search QUERY",
    "answer_with_qwen": f"{PROG} ask QUESTION",
    "research_with_qwen": f"{PROG} research QUESTION",
    "describe_collection": f"{PROG} info",
    "get_document_outline": f"{PROG} outline SOURCE",
    "delete_documents": f"{PROG} delete SOURCE",
    "drop_collection": f"{PROG} drop NAME",
}
_TOOL_NAME = re.compile(r"\b(" + "|".join(COMMANDS) + r")\b")


def for_people(message: str) -> str:
    """A tool's message with each MCP tool it names replaced by the CLI command that does the same."""
    return _TOOL_NAME.sub(lambda m: f"`{COMMANDS[m.group(1)]}`", message)


def _parser() -> argparse.ArgumentParser:
    # --collection and --json go before or after the command; SUPPRESS keeps a subcommand from resetting them
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--collection", metavar="NAME", default=argparse.SUPPRESS, help="collection (default: MILVUS_COLLECTION)")
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as JSON on stdout (the MCP tool's structured content), for scripts",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Ingest, search and ask over Milvus and Qwen 3.",
        epilog=f"Settings come from the environment, as for the server; `{PROG} serve --help` lists them.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, filtered: bool = False) -> argparse.ArgumentParser:
        parents = [common, _where_flags()] if filtered else [common]
        return commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=parents)

    p = command("ingest", "ingest files, folders (recursive) or globs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--prune", action="store_true", help="remove chunks of files gone from the folders")
    p.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="leave out files matching this glob (repeatable): '**/genindex*.html'",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be added, replaced, removed, skipped; change nothing")
    p = command("ingest-text", "store a text (a note, a page) under a name of your choosing")
    p.add_argument("name", help="the name to store it under, e.g. notes/meeting.md; the same name replaces it")
    p.add_argument("file", nargs="?", default="-", help="the file to read the text from (default: stdin)")
    p.add_argument("--title", help="its title (default: its first # heading)")
    p.add_argument("--metadata", metavar="JSON", help='its metadata as a JSON object, e.g. \'{"author": "Ada"}\'')
    p = command("ingest-url", "fetch web pages and ingest them, each under its URL")
    p.add_argument("urls", nargs="+", metavar="URL")
    p = command("search", "search the documents", filtered=True)
    p.add_argument("query")
    p.add_argument(
        "-k",
        "--top-k",
        type=_whole(1, search.MAX_TOP_K),
        default=defaults.TOP_K,
        help=f"how many chunks (default {defaults.TOP_K})",
    )
    p.add_argument("--mode", choices=search.MODES, help="default: SEARCH_MODE")
    p.add_argument("--source", metavar="GLOB", help="only sources matching this glob")
    p = command("ask", "answer a question with Qwen, citing the documents", filtered=True)
    p.add_argument("question")
    p.add_argument(
        "-k",
        "--top-k",
        type=_whole(1, search.MAX_TOP_K),
        default=defaults.TOP_K,
        help=f"passages to give the model (default {defaults.TOP_K})",
    )
    p.add_argument("--source", metavar="GLOB", help="only passages from sources matching this glob")
    p.add_argument("--model", help="chat model (default: QWEN_MODEL)")
    think = p.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_const", const=True, help="turn thinking on")
    think.add_argument("--no-think", dest="think", action="store_const", const=False, help="turn thinking off")
    p.add_argument("--budget", type=_whole(1, MAX_TOKENS_LIMIT), help="thinking budget in tokens")
    p.add_argument("--reasoning", action="store_true", help="print the model's reasoning too")
    p = command("research", "research a question in rounds of search and write a cited report with Qwen", filtered=True)
    p.add_argument("question")
    p.add_argument(
        "--collections",
        metavar="NAMES",
        help="comma-separated collections to search, or * for every one (default: --collection or MILVUS_COLLECTION)",
    )
    p.add_argument("--source", metavar="GLOB", help="only passages from sources matching this glob")
    p.add_argument(
        "--rounds",
        type=_whole(1, research.MAX_ROUNDS),
        default=defaults.RESEARCH_MAX_ROUNDS,
        help=f"most rounds (default {defaults.RESEARCH_MAX_ROUNDS})",
    )
    p.add_argument(
        "--sub-questions",
        type=_whole(1, research.MAX_SUB_QUESTIONS),
        default=defaults.RESEARCH_MAX_SUB_QUESTIONS,
        help=f"most sub-questions in the plan (default {defaults.RESEARCH_MAX_SUB_QUESTIONS})",
    )
    p.add_argument(
        "-k",
        "--top-k",
        type=_whole(1, search.MAX_TOP_K),
        default=defaults.RESEARCH_TOP_K,
        help=f"passages per query and collection (default {defaults.RESEARCH_TOP_K})",
    )
    p.add_argument("--model", help="chat model for every step (default: QWEN_MODEL)")
    think = p.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_const", const=True, help="think before writing the report")
    think.add_argument("--no-think", dest="think", action="store_const", const=False, help="never think")
    p.add_argument("--budget", type=_whole(1, MAX_TOKENS_LIMIT), help="thinking budget in tokens, for the report")
    p.add_argument("--reasoning", action="store_true", help="print the report's reasoning too")
    p = command("info", "what a collection holds", filtered=True)
    p.add_argument("--source", metavar="GLOB", help="only list sources matching this glob")
    p.add_argument(
        "--limit",
        type=_whole(1, manage.MAX_LISTED),
        default=manage.DEFAULT_LISTED,
        help=f"most sources to list (default {manage.DEFAULT_LISTED})",
    )
    p = command("outline", "a document's heading tree, with each section's pages, chunk count and chunk ids")
    p.add_argument("source", help="the document's source name (or a glob matching one)")
    p.add_argument(
        "--depth", type=_whole(1, outline.MAX_DEPTH), help=f"deepest heading level to show (1-{outline.MAX_DEPTH}; default: all)"
    )
    p = command("delete", "remove documents by source name or glob", filtered=True)
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    command("watch", "keep INGEST_ROOTS in sync until stopped: ingest new and changed files, remove deleted ones")
    p = command("drop", "delete a whole collection and everything in it")
    p.add_argument("name", help="the collection's exact name")
    commands.add_parser("serve", help="run the MCP server (takes the server's flags; serve --help lists them)", add_help=False)
    return parser


def _where_flags() -> argparse.ArgumentParser:
    """The typed filters as flags (tools/store/filters.py `Where`)."""
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("filters (all must hold)")
    group.add_argument("--lang", action="append", metavar="CODE", help="chunk language, e.g. en (repeat for several)")
    group.add_argument("--pages", metavar="FIRST-LAST", help="pages or slides: 3-7, 12, or 5- (from 5 on)")
    group.add_argument("--title", dest="title_glob", metavar="GLOB", help="document title glob, ignoring case: '*manual*'")
    group.add_argument("--after", metavar="DATE", help="chunks written at or after this ISO date or time")
    group.add_argument("--before", metavar="DATE", help="chunks written before this ISO date or time")
    group.add_argument("--contains", metavar="PHRASE", help="passages holding this word or phrase (ignoring case)")
    group.add_argument(
        "--meta",
        action="append",
        metavar="KEY=VALUE",
        help='a metadata condition: author=Ada, year=2024, \'tags=["ops","db"]\' (any of), year>=2020, year<=2024',
    )
    return flags


_META = re.compile(r"^(?P<key>[^=<>]+?)(?P<op>>=|<=|=)(?P<value>.*)$", re.S)


def _where(args: argparse.Namespace) -> Where | None:
    """The filter flags as a `Where`, or None when none is given."""
    pages = None
    if args.pages:
        first, dash, last = args.pages.partition("-")
        try:
            pages = PageRange(first=int(first) if first else None, last=int(last) if last else None if dash else int(first))
        except ValueError:
            raise UserError(f"--pages must be FIRST-LAST, FIRST or FIRST- in page numbers, not {args.pages!r}") from None
    metadata: dict[str, Any] = {}
    for condition in args.meta or []:
        match = _META.match(condition)
        if match is None:
            raise UserError(f"--meta takes KEY=VALUE, KEY>=NUMBER or KEY<=NUMBER, not {condition!r}")
        key, op, text = match["key"].strip(), match["op"], match["value"]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if op == "=":
            metadata[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"--meta {key}{op} needs a number, not {text!r}")
        previous = metadata.get(key)
        bounds = previous if isinstance(previous, NumberRange) else NumberRange()
        metadata[key] = bounds.model_copy(update={"min" if op == ">=" else "max": value})
    given = {
        "lang": args.lang, "pages": pages, "title": args.title_glob, "after": args.after, "before": args.before,
        "contains": args.contains, "metadata": metadata or None,
    }  # fmt: skip
    if all(value is None for value in given.values()):
        return None
    try:
        return Where(**given)
    except ValidationError as exc:
        raise UserError(f"bad filter: {exc.errors()[0]['msg']}") from None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from server.__main__ import main as serve

        serve(argv[1:])
        return
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    try:
        settings = Settings.load([])  # the environment, and the .env file ENV_FILE names: as the server reads them
        services = settings.services()
    except ConfigError as exc:
        exit_with(PROG, exc)
    _check_allowed(args, settings)
    os.environ.pop("MILVUS_URI", None)  # pymilvus would parse it itself; see server/__main__.py
    if args.command == "watch":
        _watch(services, settings.watch_debounce_ms)
        return
    try:
        anyio.run(_run, args, services)
    except UserError as exc:
        stderr.print(f"[red]error:[/red] {escape(for_people(str(exc)))}", highlight=False)
        sys.exit(1)


WRITERS = ("ingest", "ingest-text", "ingest-url", "delete", "drop", "watch")


def _watch(services: Services, debounce_ms: int) -> None:
    """`milvus-qwen watch`: sync INGEST_ROOTS until Ctrl-C, its log lines on stderr."""
    logging.getLogger("tools.watch").setLevel(logging.INFO)
    logging.getLogger("tools.watch").info("watching %s (Ctrl-C stops)", ", ".join(str(r) for r in services.roots))

    async def run() -> None:
        try:
            await watch.watch(services, debounce_ms=debounce_ms)
        finally:
            await services.embedder.close()
            services.store.close()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run)


def _check_allowed(args: argparse.Namespace, settings: Settings) -> None:
    """Settings that forbid or cannot serve the command: a `prog: ...` line and status 2, before anything opens."""
    command = f"`{PROG} {args.command}`"
    if settings.read_only and args.command in WRITERS and not getattr(args, "dry_run", False):
        exit_with(PROG, ConfigError(f"READ_ONLY is on, and {command} changes the store: unset READ_ONLY to run it"))
    if args.command in ("ask", "research") and settings.llm_dialect == "dashscope" and settings.dashscope_api_key is None:
        exit_with(PROG, ConfigError(f"{command} needs DASHSCOPE_API_KEY, in the environment or in the .env file ENV_FILE names"))


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`; else argparse's error naming the flag, status 2."""

    def parse(text: str) -> int:
        try:
            return whole_number("", int(text), low, high)
        except (ValueError, UserError):
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, not {text!r}") from None

    return parse


async def _run(args: argparse.Namespace, services: Services) -> None:
    calls: dict[str, Callable[[argparse.Namespace, Services], Awaitable[BaseModel]]] = {
        "ingest": _ingest,
        "ingest-text": _ingest_text,
        "ingest-url": _ingest_url,
        "search": _search,
        "ask": _ask,
        "research": _research,
        "info": _info,
        "outline": _outline,
        "delete": _delete,
        "drop": _drop,
    }
    try:
        result = await calls[args.command](args, services)
    finally:
        await services.embedder.close()
        services.store.close()
    if getattr(args, "json", False):
        print(json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False, indent=2))
    else:
        SHOW[args.command](result, args)


def _collection(args: argparse.Namespace) -> str | None:
    return getattr(args, "collection", None)


# The calls: what each command asks of tools/, with progress on stderr.
async def _ingest(args: argparse.Namespace, services: Services) -> ingest.IngestResult:
    """A progress bar on a terminal; elsewhere (a log file, a CI job) a progress line now and then."""
    options = {"collection": _collection(args), "prune": args.prune, "exclude": args.exclude, "dry_run": args.dry_run}
    if not stderr.is_terminal:
        logging.getLogger(progress_log.log.name).setLevel(logging.INFO)
        return await ingest.ingest_documents(services, args.paths, **options)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("ingesting", total=None)

        async def progress(done: float, total: float | None, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message)

        return await ingest.ingest_documents(services, args.paths, progress=progress, **options)


async def _ingest_text(args: argparse.Namespace, services: Services) -> ingest.IngestResult:
    text = await anyio.to_thread.run_sync(_read_text, args.file)
    try:
        meta = json.loads(args.metadata) if args.metadata else None
    except json.JSONDecodeError as exc:
        raise UserError(f"--metadata is not valid JSON: {exc}") from None
    return await ingest.ingest_text(services, text, args.name, title=args.title, collection=_collection(args), metadata=meta)


async def _ingest_url(args: argparse.Namespace, services: Services) -> ingest.IngestResult:
    return await ingest.ingest_url(services, args.urls, collection=_collection(args))


async def _search(args: argparse.Namespace, services: Services) -> search.SearchResponse:
    return await search.search_milvus_docs(
        services,
        args.query,
        top_k=args.top_k,
        source=args.source,
        collection=_collection(args),
        mode=args.mode,
        where=_where(args),
    )


async def _ask(args: argparse.Namespace, services: Services) -> answer.AnswerResult:
    with stderr.status("retrieving…") as status:

        async def progress(done: float, total: float | None, message: str) -> None:
            status.update(escape(message))

        return await answer.answer_with_qwen(
            services,
            args.question,
            top_k=args.top_k,
            model=args.model,
            enable_thinking=args.think,
            thinking_budget=args.budget,
            include_reasoning=args.reasoning,
            source=args.source,
            collection=_collection(args),
            progress=progress,
            where=_where(args),
        )


async def _research(args: argparse.Namespace, services: Services) -> research.ResearchResult:
    named = args.collections
    collections = None if named is None else "*" if named.strip() == "*" else [n.strip() for n in named.split(",") if n.strip()]
    if collections is None and _collection(args):
        collections = [str(_collection(args))]
    with stderr.status("planning…") as status:

        async def progress(done: float, total: float | None, message: str) -> None:
            status.update(escape(message))

        async def step(message: str) -> None:
            stderr.print(f"[dim]{escape(message)}[/dim]", highlight=False)

        return await research.research_with_qwen(
            services,
            args.question,
            collections=collections,
            source=args.source,
            max_rounds=args.rounds,
            max_sub_questions=args.sub_questions,
            top_k=args.top_k,
            model=args.model,
            enable_thinking=args.think,
            thinking_budget=args.budget,
            include_reasoning=args.reasoning,
            progress=progress,
            on_step=step,
            where=_where(args),
        )


async def _info(args: argparse.Namespace, services: Services) -> manage.CollectionReport:
    return await manage.describe_collection(
        services, collection=_collection(args), source=args.source, limit=args.limit, where=_where(args)
    )


async def _outline(args: argparse.Namespace, services: Services) -> outline.OutlineResult:
    return await outline.get_document_outline(services, args.source, collection=_collection(args), depth=args.depth)


async def _delete(args: argparse.Namespace, services: Services) -> manage.DeleteResult:
    return await manage.delete_documents(
        services, args.sources, collection=_collection(args), dry_run=args.dry_run, where=_where(args)
    )


async def _drop(args: argparse.Namespace, services: Services) -> manage.DropResult:
    return await manage.drop_collection(services, args.name)


# What people see: tables that fit the terminal, the tools' messages in the CLI's words.
def _show_ingest(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, ingest.IngestResult)
    console.print(escape(for_people(result.summary)), highlight=False)
    for planned in result.documents:
        if planned.action not in ("unchanged", "skip", "navigation", "keep"):  # those are counted, or listed as skipped
            console.print(f"  would {planned.action} {escape(planned.source)} ({planned.chunks} chunks)", highlight=False)
    for skipped in result.skipped:
        console.print(f"  [yellow]skipped[/yellow] {escape(skipped.path)}: {escape(skipped.reason)}", highlight=False)
    unlisted = sum(result.skipped_by_reason.values()) - len(result.skipped)
    if unlisted > 0:
        console.print(f"  and {unlisted} more skipped files", highlight=False)


def _show_search(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, search.SearchResponse)
    if not result.results:
        console.print("no results", highlight=False)
    else:
        width = console.width
        longest = max(len(hit.citation) for hit in result.results)
        table = Table(title=f"{result.mode} search: {escape(args.query)}", title_justify="left", show_lines=True, expand=True)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column(result.scores, justify="right", no_wrap=True)
        table.add_column("source", overflow="fold", width=min(longest, width // 4))
        table.add_column("section", ratio=1)
        table.add_column("text", ratio=3)
        for hit in result.results:
            text = _snippet(_without_headings(hit.text, hit.headings), width=max(120, 3 * width))
            table.add_row(str(hit.rank), f"{hit.score:.3f}", escape(hit.citation), escape(hit.heading), escape(text))
        console.print(table)
    if result.note:
        console.print(f"[yellow]note:[/yellow] {escape(for_people(result.note))}", highlight=False)


def _show_ask(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, answer.AnswerResult)
    if result.reasoning:
        console.print(f"[dim]{escape(result.reasoning)}[/dim]\n", highlight=False)
    console.print(Markdown(result.answer))
    for source in result.sources:
        console.print(
            f"  \\[{source.n}] {escape(source.citation)} § {escape(source.heading)}  ({source.score:.3f})", highlight=False
        )
    if result.search_query:
        console.print(f"[dim]searched for: {escape(result.search_query)}[/dim]", highlight=False)
    if result.note:
        console.print(f"[yellow]note:[/yellow] {escape(for_people(result.note))}", highlight=False)
    if result.finish_reason == "length":
        console.print("[yellow]note:[/yellow] the answer was cut short at LLM_MAX_TOKENS", highlight=False)
    timings = result.timings_ms
    console.print(
        f"[dim]{escape(result.model)} · retrieval {timings.retrieval:.0f} ms · first token {timings.first_token or 0:.0f} ms"
        f" · total {timings.total:.0f} ms · usage {escape(_usage(result.usage))}[/dim]",
        highlight=False,
    )


def _show_research(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, research.ResearchResult)
    if result.reasoning:
        console.print(f"[dim]{escape(result.reasoning)}[/dim]\n", highlight=False)
    console.print(Markdown(result.report))
    for source in result.sources:
        mark = "" if source.cited else "  [dim](not cited)[/dim]"
        console.print(f"  \\[{source.n}] {escape(source.citation)} § {escape(source.heading)}{mark}", highlight=False)
    console.print("[dim]sub-questions:[/dim]", highlight=False)
    for question in result.sub_questions:
        console.print(f"[dim]  - {escape(question)}[/dim]", highlight=False)
    for number, done in enumerate(result.rounds, start=1):
        console.print(
            f"[dim]round {number}: {research.plural(len(done.queries), 'query')}, "
            f"{research.plural(done.found, 'passage')} found, {done.new} new, "
            f"{done.kept} kept[/dim]",
            highlight=False,
        )
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(for_people(note))}", highlight=False)
    if result.finish_reason == "length":
        console.print("[yellow]note:[/yellow] the report was cut short at its token limit", highlight=False)
    steps = ", ".join(
        f"{step} {ms:.0f} ms"
        for step, ms in result.timings_ms.model_dump().items()
        if ms is not None and step not in ("first_token", "total")
    )
    console.print(
        f"[dim]{escape(result.model)} · {result.model_calls} model calls · {steps} · total {result.timings_ms.total:.0f} ms"
        f" · tokens {escape(_usage(result.usage.get('total')))}[/dim]",
        highlight=False,
    )


def _show_info(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, manage.CollectionReport)
    report = result.model_dump(mode="json")  # the fields this version reports, as --json shows them
    name = escape(report["collection"])
    collections = ", ".join(report.get("collections") or []) or "none"
    if report.get("exists") is False:
        console.print(f"[bold]{name}[/bold] does not exist yet: run `{PROG} ingest PATH` first", highlight=False)
        console.print(f"collections: {escape(collections)}", highlight=False)
        return
    kind = "hybrid" if report.get("hybrid") else "dense only"
    console.print(
        f"[bold]{name}[/bold]: {report['chunks']} chunks from {report['sources']} sources, "
        f"embedder {escape(str(report.get('embedder')))} ({report.get('dim')} dims), {kind}, "
        f"index {escape(str(report.get('index')))}",
        highlight=False,
    )
    languages = report.get("languages") or {}
    if languages:
        shares = ", ".join(f"{escape(language.label(str(code)))} {share:.0%}" for code, share in languages.items())
        console.print(f"languages: {shares}", highlight=False)
    listed = report.get("listed") or []
    roots = {item.get("root", "") for item in listed}
    table = Table(title_justify="left")
    table.add_column("source", overflow="fold")
    if len(roots) > 1:  # the same name may live under several roots: say which
        table.add_column("root", overflow="fold")
    table.add_column("chunks", justify="right", no_wrap=True)
    for item in listed:
        cells = [escape(item["source"]), *([escape(item.get("root") or "(text)")] if len(roots) > 1 else []), str(item["chunks"])]
        table.add_row(*cells)
    if listed:
        console.print(table)
    if len(listed) < report["sources"]:
        console.print(f"{len(listed)} of {report['sources']} sources listed (--source GLOB, --limit N)", highlight=False)
    if report.get("matching_chunks") is not None:
        console.print(f"{report['matching_chunks']} chunks pass the filters", highlight=False)
    if report.get("note"):
        console.print(f"[yellow]note:[/yellow] {escape(for_people(report['note']))}", highlight=False)
    console.print(f"collections: {escape(collections)}", highlight=False)
    engine = report.get("engine")
    if engine:
        how = "started by this process" if engine["started_here"] else "joined (another process started it)"
        shared = "" if engine.get("processes") is None else f"; processes sharing it: {engine['processes']}"
        console.print(f"Milvus Lite engine pid {engine['pid']}: {how}{shared}", highlight=False)


def _show_outline(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, outline.OutlineResult)
    console.print(escape(for_people(render.outline(result))), highlight=False)


def _show_delete(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, manage.DeleteResult)
    verb = "would remove" if result.dry_run else "removed"
    console.print(
        f"{verb} {result.chunks_removed} chunks of {len(result.sources_removed)} sources from {escape(result.collection)}:",
        highlight=False,
    )
    for source in result.sources_removed:
        console.print(f"  {escape(source)}", highlight=False)
    if result.dry_run:
        console.print("nothing was removed (--dry-run)", highlight=False)


def _show_drop(result: BaseModel, args: argparse.Namespace) -> None:
    assert isinstance(result, manage.DropResult)
    left = ", ".join(result.collections) or "none"
    console.print(f"dropped {escape(result.collection)} ({result.chunks_removed} chunks); collections left: {escape(left)}")


SHOW: dict[str, Callable[[BaseModel, argparse.Namespace], None]] = {
    "ingest": _show_ingest,
    "ingest-text": _show_ingest,
    "ingest-url": _show_ingest,
    "search": _show_search,
    "ask": _show_ask,
    "research": _show_research,
    "info": _show_info,
    "outline": _show_outline,
    "delete": _show_delete,
    "drop": _show_drop,
}


def _read_text(file: str) -> str:
    try:
        return sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {file}: {exc}") from None


def _without_headings(text: str, headings: list[str]) -> str:
    """The chunk's text without its leading Markdown heading lines, which the section column already shows."""
    lines = text.splitlines()
    while lines and (not lines[0].strip() or (lines[0].startswith("#") and lines[0].strip("# ") in headings)):
        lines.pop(0)
    return "\n".join(lines) or text


def _snippet(text: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _usage(usage: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (usage or {}).items()) or "n/a"


if __name__ == "__main__":
    main()
