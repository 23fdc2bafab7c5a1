"""Run inside the Qwen-Agent venv: reach the server through Qwen-Agent's own `MCPManager` and print, as JSON,
what Qwen-Agent hands its model: the tool schemas, and the text of an ingest, a search and an answer call.

Usage: python tests/qwen_agent_driver.py SERVER_PYTHON MILVUS_URI INGEST_ROOT
"""

from __future__ import annotations

import json
import sys

from qwen_agent.tools.mcp_manager import MCPManager

QUESTION = "How is data stored in milvus?"


def main(server_python: str, milvus_uri: str, ingest_root: str) -> None:
    config = {
        "mcpServers": {
            "milvus-docs": {
                "command": server_python,
                "args": ["-m", "server"],
                "env": {"MILVUS_URI": milvus_uri, "INGEST_ROOTS": ingest_root},
            }
        }
    }
    manager = MCPManager()
    tools = {tool.name: tool for tool in manager.initConfig(config)}
    # Qwen-Agent passes the model's arguments on as a JSON string, and hands back only the text parts.
    calls = {
        "ingest": ("milvus-docs-ingest_documents", {"paths": ["milvus_docs/en/faq/product_faq.md"]}),
        "search": ("milvus-docs-search_milvus_docs", {"query": QUESTION, "top_k": 3}),
        "answer": ("milvus-docs-answer_with_qwen", {"question": QUESTION}),
    }
    output = {
        "tools": [tool.function for tool in tools.values()],
        **{key: tools[name].call(json.dumps(args)) for key, (name, args) in calls.items()},
    }
    manager.shutdown()
    json.dump(output, sys.stdout, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:])
