"""`milvus-qwen`: the same tools for people at a terminal.

    milvus-qwen ingest docs/ --prune
    milvus-qwen search "How is data stored in milvus?" -k 5
    milvus-qwen ask "How is data stored in milvus?" --think --budget 512
    milvus-qwen info
    milvus-qwen delete "en/faq/*.md"
    milvus-qwen serve [--transport streamable-http]

Settings come from the environment, as for the server (MILVUS_URI, DASHSCOPE_API_KEY, ...).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import anyio
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from server.settings import Settings
from tools import answer, defaults, ingest, manage, search
from tools.errors import UserError
from tools.services import Services

console = Console()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="milvus-qwen", description="Ingest, search and ask over Milvus and Qwen 3.")
    parser.add_argument("--collection", help="collection (default: MILVUS_COLLECTION)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("ingest", help="ingest files, folders or globs")
    p.add_argument("paths", nargs="+")
    p.add_argument("--prune", action="store_true", help="remove chunks of files gone from the folders")
    p = commands.add_parser("search", help="search the documents")
    p.add_argument("query")
    p.add_argument("-k", "--top-k", type=int, default=defaults.TOP_K)
    p.add_argument("--mode", choices=search.MODES)
    p.add_argument("--source", help="only sources matching this glob")
    p = commands.add_parser("ask", help="answer a question with Qwen, citing the documents")
    p.add_argument("question")
    p.add_argument("-k", "--top-k", type=int, default=defaults.TOP_K)
    p.add_argument("--model")
    think = p.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_const", const=True, help="turn thinking on")
    think.add_argument("--no-think", dest="think", action="store_const", const=False, help="turn thinking off")
    p.add_argument("--budget", type=int, help="thinking budget in tokens")
    p.add_argument("--reasoning", action="store_true", help="print the model's reasoning too")
    p = commands.add_parser("info", help="what a collection holds")
    p.add_argument("--source", help="only list sources matching this glob")
    p.add_argument("--limit", type=int, default=manage.DEFAULT_LISTED)
    p = commands.add_parser("delete", help="remove documents by source name or glob")
    p.add_argument("sources", nargs="+")
    commands.add_parser("serve", help="run the MCP server (takes the server's flags)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from server.__main__ import main as serve

        serve(argv[1:])
        return
    args = _parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    settings = Settings.load([])  # the environment, and the .env file ENV_FILE names
    os.environ.pop("MILVUS_URI", None)  # pymilvus would parse it itself; see server/__main__.py
    services = settings.services()
    try:
        anyio.run(_run, args, services)
    except UserError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    finally:
        services.store.close()


async def _run(args: argparse.Namespace, services: Services) -> None:
    handlers = {"ingest": _ingest, "search": _search, "ask": _ask, "info": _info, "delete": _delete}
    await handlers[args.command](args, services)


async def _ingest(args: argparse.Namespace, services: Services) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("ingesting", total=None)

        async def progress(done: float, total: float | None, message: str) -> None:
            bar.update(task, completed=done, total=total, description=message)

        result = await ingest.ingest_documents(
            services, args.paths, collection=args.collection, prune=args.prune, progress=progress
        )
    console.print(
        f"{result.files} files into [bold]{result.collection}[/bold]: {result.chunks_added} chunks added, "
        f"{result.chunks_unchanged} unchanged, {result.chunks_removed} removed in {result.seconds:.1f} s"
    )
    for skipped in result.skipped:
        console.print(f"  [yellow]skipped[/yellow] {skipped.path}: {skipped.reason}")


async def _search(args: argparse.Namespace, services: Services) -> None:
    found = await search.search_milvus_docs(
        services, args.query, top_k=args.top_k, source=args.source, collection=args.collection, mode=args.mode
    )
    table = Table("#", "score", "source", "section", "text", title=f"{found.mode} search: {args.query}")
    for hit in found.results:
        table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.source, hit.heading, _snippet(hit.text))
    console.print(table)
    if found.note:
        console.print(f"[yellow]note:[/yellow] {found.note}")


async def _ask(args: argparse.Namespace, services: Services) -> None:
    with console.status("retrieving…") as status:

        async def progress(done: float, total: float | None, message: str) -> None:
            status.update(message)

        result = await answer.answer_with_qwen(
            services,
            args.question,
            top_k=args.top_k,
            model=args.model,
            enable_thinking=args.think,
            thinking_budget=args.budget,
            include_reasoning=args.reasoning,
            collection=args.collection,
            progress=progress,
        )
    if result.reasoning:
        console.print(f"[dim]{result.reasoning}[/dim]\n")
    console.print(Markdown(result.answer))
    for source in result.sources:
        console.print(f"  [{source.n}] {source.source} § {source.heading}  ({source.score:.3f})")
    timings = result.timings_ms
    console.print(
        f"[dim]{result.model} · retrieval {timings.retrieval:.0f} ms · first token {timings.first_token or 0:.0f} ms"
        f" · total {timings.total:.0f} ms · usage {_usage(result.usage)}[/dim]"
    )


async def _info(args: argparse.Namespace, services: Services) -> None:
    report = await manage.describe_collection(services, collection=args.collection, source=args.source, limit=args.limit)
    console.print(
        f"[bold]{report.collection}[/bold]: {report.chunks} chunks from {report.sources} sources, "
        f"embedder {report.embedder} ({report.dim} dims), {'hybrid' if report.hybrid else 'dense only'}"
    )
    table = Table("source", "chunks")
    for item in report.listed:
        table.add_row(item.source, str(item.chunks))
    console.print(table)
    console.print(f"collections: {', '.join(report.collections)}")
    if report.engine is not None:
        engine = report.engine
        how = "started by this process" if engine.started_here else "joined (another process started it)"
        shared = "" if engine.processes is None else f"; processes sharing it: {engine.processes}"
        console.print(f"Milvus Lite engine pid {engine.pid}: {how}{shared}")


async def _delete(args: argparse.Namespace, services: Services) -> None:
    result = await manage.delete_documents(services, args.sources, collection=args.collection)
    console.print(f"removed {result.chunks_removed} chunks of {len(result.sources_removed)} sources")


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _usage(usage: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (usage or {}).items()) or "n/a"


if __name__ == "__main__":
    main()
