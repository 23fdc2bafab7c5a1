"""MCP log messages (`notifications/message`) for what a client may want to show beside a tool's result.

Protocol versions before 2026-07-28 declare the logging capability and filter by `logging/setLevel`
(default: info and above). From 2026-07-28 (SEP-2577 deprecates the capability) the SDK sends a message
only when the request's `_meta` asked for that level.
"""

from __future__ import annotations

import warnings
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import EmptyResult, LoggingLevel, SetLevelRequestParams

from tools.answer import AnswerResult
from tools.ingest import IngestResult
from tools.research import ResearchResult
from tools.search import SearchResponse

LEVELS: tuple[LoggingLevel, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
DEFAULT_LEVEL: LoggingLevel = "info"
LOGGER = "milvus-qwen"
MAX_SKIPPED_LISTED = 20

# Deliberate use of the deprecated capability: today's desktop clients and Qwen-Agent speak earlier versions.
warnings.filterwarnings("ignore", message="The logging capability is deprecated", category=MCPDeprecationWarning)


def enable_set_level(mcp: MCPServer) -> None:
    """Serve `logging/setLevel`, which also makes the server declare the logging capability."""
    # MCPServer has no public hook for it (the SDK deprecates the capability), so register on its low-level server.
    mcp._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, _set_level)


async def _set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
    _connection_state(ctx.session)["log_level"] = params.level
    return EmptyResult()


def _connection_state(session: ServerSession) -> dict[str, Any]:
    """The per-connection scratch dict, where the level set by this client lives."""
    return session._connection.state  # ServerSession exposes no accessor for its connection


async def send(ctx: Context, level: LoggingLevel, message: str) -> None:
    """Send one log message to this tool call's client, if it wants that level."""
    wanted = _connection_state(ctx.request_context.session).get("log_level", DEFAULT_LEVEL)
    if LEVELS.index(level) >= LEVELS.index(wanted):
        await ctx.log(level, message, logger_name=LOGGER)


async def after_ingest(ctx: Context, result: IngestResult) -> None:
    await send(ctx, "info", f"{result.summary} ({result.seconds:.1f} s)")
    for skipped in result.skipped[:MAX_SKIPPED_LISTED]:
        await send(ctx, "warning", f"Skipped {skipped.path}: {skipped.reason}")
    more = sum(result.skipped_by_reason.values()) - MAX_SKIPPED_LISTED
    if more > 0:
        await send(ctx, "warning", f"... and {more} more skipped files (see the result)")


async def after_search(ctx: Context, result: SearchResponse) -> None:
    if result.note:
        await send(ctx, "warning", result.note)


async def after_answer(ctx: Context, result: AnswerResult) -> None:
    if not result.sources:
        await send(ctx, "notice", "No passage was relevant enough to answer from, so the model was not called")
        return
    cited = ", ".join(f"[{s.n}] {s.source}" for s in result.sources)
    tokens = f"; usage {result.usage}" if result.usage else ""
    await send(
        ctx,
        "info",
        f"{result.model} answered in {result.timings_ms.total / 1000:.1f} s from {len(result.sources)} passages "
        f"({cited}){tokens}",
    )


async def after_research(ctx: Context, result: ResearchResult) -> None:
    for note in result.notes:
        await send(ctx, "warning" if result.partial else "notice", note)
    cited = sum(s.cited for s in result.sources)
    total = result.usage.get("total", {}).get("total_tokens")
    await send(
        ctx,
        "info",
        f"{result.model} wrote the report in {result.timings_ms.total / 1000:.1f} s after {len(result.rounds)} rounds, "
        f"citing {cited} of {len(result.sources)} passages; {result.model_calls} model calls"
        + (f", {total} tokens" if total is not None else ""),
    )
