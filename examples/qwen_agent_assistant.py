"""A Qwen-Agent Assistant that uses this server through {"mcpServers": {...}}, with DashScope as its LLM.

Qwen-Agent runs on mcp<2, so give it its own environment:

    python3 -m venv .cache/qwen-agent && .cache/qwen-agent/bin/pip install -r tests/qwen-agent-requirements.txt
    DASHSCOPE_API_KEY=sk-... .cache/qwen-agent/bin/python examples/qwen_agent_assistant.py

Qwen-Agent starts the server with only HOME, PATH and a few others, so the server's settings go in `env`.
"""

import os
import sys
from pathlib import Path

from qwen_agent.agents import Assistant

REPO = Path(__file__).resolve().parent.parent
SERVER_PYTHON = REPO / ".venv" / "bin" / "python"  # the server's own environment (mcp 2.x), made by `make demo`


def main() -> None:
    key = os.environ.get("DASHSCOPE_API_KEY")
    if not key:
        sys.exit("Set DASHSCOPE_API_KEY (https://help.aliyun.com/zh/model-studio/get-api-key)")
    tools = [{"mcpServers": {"milvus-docs": {
        "command": str(SERVER_PYTHON),
        "args": ["-m", "server"],
        "env": {
            "MILVUS_URI": str(REPO / "milvus_demo.db"),
            "INGEST_ROOTS": str(REPO / "data"),
            "DASHSCOPE_API_KEY": key,
            "PYTHONPATH": str(REPO),
        },
    }}}]
    llm = {"model": "qwen-plus", "model_server": "dashscope", "api_key": key}
    bot = Assistant(llm=llm, function_list=tools, system_message=(
        "Answer questions about Milvus. First call milvus-docs-ingest_documents with paths "
        "['milvus_docs/en/faq'] if the search finds nothing, then milvus-docs-search_milvus_docs, and cite sources."
    ))
    messages = [{"role": "user", "content": "How is data stored in milvus?"}]
    for responses in bot.run(messages=messages):
        pass
    for message in responses:
        if message.get("content"):
            print(f"[{message['role']}] {message['content']}")


if __name__ == "__main__":
    main()
