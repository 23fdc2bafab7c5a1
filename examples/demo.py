"""The tutorial, over MCP: ingest the Milvus FAQ, search the tutorial's question, answer it with Qwen.

Runs the real server (`python -m server`) as a stdio subprocess, exactly as an MCP client would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent
QUESTION = "How is data stored in milvus?"
PASSED_ON = ("MILVUS_URI", "MILVUS_TOKEN", "DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", "QWEN_MODEL", "LLM_DIALECT")


def _text(result) -> dict:
    """The structured content of a tool result (every field), or exit with the error the server gave."""
    if result.is_error:
        sys.exit(f"error: {result.content[0].text}")
    return result.structured_content


async def main() -> None:
    env = {"INGEST_ROOTS": str(REPO)} | {k: os.environ[k] for k in PASSED_ON if os.environ.get(k)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=REPO)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = [t.name for t in (await session.list_tools()).tools]
        print(f"server tools: {', '.join(tools)}")

        async def show(done: float, total: float | None, message: str | None) -> None:
            print(f"  ingest: {message}", file=sys.stderr)

        ingest = _text(
            await session.call_tool("ingest_documents", {"paths": ["data/milvus_docs/en/faq"]}, progress_callback=show)
        )
        print(f"{ingest['summary']} ({ingest['seconds']:.2f} s)")

        print(f"\nsearch: {QUESTION}")
        found = await session.call_tool("search_milvus_docs", {"query": QUESTION, "top_k": 3})
        for hit in _text(found)["results"]:
            print(f"  {hit['rank']}. {hit['score']:.4f}  {hit['citation']}  § {hit['heading']}")
        print("\nwhat a model reads (the tool's text content):\n")
        print(found.content[0].text)

        if "answer_with_qwen" not in tools:
            return
        if not os.environ.get("DASHSCOPE_API_KEY"):
            print(
                "\nanswer_with_qwen: set DASHSCOPE_API_KEY to get an answer from Qwen "
                "(https://help.aliyun.com/zh/model-studio/get-api-key), e.g.\n"
                "  DASHSCOPE_API_KEY=sk-... make demo\n"
                "Outside mainland China also set DASHSCOPE_BASE_URL=https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
            )
            return
        print(f"\nanswer_with_qwen ({os.environ.get('QWEN_MODEL', 'qwen-plus')}):")
        answer = _text(await session.call_tool("answer_with_qwen", {"question": QUESTION}))
        print(answer["answer"])
        for source in answer["sources"]:
            print(f"  [{source['n']}] {source['citation']} § {source['heading']}")


if __name__ == "__main__":
    anyio.run(main)
