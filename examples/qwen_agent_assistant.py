"""A Qwen-Agent Assistant that uses this server through {"mcpServers": {...}}, with Qwen on DashScope as its LLM.

Qwen-Agent runs on mcp<2, so it has its own environment (`make test` makes it, from
tests/qwen-agent-requirements.txt):

    DASHSCOPE_API_KEY=sk-... .cache/qwen-agent/bin/python examples/qwen_agent_assistant.py

The server runs in the project's own `.venv`. Qwen-Agent starts it with only HOME, PATH and a few others,
so the server's settings go in `env`. The FAQ is ingested through the server's tool first; then the assistant
gets the tutorial's question, searches with milvus-docs-search_milvus_docs and answers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qwen_agent.agents import Assistant

REPO = Path(__file__).resolve().parent.parent
SERVER_PYTHON = REPO / ".venv" / "bin" / "python"
QUESTION = "How is data stored in milvus?"
SYSTEM = "Answer questions about Milvus from its documents: search them with milvus-docs-search_milvus_docs, cite sources."


def build_assistant(api_key: str, milvus_uri: str) -> Assistant:
    """An Assistant whose tools are this server's; building it starts the server and lists its tools."""
    server = {
        "command": str(SERVER_PYTHON),
        "args": ["-m", "server"],
        "env": {"MILVUS_URI": milvus_uri, "INGEST_ROOTS": str(REPO / "data"), "DASHSCOPE_API_KEY": api_key},
    }
    llm = {"model": "qwen-plus", "model_server": "dashscope", "api_key": api_key}
    return Assistant(llm=llm, function_list=[{"mcpServers": {"milvus-docs": server}}], system_message=SYSTEM)


def main() -> None:
    api_key = os.environ.get("DASHSCOPE_API_KEY")
    if not api_key:
        sys.exit("Set DASHSCOPE_API_KEY to your DashScope API key.")
    bot = build_assistant(api_key, os.environ.get("MILVUS_URI", str(REPO / "milvus_demo.db")))
    print(bot.function_map["milvus-docs-ingest_documents"].call(json.dumps({"paths": ["milvus_docs/en/faq"]})))

    responses = bot.run_nonstream([{"role": "user", "content": QUESTION}])
    for message in responses:
        if call := message.get("function_call"):
            print(f"-> {call['name']}({call['arguments']})")
    print(responses[-1]["content"])


if __name__ == "__main__":
    main()
