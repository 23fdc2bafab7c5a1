"""Start the real server as a stdio subprocess and talk to it with the `mcp` client."""

from __future__ import annotations

import json
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
    """The tool result as a client that reads only text (Qwen-Agent) sees it."""
    assert len(result.content) == 1 and result.content[0].type == "text"
    return json.loads(result.content[0].text)
