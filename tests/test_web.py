"""ingest_url against a real HTTP server on loopback (http.server in a thread): pages by content type, conditional
re-fetches, and the hostile cases: loopback refused by default, file: URLs, a redirect loop, a stalling server, a
page over the size limit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import memory_session, payload, run_cli, server_env
from tools.ingest import ingest_url
from tools.search import search_milvus_docs
from tools.services import Services

PAGE = b"""<html><head><title>Release notes</title></head><body><nav>Menu</nav><main>
<h1>Release 2.5</h1><p>The sparse index now builds twice as fast on sealed segments.</p></main></body></html>"""
ETAG = '"v1"'


class Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str | None]]] = []  # (path, If-None-Match) of every request
    release = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        Handler.requests.append((self.path, self.headers.get("If-None-Match")))
        if self.path == "/notes":
            if self.headers.get("If-None-Match") == ETAG:
                self.send_response(304)
                self.end_headers()
                return
            self._send(PAGE, "text/html; charset=utf-8", ETag=ETAG)
        elif self.path == "/faq.csv":
            self._send(b"Question,Answer\nWhat is new?,A faster sparse index\n", "text/csv")
        elif self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", f"/loop{len(self.path)}")
            self.end_headers()
        elif self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/notes")
            self.end_headers()
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body><p>half")
            self.wfile.flush()
            Handler.release.wait(30)
        elif self.path == "/big":
            self._send(b"<p>" + b"x" * (2 * 2**20) + b"</p>", "text/html")
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    Handler.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def web(services: Services) -> Services:
    return replace(services, allow_private_urls=True, fetch_timeout_s=2.0, max_file_bytes=2**20)


@pytest.mark.anyio
async def test_a_page_is_stored_under_its_url_and_not_fetched_again_when_unchanged(site: str, web: Services) -> None:
    first = await ingest_url(web, [f"{site}/notes", f"{site}/faq.csv"])
    assert (first.files, first.skipped) == (2, [])
    hits = (await search_milvus_docs(web, "Which index builds faster?", top_k=3, source=f"{site}/*")).results
    assert {h.source for h in hits} == {f"{site}/notes", f"{site}/faq.csv"}
    notes = next(h for h in hits if h.source.endswith("/notes"))
    assert notes.heading == "Release 2.5" and "Menu" not in notes.text
    assert next(h for h in hits if h.source.endswith("/faq.csv")).citation == f"{site}/faq.csv row 2"

    Handler.requests.clear()
    again = await ingest_url(web, [f"{site}/notes"])
    assert Handler.requests == [("/notes", ETAG)]  # asked conditionally, answered 304
    assert (again.files, again.chunks_added, again.chunks_removed, again.chunks_unchanged) == (1, 0, 0, first.chunks_added - 1)


@pytest.mark.anyio
async def test_hostile_urls_are_skipped_with_their_reasons(site: str, web: Services) -> None:
    started = time.perf_counter()
    result = await ingest_url(web, [f"{site}/loop", f"{site}/stall", f"{site}/big", "file:///etc/passwd", f"{site}/gone"])
    assert time.perf_counter() - started < 10  # the stall costs FETCH_TIMEOUT (2 s here), no more
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in result.skipped}
    assert reasons == {
        "loop": "more than 5 redirects (a redirect loop?)",
        "stall": "no whole answer within 2 s (FETCH_TIMEOUT)",
        "big": "larger than the 1 MB limit (MAX_FILE_MB)",
        "passwd": "only http:// and https:// URLs are fetched, not file:",
        "gone": "HTTP 404 Not Found",
    }
    assert result.files == 0


@pytest.mark.anyio
async def test_loopback_is_refused_by_default_also_by_name_and_after_a_redirect(site: str, services: Services) -> None:
    port = site.rsplit(":", 1)[1]
    result = await ingest_url(services, [f"{site}/notes", f"http://localhost:{port}/moved"])
    reasons = [s.reason for s in result.skipped]
    assert reasons[0] == (
        "127.0.0.1 resolves to 127.0.0.1, a loopback address: refused (set URL_ALLOW_PRIVATE=true to fetch from such hosts)"
    )
    assert reasons[1].startswith("localhost resolves to ") and "a loopback address: refused" in reasons[1]
    assert result.files == 0


@pytest.mark.anyio
async def test_over_mcp_and_hidden_when_read_only(site: str, tmp_path: Path, docs: Path) -> None:
    env = server_env(tmp_path / "web.db", docs, URL_ALLOW_PRIVATE="true")
    async with memory_session(env) as session:
        stored = payload(await session.call_tool("ingest_url", {"urls": [f"{site}/moved"]}))
        assert stored["files"] == 1 and stored["skipped"] == []
        found = payload(await session.call_tool("search_milvus_docs", {"query": "sparse index build speed", "top_k": 1}))
        assert found["results"][0]["source"] == f"{site}/moved"  # stored under the URL asked for
    async with memory_session({**env, "READ_ONLY": "true"}) as session:
        assert "ingest_url" not in {t.name for t in (await session.list_tools()).tools}


def test_the_cli_ingests_a_url_and_refuses_loopback_by_default(site: str, tmp_path: Path, docs: Path) -> None:
    env = server_env(tmp_path / "cli.db", docs)
    refused = run_cli(env, "ingest-url", f"{site}/notes")
    assert refused.returncode == 0 and "a loopback address: refused" in refused.stdout, refused.stderr
    stored = run_cli({**env, "URL_ALLOW_PRIVATE": "true"}, "ingest-url", f"{site}/notes", "--json")
    assert stored.returncode == 0, stored.stderr
    assert json.loads(stored.stdout)["files"] == 1
