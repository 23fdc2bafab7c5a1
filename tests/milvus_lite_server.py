"""Milvus Lite's engine served over gRPC on loopback: a real Milvus server for the `MILVUS_URI=http://...` path.

`python tests/milvus_lite_server.py DB_FILE PORT` serves in the foreground.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def serve(db_file: str, port: int) -> None:
    """Serve `db_file` on 127.0.0.1:`port` until killed (with its process group)."""
    from milvus_lite.server import Server

    server = Server(db_file, address=f"127.0.0.1:{port}")
    if not server.start():
        raise SystemExit(f"milvus-lite could not start on {db_file}")
    while True:
        time.sleep(3600)


@contextmanager
def serve_milvus_lite(db_file: Path, port: int | None = None, timeout_s: float = 30) -> Iterator[str]:
    """Start the server in a subprocess and yield its URI once it accepts connections; stop it afterwards."""
    port = port or free_port()
    # Its own process group, so that stopping it also stops the milvus binary it starts.
    process = subprocess.Popen([sys.executable, __file__, str(db_file), str(port)], start_new_session=True)
    try:
        wait_for_port(port, process, timeout_s)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listened on port {port} within {timeout_s:g} s") from None
            time.sleep(0.1)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
