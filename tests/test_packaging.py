"""The ready client config and the installed entry points."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from server.settings import Settings
from tests.conftest import REPO


def test_mcp_json_is_a_ready_config() -> None:
    config = json.loads((REPO / "mcp.json").read_text())
    server = config["mcpServers"]["milvus-docs"]
    assert server["command"] == "milvus-qwen-mcp"
    # Qwen-Agent passes only HOME, PATH, ... plus `env`: everything the server needs must be in `env`
    assert {"MILVUS_URI", "INGEST_ROOTS", "DASHSCOPE_API_KEY"} <= set(server["env"])
    fields = {name.upper() for name in Settings.model_fields}
    assert set(server["env"]) <= fields


def test_console_scripts_are_installed() -> None:
    bin_dir = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin").exists() else None
    for script in ("milvus-qwen-mcp", "milvus-qwen"):
        path = shutil.which(script, path=str(bin_dir)) if bin_dir else shutil.which(script)
        assert path, f"{script} is not installed"
        result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_read_only_mode_hides_the_write_tools() -> None:
    code = (
        "import anyio; from server.app import create_server; from server.settings import Settings;"
        "s = create_server(Settings(_cli_parse_args=['--read-only']));"
        "print(sorted(t.name for t in anyio.run(s.list_tools)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['answer_with_qwen', 'describe_collection', 'search_milvus_docs']", out.stderr
