"""The official MCP conformance suite, in server mode, against the real server over streamable HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import FAQ, REPO
from tests.milvus_lite_server import free_port, wait_for_port

pytestmark = pytest.mark.external

BASELINE = REPO / "tests" / "conformance" / "expected-failures.yml"
# The scenarios that test this server itself rather than the suite's fixtures; each must run and pass.
APPLICABLE = {"server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection"}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m server --transport streamable-http` on a free loopback port."""
    tmp = tmp_path_factory.mktemp("conformance")
    port = free_port()
    env = {**os.environ, "MILVUS_URI": str(tmp / "conformance.db"), "INGEST_ROOTS": str(FAQ)}
    env.pop("DASHSCOPE_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "--transport", "streamable-http", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server, 60)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(10)


def test_conformance_suite_has_no_unexpected_failures(bin_dir: Path, url: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(bin_dir / "conformance"), "server", "--url", url, "--expected-failures", str(BASELINE), "-o", str(results)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout[done.stdout.rfind("=== SUMMARY ===") :]
    assert done.returncode == 0, f"{summary}\n{done.stderr[-2000:]}"

    passed: set[str] = set()
    for checks in results.glob("server-*/checks.json"):
        scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name)
        if all(check["status"] != "FAILURE" for check in json.loads(checks.read_text())):
            passed.add(scenario)
    assert passed >= APPLICABLE, summary


@pytest.mark.anyio
async def test_ingest_reports_progress_over_http(url: str) -> None:
    """What the suite's progress scenario checks on its fixture tool, on this server's own long-running tool."""
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("ingest_documents", {"paths": ["en/faq/product_faq.md"]}, progress_callback=on_progress)
    assert not result.is_error, result.content
    assert progress and progress == sorted(progress)
