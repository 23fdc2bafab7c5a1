"""Who may call the streamable-HTTP transport: real server processes, raw HTTP requests on loopback.

Host must be exactly host[:port] (`127.0.0.1:PORT@evil` used to pass the SDK's prefix match), a bearer token is
required when one is set, and there is no unauthenticated bind off loopback unless asked for. Non-loopback binds
run in a network namespace of their own (`unshare -n`), so nothing is ever exposed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import REPO, START_S, server_env, until
from tests.conftest import http_server as serve_http
from tests.milvus_lite_server import free_port

pytestmark = pytest.mark.processes
TOKEN = "tok-" + "0123456789abcdef" * 2
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }
).encode()


@contextmanager
def http_server(tmp_path: Path, env: dict[str, str] | None = None, args: list[str] | None = None) -> Iterator[tuple[int, Path]]:
    """`python -m server` over streamable HTTP on 127.0.0.1; yields (port, its stderr log file)."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    with serve_http(server_env(tmp_path / f"http-{port}.db", tmp_path, **(env or {})), log, args or [], port=port):
        yield port, log


def raw(
    port: int, headers: list[tuple[str, str]], body: bytes = INITIALIZE, length: int | None = None
) -> tuple[int, dict[str, str]]:
    """POST /mcp with exactly these header lines (no Host unless given); (status, lower-cased response headers)."""
    lines = ["POST /mcp HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    lines += [f"Content-Length: {len(body) if length is None else length}", "Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1") + body)
        received = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in received and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    response_headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in head[1:]))
    return status, response_headers


def mcp_headers(host: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("Host", host), ("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream"), *extra]


def test_host_must_be_exactly_host_and_port(tmp_path: Path) -> None:
    with http_server(tmp_path) as (port, _):
        for host, status in [
            (f"127.0.0.1:{port}", 200),
            (f"localhost:{port}", 200),
            (f"[::1]:{port}", 200),
            ("127.0.0.1", 200),
            (f"127.0.0.1:{port}@evil.example", 400),  # passed the SDK's startswith("127.0.0.1:") before
            (f"localhost:{port}.evil.example", 400),
            (f"127.0.0.1:{port}/path", 400),
            (f"127.0.0.1:{port} evil.example", 400),
            ("127.0.0.1:", 400),
            ("127.0.0.1:99999", 400),
            ("[::1", 400),
            ("[::1]evil", 400),
            ("evil.example", 421),
            (f"evil.example:{port}", 421),
            (f"127.0.0.1.evil.example:{port}", 421),
        ]:
            assert raw(port, mcp_headers(host))[0] == status, host
        assert raw(port, [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")])[0] == 400
        two_hosts = [("Host", f"127.0.0.1:{port}"), *mcp_headers("evil.example")]
        assert raw(port, two_hosts)[0] == 400

        for origin, status in [
            (f"http://127.0.0.1:{port}", 200),
            (f"http://localhost:{port}", 200),
            ("http://evil.example", 403),
            (f"http://127.0.0.1:{port}@evil.example", 403),
            (f"http://127.0.0.1:{port}/path", 403),
            ("null", 403),
        ]:
            assert raw(port, mcp_headers(f"127.0.0.1:{port}", ("Origin", origin)))[0] == status, origin

        # what held before must keep holding: oversized and malformed bodies
        assert raw(port, mcp_headers(f"127.0.0.1:{port}"), body=b"{}", length=50 * 1024 * 1024)[0] == 413
        assert raw(port, mcp_headers(f"127.0.0.1:{port}"), body=b'{"jsonrpc": "2.0", "id": 1, "method":')[0] == 400


@pytest.mark.anyio
async def test_a_token_is_required_when_one_is_set(tmp_path: Path) -> None:
    with http_server(tmp_path, {"MCP_AUTH_TOKEN": TOKEN}) as (port, log):
        host = f"127.0.0.1:{port}"
        status, headers = raw(port, mcp_headers(host))
        assert status == 401 and headers["www-authenticate"] == 'Bearer realm="milvus-qwen-mcp"'
        for value in [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}", TOKEN]:
            status, headers = raw(port, mcp_headers(host, ("Authorization", value)))
            assert status == 401 and headers["www-authenticate"].startswith("Bearer realm="), value
        status, headers = raw(port, mcp_headers(host, ("Authorization", f"Bearer {TOKEN}x")))
        assert 'error="invalid_token"' in headers["www-authenticate"]
        assert raw(port, mcp_headers(host, ("Authorization", f"Bearer {TOKEN}")))[0] == 200
        assert raw(port, mcp_headers(host, ("Authorization", f"bearer {TOKEN}")))[0] == 200
        # the Host check still comes first, token or not
        assert raw(port, mcp_headers(f"{host}@evil.example", ("Authorization", f"Bearer {TOKEN}")))[0] == 400

        url = f"http://{host}/mcp"
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client,
            streamable_http_client(url, http_client=client) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert "search_milvus_docs" in {t.name for t in (await session.list_tools()).tools}
    assert TOKEN not in log.read_text()


def test_the_token_can_come_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with http_server(tmp_path, {"MCP_AUTH_TOKEN_FILE": str(token_file)}) as (port, _):
        host = f"127.0.0.1:{port}"
        assert raw(port, mcp_headers(host))[0] == 401
        assert raw(port, mcp_headers(host, ("Authorization", f"Bearer {TOKEN}")))[0] == 200


def _refused(env: dict[str, str], args: list[str], tmp_path: Path) -> str:
    """Start the HTTP server expecting it to refuse; its stderr, which must be one line."""
    full_env = {**os.environ, "MILVUS_URI": str(tmp_path / "refused.db"), **env}
    command = [sys.executable, "-m", "server", "--transport", "streamable-http", "--port", str(free_port()), *args]
    # in a network namespace of its own: if it did start, nothing outside could reach it
    done = subprocess.run(
        ["unshare", "-n", *command], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.internal"])
def test_no_unauthenticated_bind_off_loopback(tmp_path: Path, host: str) -> None:
    line = _refused({}, ["--host", host], tmp_path)
    assert f"refusing to serve on {host}" in line
    for name in ("MCP_AUTH_TOKEN", "MCP_AUTH_TOKEN_FILE", "--allow-unauthenticated"):
        assert name in line


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MCP_AUTH_TOKEN": "short"}, "at least 16 characters"),
        ({"MCP_AUTH_TOKEN": "has spaces in it, 0123456789"}, "at least 16 characters"),
        ({"MCP_AUTH_TOKEN": TOKEN, "MCP_AUTH_TOKEN_FILE": "/nonexistent"}, "not both"),
        ({"MCP_AUTH_TOKEN_FILE": "/nonexistent/token"}, "cannot be read"),
    ],
)
def test_bad_token_settings_are_refused_in_one_line(tmp_path: Path, env: dict[str, str], says: str) -> None:
    line = _refused(env, [], tmp_path)
    assert says in line
    assert env.get("MCP_AUTH_TOKEN", "\0") not in line  # the token itself is never echoed


@contextmanager
def _in_namespace(args: list[str], env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """The HTTP server with `args`, alone in a network namespace; yields its stderr log once uvicorn listens."""
    log = tmp_path / "ns.log"
    full_env = {**os.environ, "MILVUS_URI": str(tmp_path / "ns.db"), **env}
    port = str(free_port())
    script = 'ip link set lo up && exec "$@"'
    command = ["unshare", "-n", "sh", "-c", script, "sh", sys.executable, "-m", "server"]
    command += ["--transport", "streamable-http", "--port", port, *args]
    with open(log, "w") as errors:
        server = subprocess.Popen(command, cwd=REPO, env=full_env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        until(lambda: "Uvicorn running on" in log.read_text() or server.poll() is not None, START_S, "uvicorn listens")
        assert server.poll() is None, log.read_text()
        yield log
    finally:
        server.terminate()
        server.wait(10)


def test_off_loopback_with_a_token_or_when_told(tmp_path: Path) -> None:
    with _in_namespace(["--host", "0.0.0.0"], {"MCP_AUTH_TOKEN": TOKEN}, tmp_path) as log:
        assert "must send 'Authorization: Bearer <token>'" in log.read_text()
    with _in_namespace(["--host", "0.0.0.0", "--allow-unauthenticated"], {}, tmp_path) as log:
        assert "with no authentication (--allow-unauthenticated)" in log.read_text()
