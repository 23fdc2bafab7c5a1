"""Many processes on one Milvus Lite file (issue #13), measured in one run:

- search latency from the process that started the shared engine and from one that joined it (same file, same
  engine, same queries, measured in alternating blocks so that background load falls on both alike);
- SIGKILL of the process that started the engine while another searches: failed calls, first success after the
  kill, longest gap between successes;
- SIGKILL of the engine itself while two processes search (repeated): failed calls, and the time from the kill to
  each process's first successful search (one of them starts a new engine, the other joins it);
- for reference, search latency the way it was before sharing (a plain MilvusClient on the file, its own engine).

Each process is a real one using `tools.store.connection.Connection` (the store's connection) on a Lite file with
a plain collection of random vectors.

    .venv/bin/python bench/bench_sharing.py [--rows 5000] [--searches 300] [--kills 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DIM = 384
COLLECTION = "bench"


def worker(db: str) -> None:
    """Answer JSON commands on stdin, one per line, with one JSON line each."""
    import logging

    import numpy as np

    from tools.store.connection import Connection

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    connection = Connection(db)
    rng = np.random.default_rng(os.getpid())

    def search(client: Any) -> Any:
        return client.search(COLLECTION, [rng.random(DIM).tolist()], limit=3)

    def fill(client: Any, rows: int) -> None:
        client.create_collection(COLLECTION, dimension=DIM)
        for at in range(0, rows, 1000):
            data = [{"id": i, "vector": rng.random(DIM).tolist()} for i in range(at, min(at + 1000, rows))]
            client.insert(COLLECTION, data)
        client.flush(COLLECTION)

    connection.client()
    for line in sys.stdin:
        command = json.loads(line)
        reply: dict[str, Any] = {}
        if command["cmd"] == "status":
            status = connection.engine_status()
            assert status is not None
            reply = {"pid": os.getpid(), "engine": status.pid, "started_here": status.started_here}
        elif command["cmd"] == "fill":
            connection.call(fill, command["rows"])
        elif command["cmd"] == "search":
            took = []
            for _ in range(command["n"]):
                started = time.perf_counter()
                connection.call(search)
                took.append((time.perf_counter() - started) * 1000)
            reply = {"ms": took}
        elif command["cmd"] == "loop":  # search until the time is up; when each call ended, and whether it worked
            calls: list[tuple[float, bool]] = []
            end = time.time() + command["seconds"]
            while time.time() < end:
                try:
                    connection.call(search)
                    calls.append((time.time(), True))
                except Exception:
                    calls.append((time.time(), False))
                time.sleep(0.002)
            reply = {"calls": calls}
        print(json.dumps(reply), flush=True)
    connection.close()


class Worker:
    def __init__(self, db: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.pid} exited")
        return dict(json.loads(line))

    def ask(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.reply()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def engines(db: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0") if entry.isdigit() else []
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"/milvus") and argv[1] == str(db).encode():
            found.append(int(entry))
    return found


def after_kill(calls: list[list[Any]], killed: float) -> tuple[int, float, float]:
    """Failed calls after the kill, ms from the kill to the first success, and the longest gap between successes
    around it (ms)."""
    failed = sum(1 for t, ok in calls if t > killed and not ok)
    first = min(t for t, ok in calls if ok and t > killed)
    oks = [t for t, ok in calls if ok]
    gap = max(b - a for a, b in itertools.pairwise(oks) if b > killed - 1)
    return failed, (first - killed) * 1000, gap * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shared.db"
        starter = Worker(db)
        first = starter.ask(cmd="status")
        starter.ask(cmd="fill", rows=args.rows)
        sharer = Worker(db)
        second = sharer.ask(cmd="status")
        assert first["started_here"] and not second["started_here"] and first["engine"] == second["engine"]
        print(f"Milvus Lite {args.rows} x {DIM} vectors, one engine (pid {first['engine']}) shared by two processes")

        timings: dict[str, list[float]] = {"starter": [], "sharer": []}
        for w in (starter, sharer):
            w.ask(cmd="search", n=20)  # warm
        block = 50
        for _ in range(max(1, args.searches // block)):
            timings["starter"] += starter.ask(cmd="search", n=block)["ms"]
            timings["sharer"] += sharer.ask(cmd="search", n=block)["ms"]
        for name, ms in timings.items():
            print(
                f"search (limit 3) from the {name:7s}: p50 {statistics.median(ms):.2f} ms, p90 {percentile(ms, 0.9):.2f} ms,"
                f" p99 {percentile(ms, 0.99):.2f} ms (n={len(ms)})"
            )

        # SIGKILL of the process that started the engine, while the other searches
        sharer.send(cmd="loop", seconds=2.0)
        time.sleep(0.8)
        killed = time.time()
        starter.process.kill()
        starter.process.wait()
        calls = sharer.reply()["calls"]
        failed, first_ok, gap = after_kill(calls, killed)
        kept = engines(db) == [first["engine"]]
        print(
            f"SIGKILL of the starter: the sharer's searches: {failed} failed, first success {first_ok:.1f} ms after the "
            f"kill, longest gap {gap:.1f} ms; engine {'kept (same pid)' if kept else 'REPLACED'}"
        )

        # SIGKILL of the engine, while two processes search
        third = Worker(db)
        third.ask(cmd="status")
        firsts: list[float] = []
        failures = 0
        for _ in range(args.kills):
            engine = sharer.ask(cmd="status")["engine"]
            for w in (sharer, third):
                w.send(cmd="loop", seconds=2.0)
            time.sleep(0.8)
            killed = time.time()
            os.kill(engine, signal.SIGKILL)
            for w in (sharer, third):
                failed, first_ok, _ = after_kill(w.reply()["calls"], killed)
                failures += failed
                firsts.append(first_ok)
        print(
            f"SIGKILL of the engine ({args.kills} times, 2 processes searching): {failures} failed calls; first success "
            f"after the kill: median {statistics.median(firsts):.0f} ms, max {max(firsts):.0f} ms"
        )
        for w in (sharer, third):
            w.close()
        deadline = time.monotonic() + 5
        while engines(db) and time.monotonic() < deadline:
            time.sleep(0.02)
        print(f"engines left after the last process exited: {engines(db)}")
        print(f"baseline, a plain MilvusClient('{db.name}') with an engine of its own: {stock_search(db, args.searches)}")


def stock_search(db: Path, n: int) -> str:
    """Search latency as before sharing: milvus-lite's own start, the engine tied to this process."""
    import numpy as np
    from pymilvus import MilvusClient

    client = MilvusClient(str(db))
    rng = np.random.default_rng(0)
    try:
        ms = []
        for i in range(n + 20):
            started = time.perf_counter()
            client.search(COLLECTION, [rng.random(DIM).tolist()], limit=3)
            if i >= 20:  # warm
                ms.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return f"p50 {statistics.median(ms):.2f} ms, p90 {percentile(ms, 0.9):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms (n={n})"


if __name__ == "__main__":
    main()
