"""A real HTTP server on loopback that stands where DashScope's OpenAI-compatible embeddings endpoint stands.

Strict as DashScope is for text-embedding-v4: a Bearer key, at most 10 inputs per request, `dimensions` one of
64-2048. Vectors are deterministic: hashed word counts projected to the requested size and normalised, so that
texts sharing words are close. It counts requests and the most it saw in flight at once.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import numpy as np

from tests.dashscope_stub import serve_on_loopback

DIMENSIONS = {64, 128, 256, 512, 768, 1024, 1536, 2048}
MAX_INPUTS = 10


@dataclass
class EmbeddingsStub:
    api_key: str
    base_url: str = ""
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    fail_next: list[int] = field(default_factory=list)  # statuses to answer the next requests with
    delay_s: float = 0.02
    # Serves this model's vectors instead of hashed words (bench/bench_remote_embedder.py: the same model both ways).
    model: Callable[[list[str]], list[list[float]]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settings(self, dimensions: int = 64, model: str = "stand-in") -> dict[str, str]:
        """The environment that points a server or CLI process at this stand-in."""
        return {
            "EMBEDDING_PROVIDER": "openai",
            "EMBEDDING_MODEL": model,
            "EMBEDDING_BASE_URL": self.base_url,
            "EMBEDDING_API_KEY": self.api_key,
            "EMBEDDING_DIMENSIONS": str(dimensions),
        }


def vector(text: str, dims: int) -> list[float]:
    out = np.zeros(dims)
    for word in text.lower().split():
        digest = hashlib.sha256(word.strip(".,?!:;`'\"()").encode()).digest()
        out[int.from_bytes(digest[:4], "little") % dims] += 1.0
    norm = np.linalg.norm(out)
    return (out / norm if norm else out).tolist()


@contextmanager
def run_embeddings_stub(api_key: str = "sk-embed-test") -> Iterator[EmbeddingsStub]:
    stub = EmbeddingsStub(api_key)
    with serve_on_loopback(_handler(stub)) as port:
        stub.base_url = f"http://127.0.0.1:{port}/compatible-mode/v1"
        yield stub


def _handler(stub: EmbeddingsStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/ACK stalls

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            with stub.lock:
                stub.requests += 1
                stub.in_flight += 1
                stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                fault = stub.fail_next.pop(0) if stub.fail_next else None
            try:
                time.sleep(stub.delay_s)
                self._answer(body, fault)
            finally:
                with stub.lock:
                    stub.in_flight -= 1

        def _answer(self, body: dict, fault: int | None) -> None:
            if self.path != "/compatible-mode/v1/embeddings":
                return self._error(404, "Not found")
            if self.headers.get("authorization") != f"Bearer {stub.api_key}":
                return self._error(401, "Incorrect API key provided.")
            if fault:
                return self._error(fault, "Requests rate limit exceeded, please try again later.")
            inputs = body.get("input")
            inputs = [inputs] if isinstance(inputs, str) else inputs
            dims = body.get("dimensions", 1024)
            if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS:
                return self._error(400, f"batch size is invalid, it should not be larger than {MAX_INPUTS}.")
            if stub.model is None and dims not in DIMENSIONS:
                return self._error(400, f"dimensions must be one of {sorted(DIMENSIONS)}")
            vectors = stub.model(inputs) if stub.model is not None else [vector(t, dims) for t in inputs]
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            tokens = sum(len(t.split()) for t in inputs)
            self._json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"error": {"message": message, "type": "invalid_request_error", "code": str(status)}})

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            if status == 429:
                self.send_header("retry-after-ms", "10")
            self.end_headers()
            self.wfile.write(data)

    return Handler
