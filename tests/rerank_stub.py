"""A real HTTP server on loopback that stands where rerank services stand, as strict as their documentation:

- DashScope `qwen3-rerank`: `POST /compatible-api/v1/reranks`, flat `model`, `query`, `documents`, `top_n`
  (and optional `instruct`, `return_documents`); `results[].index/relevance_score`, `id`, `usage`.
- DashScope `gte-rerank-v2`: `POST /api/v1/services/rerank/text-rerank/text-rerank`, `input.query`,
  `input.documents`, `parameters.top_n/return_documents`; `output.results`, `usage`, `request_id`; errors as
  `{"code", "message", "request_id"}`.
- the common `/v1/rerank` of vLLM and llama.cpp (Jina's shape: `documents` in, `results[]` out).

At most 500 documents per request, a Bearer key, known models. Relevance is deterministic: the share of the
query's words (3 letters or more, any script's characters counted one by one for CJK) found in the passage.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.dashscope_stub import serve_on_loopback

MAX_DOCUMENTS = 500
COMPATIBLE = "/compatible-api/v1/reranks"
NATIVE = "/api/v1/services/rerank/text-rerank/text-rerank"
GENERIC = "/v1/rerank"
MODELS = {COMPATIBLE: {"qwen3-rerank"}, NATIVE: {"gte-rerank-v2", "qwen3-rerank"}, GENERIC: {"bge-reranker-v2-m3"}}
_WORD = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]{3,}")


@dataclass
class RerankStub:
    api_key: str
    base: str = ""  # http://127.0.0.1:PORT
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def relevance(query: str, passage: str) -> float:
    words = {w.lower() for w in _WORD.findall(query)}
    found = {w.lower() for w in _WORD.findall(passage)}
    return round(len(words & found) / len(words), 6) if words else 0.0


@contextmanager
def run_rerank_stub(api_key: str = "sk-rerank-test") -> Iterator[RerankStub]:
    stub = RerankStub(api_key)
    with serve_on_loopback(_handler(stub)) as port:
        stub.base = f"http://127.0.0.1:{port}"
        yield stub


def _handler(stub: RerankStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            except json.JSONDecodeError:
                return self._error(path, 400, "The request body is not valid JSON.")
            with stub.lock:
                stub.requests.append({"path": path, **body})
                fault = stub.fail_next.pop(0) if stub.fail_next else None
            if path not in MODELS:
                return self._error(path, 404, f"Path {path} not found.")
            if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                return self._error(path, 401, "Invalid API-key provided.")
            if fault:
                return self._error(path, fault, "Injected fault.")
            if path == NATIVE:
                parameters = body.get("parameters") or {}
                query, documents, top_n = (
                    body.get("input", {}).get("query"),
                    body.get("input", {}).get("documents"),
                    parameters.get("top_n"),
                )
            else:
                query, top_n = body.get("query"), body.get("top_n")
                documents = body.get("documents")
            problem = self._check(path, body, query, documents, top_n)
            if problem:
                return self._error(path, 400, problem)
            scores = sorted(((relevance(query, d), i) for i, d in enumerate(documents)), key=lambda s: (-s[0], s[1]))
            results = [{"index": i, "relevance_score": s} for s, i in scores[: top_n or len(documents)]]
            usage = {"total_tokens": sum(len(d) // 4 for d in documents) + len(query) // 4}
            if path == NATIVE:
                return self._send(200, {"output": {"results": results}, "usage": usage, "request_id": str(uuid.uuid4())})
            return self._send(
                200, {"object": "list", "results": results, "model": body["model"], "id": str(uuid.uuid4()), "usage": usage}
            )

        def _check(self, path: str, body: dict[str, Any], query: Any, documents: Any, top_n: Any) -> str | None:
            if body.get("model") not in MODELS[path]:
                return f"Model {body.get('model')!r} is not supported here."
            if not isinstance(query, str) or not query.strip():
                return "query must be a non-empty string."
            if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
                return "documents must be a non-empty list of strings."
            if len(documents) > MAX_DOCUMENTS:
                return f"At most {MAX_DOCUMENTS} documents per request."
            if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
                return "top_n must be a positive integer."
            allowed = {"model", "query", "documents", "top_n", "instruct", "return_documents"}
            allowed = {"model", "input", "parameters"} if path == NATIVE else allowed
            if set(body) - allowed:
                return f"Unknown fields: {sorted(set(body) - allowed)}"
            return None

        def _error(self, path: str, status: int, message: str) -> None:
            if path == NATIVE:
                code = {401: "InvalidApiKey", 404: "NotFound"}.get(status, "InvalidParameter")
                return self._send(status, {"code": code, "message": message, "request_id": str(uuid.uuid4())})
            return self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": str(status)}})

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
