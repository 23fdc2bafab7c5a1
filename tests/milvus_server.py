"""Real Milvus servers for tests and benchmarks, reachable on loopback only.

`serve_milvus_standalone()`: Milvus 2.3 standalone (PyPI package `milvus`, in its own venv at
`.cache/milvus-server-venv`). It listens on every interface, so it runs in a fresh network namespace that
has nothing but loopback (and in its own PID namespace with its own /proc, so that nothing outlives it and
Milvus finds its own memory use: with the host's /proc it cannot load flushed segments). A relay inside the
namespace accepts connections on a socket that the test process bound to 127.0.0.1 in the host's namespace
and forwards them to Milvus on the namespace's own 127.0.0.1: the host sees only that one loopback socket.

Milvus Lite's engine served over gRPC is `tests.milvus_lite_server.serve_milvus_lite`.

`python tests/milvus_server.py` serves the standalone in the foreground and prints its URI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDALONE_VERSION = "2.3.5"  # the newest `milvus` on PyPI; it bundles Milvus v2.3.5 and runs on Python 3.11
STANDALONE_VENV = REPO / ".cache" / "milvus-server-venv"
STANDALONE_INSTALL = f"python3 -m venv {STANDALONE_VENV} && {STANDALONE_VENV}/bin/pip install milvus=={STANDALONE_VERSION}"
_BIN_CACHE = STANDALONE_VENV / "milvus-bin"  # the package's binaries, unpacked once (about 8 s, 250 MB)


class MilvusServerError(RuntimeError):
    """A Milvus server could not be started (something missing, or it failed to come up)."""


@contextmanager
def serve_milvus_standalone(timeout_s: float = 120) -> Iterator[str]:
    """Start Milvus standalone in a loopback-only network namespace; yield its URI once it answers."""
    python = STANDALONE_VENV / "bin" / "python"
    if not python.exists():
        raise MilvusServerError(f"Milvus standalone is not installed; install it with: {STANDALONE_INSTALL}")
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        raise MilvusServerError(
            "Milvus standalone runs in its own network namespace: it needs `unshare` (util-linux) and `ip` (iproute2)"
        )
    user_ns = [] if os.geteuid() == 0 else ["--map-root-user"]  # unprivileged: needs user namespaces
    data = Path(tempfile.mkdtemp(prefix="milvus-standalone-"))
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
    log = data / "relay.log"
    with open(log, "wb") as out:
        # stdin is the lifeline: when it closes (we are done, or died), the namespace's init stops Milvus.
        process = subprocess.Popen(
            [
                unshare,
                *user_ns,
                "--net",
                "--pid",
                "--mount-proc",
                "--kill-child",
                str(python),
                __file__,
                "_namespace",
                str(data),
                str(listener.fileno()),
            ],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    listener.close()
    try:
        _wait_ready(uri, process, timeout_s, [log, data / "logs" / "milvus-stderr.log"])
        yield uri
    finally:
        _stop(process, 30)
        shutil.rmtree(data, ignore_errors=True)


def _wait_ready(uri: str, process: subprocess.Popen[bytes], timeout_s: float, logs: list[Path]) -> None:
    """Return once a client can list collections at `uri`; fail clearly if the server exits or hangs."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise MilvusServerError(f"the Milvus server for {uri} exited with code {process.returncode}{_tails(logs)}")
        try:
            client = MilvusClient(uri=uri, timeout=2)
            try:
                client.list_collections()
                return
            finally:
                client.close()
        except MilvusException:
            if time.monotonic() > deadline:
                _stop(process, 5)
                raise MilvusServerError(f"Milvus did not answer at {uri} within {timeout_s:g} s{_tails(logs)}") from None
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.stdin is not None:
        process.stdin.close()
    else:
        process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tails(logs: list[Path]) -> str:
    text = ""
    for log in logs:
        if log.exists():
            text += f"\n--- {log} (end) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    return text


# Inside the namespace (run by the standalone venv's Python, so standard library and `milvus` only).


def _namespace_main(data: Path, listen_fd: int) -> None:
    """Bring loopback up, run Milvus, relay the inherited host socket to it until stdin closes."""
    import fcntl

    from milvus import MilvusServer, MilvusServerConfig, _initialize_data_files

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    _BIN_CACHE.mkdir(exist_ok=True)
    with open(_BIN_CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one unpacking at a time
        _initialize_data_files(str(_BIN_CACHE))
    (data / "bin").symlink_to(_BIN_CACHE / "bin")  # up to date, so start() skips unpacking
    server = MilvusServer(MilvusServerConfig(data_dir=str(data)), wait_for_started=False)
    server.start()
    listener = socket.socket(fileno=listen_fd)
    threading.Thread(target=_relay, args=(listener, server.listen_port), daemon=True).start()
    stdin_closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), stdin_closed.set()), daemon=True).start()
    try:
        while not stdin_closed.wait(0.5):
            if server.server_proc is None or server.server_proc.poll() is not None:
                raise SystemExit("Milvus exited")  # its logs stay, for the error message
    finally:
        listener.close()
        server.stop()
    shutil.rmtree(data, ignore_errors=True)  # done here too, in case the test process is gone


def _relay(listener: socket.socket, port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_connect, args=(client, port), daemon=True).start()


def _connect(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port))
    except OSError:
        client.close()
        return
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _serve_forever() -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    import signal

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        with serve_milvus_standalone() as uri:
            print(uri, flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    if sys.argv[1] == "_namespace":
        _namespace_main(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        _serve_forever()
