"""Many processes, one Milvus Lite file: real stdio servers, the CLI and real engines, killed at awkward moments.

Every process here is real (`python -m server`, `python -m server.cli`, milvus-lite's engine) and so is every Lite
file. Embeddings come from a loopback stand-in (tests/embeddings_stub.py), so ingests are quick and their length
can be set. After each case the stored chunks are compared, as (id, source, content hash), with a clean ingest of
the same documents into another file; and no engine may be left once the last process is gone. Every loop and wait
is bounded in count and time.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import FAQ, REPO, payload, process_env, run_cli, stdio_session
from tests.embeddings_stub import EmbeddingsStub, run_embeddings_stub
from tests.engines import Namespace, engines, no_engine_left, until
from tests.milvus_lite_server import free_port, wait_for_port
from tools.store import Store
from tools.store.lite_engine import LiteFiles

KEY = "sk-sharing"
COLLECTION = "milvus_docs"
COPIES = 12  # of the 4 FAQ pages: 48 files, about 730 chunks, 3 ingest batches
CORPUS = "bigger"
QUESTION = "How is data stored in Milvus3?"
Row = tuple[str, str, str]


# the documents, the stand-in embedder, a clean run


@pytest.fixture(scope="module")
def stub() -> Iterator[EmbeddingsStub]:
    with run_embeddings_stub(KEY) as stub:
        stub.delay_s = 0.05  # per request of 10 texts, 4 at a time: an ingest of the corpus takes a few seconds
        yield stub


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The FAQ pages copied COPIES times, each copy's text made distinct."""
    root = tmp_path_factory.mktemp("sharing") / "root"
    for n in range(COPIES):
        target = root / CORPUS / f"copy{n}"
        target.mkdir(parents=True)
        for page in (FAQ / "en" / "faq").glob("*.md"):
            (target / page.name).write_text(page.read_text().replace("Milvus", f"Milvus{n}"))
    return root


@pytest.fixture(scope="module")
def clean(root: Path, stub: EmbeddingsStub, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., list[Row]]:
    """What one process alone stores for these paths (computed once per set of paths)."""
    done: dict[tuple[str, ...], list[Row]] = {}

    def run(*paths: str) -> list[Row]:
        if paths not in done:
            db = tmp_path_factory.mktemp("clean") / "clean.db"
            _cli(_env(db, root, stub), "ingest", *paths)
            done[paths] = _stored(db)
        return done[paths]

    return run


def _env(db: Path, root: Path, stub: EmbeddingsStub) -> dict[str, str]:
    return {
        "MILVUS_URI": str(db),
        "INGEST_ROOTS": str(root),
        **stub.settings(),
        "LOG_LEVEL": "INFO",
    }


def _base_env() -> dict[str, str]:
    return process_env({"COLUMNS": "200"})


def _cli(env: dict[str, str], *args: str, ok: bool = True, timeout: float = 120, prefix: tuple[str, ...] = ()) -> str:
    done = run_cli({"COLUMNS": "200", **env}, *args, timeout=timeout, prefix=prefix)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + done.stderr


def _stored(db: Path) -> list[Row]:
    """Every stored chunk as (id, source, content hash), sorted; a chunk stored twice would appear twice."""
    store = Store(str(db))
    try:

        def everything(client: Any) -> tuple[list[dict[str, Any]], int]:
            client.load_collection(COLLECTION)
            rows = client.query(COLLECTION, filter="", output_fields=["source", "content_hash"], limit=16384)
            count = client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"]
            return rows, count

        rows, count = store.connection.call(everything)
    finally:
        store.close()
    assert count == len(rows)
    return sorted((r["id"], r["source"], r["content_hash"]) for r in rows)


# processes and engines


def _record(db: Path) -> dict[str, Any]:
    try:
        record = json.loads(LiteFiles.of(db).record.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _serving(db: Path) -> int:
    """The one engine serving `db`, as its record and /proc agree."""
    return until(lambda: engines(db) == [_record(db).get("pid")] and _record(db)["pid"], 30, f"an engine serves {db}")


class ServerGone(Exception):
    pass


class Server:
    """`python -m server` over stdio, driven line by line from one thread, so that a test can kill it at any moment."""

    def __init__(self, env: dict[str, str], log: Path, prefix: tuple[str, ...] = ()) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "server"],
            cwd=REPO,
            env={**_base_env(), **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        self.pid = self.process.pid
        self.progress: dict[str, float] = {}
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._answers: dict[int, dict[str, Any]] = {}
        self._next_id = 0
        self._gone = False
        threading.Thread(target=self._read, daemon=True).start()
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        self.wait(self.send("initialize", init), 60)
        self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self._inbox.put(json.loads(line))
            except ValueError:
                continue
        self._inbox.put(None)

    def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ServerGone(self.pid) from exc

    def send(self, method: str, params: dict[str, Any]) -> int:
        self._next_id += 1
        self._write({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return self._next_id

    def call_later(self, tool: str, arguments: dict[str, Any], progress: str | None = None) -> int:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if progress:
            params["_meta"] = {"progressToken": progress}
        return self.send("tools/call", params)

    def pump(self, timeout: float) -> None:
        """Take in one message from the server."""
        if self._gone:
            raise ServerGone(self.pid)
        try:
            message = self._inbox.get(timeout=max(timeout, 0.001))
        except queue.Empty:
            return
        if message is None:
            self._gone = True
            raise ServerGone(self.pid)
        if "id" in message and ("result" in message or "error" in message):
            self._answers[message["id"]] = message
        elif message.get("method") == "notifications/progress":
            self.progress[str(message["params"]["progressToken"])] = message["params"]["progress"]

    def wait(self, request: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while request not in self._answers:
            if time.monotonic() > deadline:
                raise AssertionError(f"server {self.pid}: no answer to request {request} in {timeout:g} s")
            self.pump(deadline - time.monotonic())
        return self._answers.pop(request)

    def result(self, request: int, timeout: float = 120) -> dict[str, Any]:
        """The tool's structured result; an error result fails the test."""
        answer = self.wait(request, timeout)
        assert "result" in answer, answer
        text = answer["result"]["content"][0]["text"]
        assert not answer["result"].get("isError"), f"server {self.pid}: {text}"
        return dict(answer["result"]["structuredContent"])

    def call(self, tool: str, arguments: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        return self.result(self.call_later(tool, arguments), timeout)

    def kill(self, sig: int) -> None:
        self.process.send_signal(sig)
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def logged(self) -> str:
        return self.log.read_text()


class Searcher(threading.Thread):
    """Searches through one server, again and again (at most `limit` times), until stopped."""

    def __init__(self, server: Server, limit: int = 400) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.limit = limit
        self.ok: list[float] = []
        self.errors: list[str] = []
        self.gone = False
        self.halt = threading.Event()
        self.calling_since: float | None = None  # when the search now in flight was sent

    def run(self) -> None:
        for _ in range(self.limit):
            if self.halt.is_set():
                return
            try:
                self.calling_since = time.monotonic()
                self.server.call("search_milvus_docs", {"query": QUESTION, "top_k": 3}, timeout=30)
                self.calling_since = None
                self.ok.append(time.monotonic())
            except ServerGone:
                self.gone = True
                return
            except AssertionError as exc:
                self.errors.append(str(exc)[:500])
            time.sleep(0.02)

    def in_flight(self) -> bool:
        """A search is in flight, sent over 10 ms ago (its query is being embedded, 50 ms, or searched)."""
        since = self.calling_since
        return since is not None and time.monotonic() - since > 0.01

    def ok_after(self, moment: float) -> int:
        return sum(1 for t in self.ok if t > moment)

    def stop(self) -> None:
        self.halt.set()
        self.join(60)
        assert not self.is_alive()


def _start_pair(db: Path, env: dict[str, str], logs: Path) -> tuple[Server, Server]:
    """A (which starts the engine) and B (which joins it), with one page already ingested."""
    a = Server(env, logs / "a.log")
    a.call("ingest_documents", {"paths": [f"{CORPUS}/copy3/product_faq.md"]})  # the first write makes the file
    until(lambda: _record(db).get("starter") == a.pid and engines(db), 30, "A starts the engine")
    b = Server(env, logs / "b.log")
    until(lambda: "joined the Milvus Lite engine" in b.logged(), 30, "B joins the engine")
    return a, b


# the cases


@pytest.mark.slow
@pytest.mark.anyio
async def test_three_stdio_servers_an_http_server_and_the_cli_share_one_file(
    root: Path, stub: EmbeddingsStub, tmp_path: Path, clean: Any
) -> None:
    db = tmp_path / "r.db"
    env = _env(db, root, stub)

    async def cli(*args: str) -> str:
        return await anyio.to_thread.run_sync(lambda: _cli(env, *args))

    async def call(session: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await session.call_tool(tool, arguments)
        assert not result.is_error, result.content[0].text
        return payload(result)

    port = free_port()
    http = subprocess.Popen(
        [sys.executable, "-m", "server", "--transport", "streamable-http", "--port", str(port)],
        cwd=REPO,
        env={**_base_env(), **env},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "http.log").open("w"),
    )
    try:
        wait_for_port(port, http, 60)
        async with (
            stdio_session(env) as s1,
            stdio_session(env) as s2,
            stdio_session(env) as s3,
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
            ClientSession(read, write) as h,
        ):
            await h.initialize()
            added = await call(s1, "ingest_documents", {"paths": [f"{CORPUS}/copy0"]})
            assert added["chunks_added"] > 0
            query = {"query": "How is data stored in Milvus0?", "source": f"{CORPUS}/copy0/*"}
            assert (await call(s2, "search_milvus_docs", query))["results"]  # s2 reads what s1 wrote
            assert (await call(h, "search_milvus_docs", query))["results"]  # and so does the HTTP server
            await call(s3, "ingest_documents", {"paths": [f"{CORPUS}/copy1"]})
            assert "chunks added" in await cli("ingest", f"{CORPUS}/copy2")
            for copy in (1, 2):  # s1 reads what s3 and the CLI wrote
                assert (await call(s1, "search_milvus_docs", {"query": QUESTION, "source": f"{CORPUS}/copy{copy}/*"}))["results"]
            removed = await call(s2, "delete_documents", {"sources": [f"{CORPUS}/copy1/*"]})
            assert len(removed["sources_removed"]) == 4
            assert not (await call(s3, "search_milvus_docs", {"query": QUESTION, "source": f"{CORPUS}/copy1/*"}))["results"]

            # all at once: four ingests (two stdio servers, the HTTP server and the CLI) while the third searches
            searches: list[int] = []

            async def search_a_while() -> None:
                for _ in range(20):
                    searches.append(len((await call(s3, "search_milvus_docs", {"query": QUESTION}))["results"]))

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, s1, "ingest_documents", {"paths": [f"{CORPUS}/copy3"]})
                tg.start_soon(call, s2, "ingest_documents", {"paths": [f"{CORPUS}/copy4"]})
                tg.start_soon(call, h, "ingest_documents", {"paths": [f"{CORPUS}/copy6"]})
                tg.start_soon(cli, "ingest", f"{CORPUS}/copy5")
                tg.start_soon(search_a_while)
            assert len(searches) == 20 and all(n == 3 for n in searches)
            again = await call(s2, "ingest_documents", {"paths": [f"{CORPUS}/copy3"]})  # written by s1: nothing new
            assert again["chunks_added"] == 0 and again["chunks_unchanged"] > 0

            reports = [(await call(s, "describe_collection", {"limit": 1}))["engine"] for s in (s1, s2, s3, h)]
            assert len({e["pid"] for e in reports}) == 1 and reports[0]["pid"] in engines(db)
            assert sorted(e["started_here"] for e in reports) == [False, False, False, True]
            assert all(e["processes"] == 4 for e in reports)
            info = await cli("info")
            assert f"Milvus Lite engine pid {reports[0]['pid']}: joined" in info and "processes sharing it: 5" in info
    finally:
        http.terminate()
        http.wait(15)
    no_engine_left(db)
    copies = [f"{CORPUS}/copy{n}" for n in (0, 2, 3, 4, 5, 6)]
    assert _stored(db) == clean(*copies)


VICTIMS = ["starter-SIGTERM", "starter-SIGKILL", "engine-SIGKILL"]


@pytest.mark.slow
@pytest.mark.parametrize("during", ["ingest", "search"])
@pytest.mark.parametrize("victim", VICTIMS)
def test_a_death_in_the_middle_of_a_call(
    victim: str, during: str, root: Path, stub: EmbeddingsStub, tmp_path: Path, clean: Any
) -> None:
    """A starts the engine and B joins it; one of them ingests the corpus while the other searches. Mid-way, A (the
    process that started the engine) or the engine itself dies. The survivors carry on without an error; the
    ingest, run again, converges to a clean run's chunks."""
    db = tmp_path / "r.db"
    a, b = _start_pair(db, _env(db, root, stub), tmp_path)
    try:
        ingester, searcher = (a, b) if during == "ingest" else (b, a)
        engine = _serving(db)
        searches = Searcher(searcher)
        searches.start()
        until(lambda: len(searches.ok) >= 3, 30, "the searches begin")
        request = ingester.call_later("ingest_documents", {"paths": [CORPUS]}, progress="p")
        deadline = time.monotonic() + 60
        while ingester.progress.get("p", 0) < 16:  # the first batch of files is written
            assert time.monotonic() < deadline, "the ingest makes no progress"
            ingester.pump(deadline - time.monotonic())
        if during == "search":
            until(searches.in_flight, 10, "a search is in flight")
        killed_at = time.monotonic()
        if victim == "engine-SIGKILL":
            os.kill(engine, signal.SIGKILL)
        else:
            a.kill(signal.SIGTERM if victim == "starter-SIGTERM" else signal.SIGKILL)
        survivors = [s for s in (a, b) if s.process.poll() is None]

        if ingester in survivors:
            finished = ingester.result(request)
            assert finished["files"] == COPIES * 4
        if searcher in survivors:
            until(lambda: searches.ok_after(killed_at) >= 5, 60, f"searches go on after the death ({searches.errors})")
        searches.stop()
        assert searches.errors == []
        if victim == "engine-SIGKILL":
            assert "is gone; " in a.logged() + b.logged()  # one started a new engine, the other joined it
            assert _serving(db) != engine
        else:
            assert searches.gone == (searcher is a)
            assert _serving(db) == engine  # the engine outlives the process that started it

        again = survivors[0].call("ingest_documents", {"paths": [CORPUS]})
        if ingester in survivors:
            assert again["chunks_added"] == 0
        else:  # it died mid-ingest: some chunks were written, the rest come now
            assert again["chunks_added"] > 0 and again["chunks_unchanged"] > 0
        engine_now = survivors[0].call("describe_collection", {"limit": 1})["engine"]
        assert engine_now["processes"] == len(survivors)
    finally:
        for server in (a, b):
            server.close()
    no_engine_left(db)
    assert _stored(db) == clean(CORPUS)


@pytest.mark.slow
def test_a_process_killed_while_another_is_between_calls(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    a, b = _start_pair(db, _env(db, root, stub), tmp_path)
    try:
        engine = _serving(db)
        before = b.call("search_milvus_docs", {"query": QUESTION})["results"]
        assert before
        a.kill(signal.SIGKILL)  # the process that started the engine (and reaped)
        assert b.call("search_milvus_docs", {"query": QUESTION})["results"] == before
        report = b.call("describe_collection", {"limit": 1})["engine"]
        assert report == {"pid": engine, "started_here": False, "processes": 1}

        os.kill(engine, signal.SIGKILL)  # and now the engine, while B is idle
        until(lambda: engine not in engines(db), 5, "the engine dies")
        assert b.call("search_milvus_docs", {"query": QUESTION})["results"] == before
        report = b.call("describe_collection", {"limit": 1})["engine"]
        assert report["pid"] != engine and report["started_here"] is True and report["processes"] == 1
        assert "the Milvus Lite engine for" in b.logged() and "is gone; started one" in b.logged()
    finally:
        a.close()
        b.close()
    no_engine_left(db)


@pytest.mark.slow
def test_a_stale_record_left_by_a_crashed_engine(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    env = _env(db, root, stub)
    files = LiteFiles.of(db)
    a = Server(env, tmp_path / "a.log")
    try:
        a.call("ingest_documents", {"paths": [f"{CORPUS}/copy0"]})
        engine = _serving(db)
        os.kill(engine, signal.SIGKILL)  # a crash of everything: the engine and its only client
        a.kill(signal.SIGKILL)
    finally:
        a.close()
    no_engine_left(db)
    assert _record(db)["pid"] == engine and files.socket.exists()  # left behind: a record and a socket file

    # the same record, now naming a live process that is no engine (a reused pid) and a socket nobody serves
    files.record.write_text(json.dumps({"pid": os.getpid(), "socket": str(tmp_path / "nowhere.sock"), "starter": 1}))
    found = _cli(env, "search", "How is data stored in Milvus0?", "-k", "3")
    assert f"{CORPUS}/copy0" in found
    assert _record(db)["pid"] not in (engine, os.getpid())
    no_engine_left(db)


@pytest.mark.slow
def test_ingests_in_two_processes_at_once_converge(root: Path, stub: EmbeddingsStub, tmp_path: Path, clean: Any) -> None:
    db = tmp_path / "r.db"
    env = _env(db, root, stub)
    a, b = Server(env, tmp_path / "a.log"), Server(env, tmp_path / "b.log")
    try:
        first = [s.call_later("ingest_documents", {"paths": [CORPUS]}) for s in (a, b)]
        results = [s.result(r, 180) for s, r in zip((a, b), first, strict=True)]
        assert all(r["files"] == COPIES * 4 for r in results)
        assert _stored_through(a) == len(clean(CORPUS))
        again = b.call("ingest_documents", {"paths": [CORPUS]})
        assert again["chunks_added"] == 0 and again["chunks_removed"] == 0
    finally:
        a.close()
        b.close()
    no_engine_left(db)
    assert _stored(db) == clean(CORPUS)


def _stored_through(server: Server) -> int:
    report = server.call("describe_collection", {"limit": 1})
    return int(report["chunks"])


@pytest.mark.slow
def test_no_engine_outlives_its_last_process(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    env = _env(db, root, stub)
    a, b = _start_pair(db, env, tmp_path)
    try:
        engine = _serving(db)
        a.kill(signal.SIGKILL)
        assert b.call("describe_collection", {"limit": 1})["engine"]["pid"] == engine
        assert engines(db) == [engine]  # B still holds it
        b.kill(signal.SIGKILL)
        no_engine_left(db)  # kill -9 of every client: the engine goes by itself
    finally:
        a.close()
        b.close()
    c = Server(env, tmp_path / "c.log")
    _serving(db)
    c.close()  # a normal exit: the engine is gone by the time the process is
    assert engines(db) == []


CLIENT = """
import json, random, sys, time
from pathlib import Path
from tools.store.lite_engine import LiteEngine
engine = LiteEngine.for_file(Path(sys.argv[1]))
engine.acquire()
status = engine.ensure()
time.sleep(random.random() * 0.2)
print(json.dumps({"pid": status.pid, "started": status.started_here}), flush=True)
engine.release()
"""


@pytest.mark.processes
def test_processes_coming_and_going_never_make_two_engines(tmp_path: Path) -> None:
    """Waves of short-lived processes, started a little apart, so that engines keep exiting (the last lease gone)
    while new processes arrive: at most one engine on the file at any moment, and none at the end."""
    db = tmp_path / "race.db"
    peak, seen, halt = [0], set[int](), threading.Event()

    def sample() -> None:
        for _ in range(20_000):
            if halt.is_set():
                return
            running = engines(db)
            peak[0] = max(peak[0], len(running))
            seen.update(running)
            time.sleep(0.003)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outputs = []
    try:
        for _ in range(5):
            wave = []
            for _ in range(4):
                wave.append(
                    subprocess.Popen([sys.executable, "-c", CLIENT, str(db)], cwd=REPO, stdout=subprocess.PIPE, text=True)
                )
                time.sleep(random.random() * 0.1)
            for process in wave:
                out, _ = process.communicate(timeout=60)
                assert process.returncode == 0
                outputs.append(json.loads(out))
            time.sleep(random.choice([0, 0.02, 0.1]))
        no_engine_left(db)
    finally:
        halt.set()
        sampler.join(30)
    assert peak[0] == 1
    assert sum(o["started"] for o in outputs) == len({o["pid"] for o in outputs})  # each engine started once


@pytest.mark.slow
def test_a_read_only_folder(root: Path, stub: EmbeddingsStub, tmp_path: Path) -> None:
    """The lease and lock files go to /tmp/mlite-UID/ instead: searches work (two processes at once), writes are
    refused with a clear error, and nothing is written in the folder."""
    folder = tmp_path / "ro"
    db = folder / "r.db"
    env = _env(db, root, stub)
    _cli(env, "ingest", f"{CORPUS}/copy0")
    no_engine_left(db)
    listed = sorted(p.name for p in folder.iterdir())
    mount = f"mount --bind -o ro {shlex.quote(str(folder))} {shlex.quote(str(folder))}"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{mount} && touch {shlex.quote(str(folder))}/x"], capture_output=True, text=True
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only folder here (unshare -m and mount --bind): {probe.stderr.strip()[:200]}")

    cli = f"{shlex.quote(sys.executable)} -m server.cli"
    searched = shlex.quote(str(tmp_path / "search.out"))
    missing = shlex.quote(str(folder / "missing.db"))
    script = (
        f"{mount} && cd {shlex.quote(str(REPO))} && "
        f"{{ {cli} search 'How is data stored in Milvus0?' > {searched} 2>&1 & "
        f"{cli} info; echo info-rc=$?; wait $!; echo search-rc=$?; cat {searched}; "
        f"{cli} ingest {CORPUS}/copy1; echo ingest-rc=$?; "
        f"MILVUS_URI={missing} {cli} info; echo missing-rc=$?; "
        f"MILVUS_URI={missing} {cli} ingest {CORPUS}/copy1; echo missing-ingest-rc=$?; }}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], env={**_base_env(), **env}, capture_output=True, text=True, timeout=240
    )
    out = done.stdout + done.stderr
    assert "info-rc=0" in out and "search-rc=0" in out, out
    assert "Milvus Lite engine pid" in out and f"{CORPUS}/copy0" in out, out
    assert "ingest-rc=1" in out and "cannot be written" in out, out
    assert "missing-rc=0" in out and "does not exist yet" in out, out  # a read of a missing file makes nothing
    assert "missing-ingest-rc=1" in out and "does not exist, and its folder cannot be written" in out, out
    assert sorted(p.name for p in folder.iterdir()) == listed
    no_engine_left(db)


@pytest.mark.slow
def test_two_servers_and_the_cli_share_a_file_with_proc_hidden(
    root: Path, stub: EmbeddingsStub, tmp_path: Path, clean: Any
) -> None:
    """Sharing needs no /proc (as on macOS): in a mount namespace whose /proc is an empty tmpfs, two stdio servers and
    the CLI share one file, see each other's writes, count each other, and survive the engine's death."""
    try:
        space = Namespace("mount -t tmpfs -o size=1m tmpfs /proc")
    except OSError as exc:
        pytest.skip(f"cannot hide /proc in a mount namespace here (unshare -m, mount -t tmpfs): {exc}")
    db = tmp_path / "r.db"
    env = _env(db, root, stub)
    prefix = tuple(space.prefix)
    a = b = None
    try:
        assert space.run("ls", "-A", "/proc").stdout == ""  # what every process started in it sees
        a = Server(env, tmp_path / "a.log", prefix)
        a.call("ingest_documents", {"paths": [f"{CORPUS}/copy0"]})
        b = Server(env, tmp_path / "b.log", prefix)
        query = {"query": "How is data stored in Milvus0?", "source": f"{CORPUS}/copy0/*"}
        assert b.call("search_milvus_docs", query)["results"]  # B reads what A wrote
        b.call("ingest_documents", {"paths": [f"{CORPUS}/copy1"]})
        assert "chunks added" in _cli(env, "ingest", f"{CORPUS}/copy2", prefix=prefix)
        for copy in (1, 2):  # A reads what B and the CLI wrote
            assert a.call("search_milvus_docs", {"query": QUESTION, "source": f"{CORPUS}/copy{copy}/*"})["results"]
        reports = [s.call("describe_collection", {"limit": 1})["engine"] for s in (a, b)]
        assert reports[0]["pid"] == reports[1]["pid"] and engines(db) == [reports[0]["pid"]]
        assert [e["started_here"] for e in reports] == [True, False]
        assert all(e["processes"] == 2 for e in reports)
        info = _cli(env, "info", prefix=prefix)
        assert f"Milvus Lite engine pid {reports[0]['pid']}: joined" in info and "processes sharing it: 3" in info, info

        os.kill(reports[0]["pid"], signal.SIGKILL)  # the engine dies: one starts another, the other joins it
        until(lambda: reports[0]["pid"] not in engines(db), 5, "the engine dies")
        assert b.call("search_milvus_docs", query)["results"]
        assert a.call("search_milvus_docs", query)["results"]
        again = [s.call("describe_collection", {"limit": 1})["engine"] for s in (a, b)]
        assert again[0]["pid"] == again[1]["pid"] != reports[0]["pid"] and engines(db) == [again[0]["pid"]]
    finally:
        for server in (a, b):
            if server is not None:
                server.close()
        space.close()
    no_engine_left(db)
    assert _stored(db) == clean(*(f"{CORPUS}/copy{n}" for n in range(3)))
