"""Start the real server as a stdio subprocess and talk to it with the `mcp` client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def stdio_session(
    env: dict[str, str], args: list[str] | None = None, errlog: TextIO = sys.stderr, **client: Any
) -> AsyncIterator[ClientSession]:
    """An initialized client session to `python -m server` with only `env` (plus the safe defaults).

    `client`: more ClientSession arguments, such as `logging_callback`.
    """
    params = StdioServerParameters(command=sys.executable, args=["-m", "server", *(args or [])], env=env, cwd=REPO)
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write, **client) as session:
        await session.initialize()
        yield session


def payload(result: Any) -> dict[str, Any]:
    """A tool result's structured content (every field), after checking that it also carries the compact text
    that clients reading only text (Qwen-Agent) see."""
    assert len(result.content) == 1 and result.content[0].type == "text" and result.content[0].text, result.content
    assert result.structured_content is not None, result.content[0].text
    return dict(result.structured_content)
