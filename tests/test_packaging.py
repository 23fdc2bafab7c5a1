"""The ready client config and the installed entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from server.settings import Settings
from tests.conftest import REPO, payload

NETWORK_VARIABLES = ("SSL_CERT_", "UV_")


def test_mcp_json_is_a_ready_config() -> None:
    config = json.loads((REPO / "mcp.json").read_text())
    server = config["mcpServers"]["milvus-docs"]
    # absolute paths, since clients start servers with a bare PATH and in a folder of their choosing
    assert server["command"] == "/ABSOLUTE/PATH/TO/milvus-qwen-mcp/.venv/bin/milvus-qwen-mcp"
    assert all(server["env"][name].startswith("/ABSOLUTE/PATH/TO/") for name in ("MILVUS_URI", "INGEST_ROOTS"))
    # Qwen-Agent passes only HOME, PATH, ... plus `env`: everything the server needs must be in `env`
    assert {"MILVUS_URI", "INGEST_ROOTS", "DASHSCOPE_API_KEY"} <= set(server["env"])
    fields = {name.upper() for name in Settings.model_fields}
    assert set(server["env"]) <= fields


def test_the_readme_and_the_tools_list_the_file_types_the_readers_take() -> None:
    import anyio

    from server.app import create_server
    from tools.readers import supported_suffixes

    listed = ", ".join(f"`{s}`" for s in supported_suffixes())
    assert f"File types read (the reader registry in `tools/readers/`): {listed}." in (REPO / "README.md").read_text()
    tools = {t.name: t for t in anyio.run(create_server(Settings(_cli_parse_args=[])).list_tools)}
    assert all(s in (tools["ingest_documents"].description or "") for s in supported_suffixes())


@pytest.mark.processes
def test_console_scripts_are_installed() -> None:
    bin_dir = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin").exists() else None
    for script in ("milvus-qwen-mcp", "milvus-qwen"):
        path = shutil.which(script, path=str(bin_dir)) if bin_dir else shutil.which(script)
        assert path, f"{script} is not installed"
        result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "usage:" in result.stdout


@pytest.mark.processes
def test_read_only_mode_hides_the_write_tools() -> None:
    code = (
        "import anyio; from server.app import create_server; from server.settings import Settings;"
        "s = create_server(Settings(_cli_parse_args=['--read-only']));"
        "print(sorted(t.name for t in anyio.run(s.list_tools)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (
        out.stdout.strip()
        == "['answer_with_qwen', 'describe_collection', 'get_document_outline', 'read_context', 'research_with_qwen', "
        "'search_milvus_docs']"
    ), out.stderr


@pytest.mark.anyio
@pytest.mark.slow
async def test_uvx_from_the_source_tree_serves_over_stdio(tmp_path: Path) -> None:
    """`uvx --from . milvus-qwen-mcp`, as the README's client configs run it: its own environment, package data included."""
    uvx = Path(sys.executable).parent / "uvx"
    assert uvx.exists(), "uv is a test dependency: pip install -e '.[test]'"
    (tmp_path / "storage.md").write_text("# Storage\n\nMilvus keeps its data in object storage such as MinIO.\n")
    env = {"MILVUS_URI": str(tmp_path / "uvx.db"), "INGEST_ROOTS": str(tmp_path)}
    # uv itself reaches the package index: pass on the machine's certificates, proxies and uv settings
    env |= {k: v for k, v in os.environ.items() if k.startswith(NETWORK_VARIABLES) or k.lower().endswith("_proxy")}
    params = StdioServerParameters(command=str(uvx), args=["--from", str(REPO), "milvus-qwen-mcp"], env=env, cwd=tmp_path)
    async with stdio_client(params) as (read, write), ClientSession(read, write, read_timeout_seconds=300) as session:
        await session.initialize()
        assert (await session.call_tool("ingest_documents", {"paths": ["storage.md"]})).is_error is False
        hits = payload(await session.call_tool("search_milvus_docs", {"query": "where is data stored?"}))["results"]
        assert hits[0]["heading"] == "Storage"


@pytest.mark.processes
def test_mcp_json_left_unfilled_fails_at_start_naming_the_setting(tmp_path: Path) -> None:
    env = json.loads((REPO / "mcp.json").read_text())["mcpServers"]["milvus-docs"]["env"]
    done = subprocess.run(
        [sys.executable, "-m", "server"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "milvus-qwen-mcp: INGEST_ROOTS names /ABSOLUTE/PATH/TO/your/docs, which is not a folder here: set it to the "
        "folders ingest may read, as absolute paths\n"
    )
    assert not Path("/ABSOLUTE").exists()
