"""Runs inside Qwen-Agent's own environment (mcp<2): drive this server through qwen_agent's MCPManager.

    python tests/qwen_agent_driver.py CONFIG_JSON  ->  prints JSON: tool names and what each call returned
"""

import json
import sys

from qwen_agent.tools.mcp_manager import MCPManager


def main() -> None:
    config = json.loads(sys.argv[1])
    manager = MCPManager()
    tools = {tool.name: tool for tool in manager.initConfig(config)}
    server = next(iter(config["mcpServers"]))
    calls = [
        ("ingest_documents", {"paths": ["milvus_docs/en"]}),
        ("search_milvus_docs", {"query": "How is data stored in milvus?"}),
        ("search_milvus_docs", {"query": "How is data stored in milvus?", "top_k": 0}),
    ]
    # What Qwen-Agent hands its model is the text each tool call returns.
    texts = [tools[f"{server}-{name}"].call(json.dumps(args)) for name, args in calls]
    schemas = {name: tool.parameters for name, tool in tools.items()}
    print(json.dumps({"tools": sorted(tools), "texts": texts, "schemas": schemas}))
    manager.shutdown()


if __name__ == "__main__":
    main()
