"""A real HTTP server on loopback that stands where DashScope's OpenAI-compatible endpoint stands.

It is strict where DashScope is strict (Bearer key, thinking only when streaming, a positive thinking_budget,
known models, positive token limits) and answers deterministically from the request: the answer quotes the first
numbered passage ("[1] source § heading" then its text) of the user message, so tests can check citation plumbing.
`max_completion_tokens` bounds reasoning and answer together and `max_tokens` the answer alone, as DashScope
documents them, counting a token as 4 characters; a stream stopped by one ends with finish_reason "length".
Faults for the next requests are queued with `fail_next`, `delay_next`, `cut_next`, `endless_next`,
`malformed_next` and `reasoning_only_next`; `fail_next`, `delay_next` and `cut_next` take a research `step`.

research_with_qwen's steps (a system message whose first line is `step: plan|judge|reflect|write`) get the
replies a perfect, agreeable model would give: plan the sub-questions in `research_plans` (else the question, or
its translation), judge every passage number, reflect `[]`, and write a report citing every passage; a reply
queued in `replies[step]` is sent instead, as it is.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/compatible-mode/v1"
MODELS = {"qwen-plus", "qwen-turbo", "qwen-flash", "qwen-max", "qwen3-235b-a22b", "qwen3-32b", "qwen3-8b"}
NO_ANSWER = "I could not find the answer in the provided documents."
CHARS_PER_TOKEN = 4
# An endless stream stops on its own after this long or this many bytes, so no test can hang on it.
ENDLESS_MAX_S = 60.0
ENDLESS_MAX_BYTES = 200 * 1024 * 1024
ERRORS = {
    400: ("invalid_request_error", "invalid_parameter_error"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("limit_requests", "limit_requests"),
    500: ("internal_error", "internal_error"),
    503: ("service_unavailable", "ServiceUnavailable"),
}
FAULT_MESSAGES = {
    429: "Requests rate limit exceeded, please try again later.",
    500: "An internal error has occured, please try again later or contact service support.",
    503: "The service is temporarily unavailable, please try again later.",
}


@dataclass
class Fault:
    kind: str  # "fail", "delay", "cut", "endless", "malformed" or "reasoning_only"
    status: int = 0
    seconds: float = 0.0
    after_chunks: int | None = None  # None: before the response headers
    graceful: bool = False
    retry_after_ms: int | None = None
    piece: str = ""  # endless: the text of each delta
    field: str = "content"  # endless: "content" or the reasoning field
    data: bytes = b""  # malformed: the SSE data sent in place of a chunk
    step: str | None = None  # only for a research request of this step (None: any request)


@dataclass
class Stub:
    """The running server: where it is, what it received, and the faults queued for the next requests."""

    api_key: str
    base_url: str = ""
    models: set[str] = field(default_factory=lambda: set(MODELS))
    reasoning_field: str = "reasoning_content"  # newer vLLM sends "reasoning"
    requests: list[dict[str, Any] | None] = field(default_factory=list)  # parsed JSON bodies, in order
    headers: list[dict[str, str]] = field(default_factory=list)  # the headers of each request, same order
    paths: list[str] = field(default_factory=list)  # the target (path and query) of every request, even a 404
    sent_bytes: int = 0  # SSE bytes written by the last endless stream
    faults: list[Fault] = field(default_factory=list)
    # A translator for query rewrites: a request asking to rewrite a question found here gets its translation
    # (a question not found comes back unchanged, as a model that cannot translate would answer).
    translations: dict[str, str] = field(default_factory=dict)
    research_plans: dict[str, list[str]] = field(default_factory=dict)  # question -> the plan step's reply
    replies: dict[str, list[str]] = field(default_factory=dict)  # step -> replies to send, in order, instead
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, times: int = 1, retry_after_ms: int | None = None, step: str | None = None) -> None:
        """Answer the next `times` requests with `status` (429, 500, 503) and DashScope's error JSON.

        `retry_after_ms` adds a `retry-after-ms` header, which the openai client obeys (keeps retry tests fast).
        """
        with self.lock:
            self.faults += [Fault("fail", status=status, retry_after_ms=retry_after_ms, step=step) for _ in range(times)]

    def delay_next(self, seconds: float, after_chunks: int | None = None, step: str | None = None) -> None:
        """Stall the next request for `seconds`: before the response headers, or after `after_chunks` SSE chunks."""
        with self.lock:
            self.faults.append(Fault("delay", seconds=seconds, after_chunks=after_chunks, step=step))

    def cut_next(self, after_chunks: int = 3, graceful: bool = False, step: str | None = None) -> None:
        """Stop the next stream after `after_chunks` chunks, with no finish_reason and no [DONE].

        By default the connection is dropped mid-body; `graceful` ends the HTTP body properly instead.
        """
        with self.lock:
            self.faults.append(Fault("cut", after_chunks=after_chunks, graceful=graceful, step=step))

    def endless_next(self, piece: str = "x" * 1000, interval_s: float = 0.0, reasoning: bool = False) -> None:
        """Make the next stream send `piece` as a delta every `interval_s` seconds and never finish.

        It ignores max_tokens, as a broken or hostile server would; `reasoning` sends the pieces as reasoning
        instead of answer text. It stops by itself after ENDLESS_MAX_S seconds or ENDLESS_MAX_BYTES bytes, or
        when the client hangs up.
        """
        with self.lock:
            field = self.reasoning_field if reasoning else "content"
            self.faults.append(Fault("endless", seconds=interval_s, piece=piece, field=field))

    def malformed_next(self, after_chunks: int = 2, data: bytes = b'{"id": "chatcmpl-1", "choices": [{"delta": ') -> None:
        """Send `data` as the SSE data of chunk number `after_chunks` of the next stream (default: cut-off JSON)."""
        with self.lock:
            self.faults.append(Fault("malformed", after_chunks=after_chunks, data=data))

    def reasoning_only_next(self) -> None:
        """Make the next stream think (whatever the request asked) and then finish with "stop" and no answer."""
        with self.lock:
            self.faults.append(Fault("reasoning_only"))

    def _record(self, body: dict[str, Any] | None, headers: dict[str, str]) -> Fault | None:
        with self.lock:
            self.requests.append(body)
            self.headers.append(headers)
            step = research_step(body)
            for n, fault in enumerate(self.faults):
                if fault.step is None or fault.step == step:
                    return self.faults.pop(n)
            return None

    def steps(self) -> list[str | None]:
        """The research step of each request so far (None for a request of no step)."""
        with self.lock:
            return [research_step(body) for body in self.requests]


@contextmanager
def run_stub(api_key: str = "sk-test-0123456789abcdef") -> Iterator[Stub]:
    """Run the stub on 127.0.0.1 with a free port for the duration of the block."""
    stub = Stub(api_key=api_key)
    with serve_on_loopback(_handler(stub)) as port:
        stub.base_url = f"http://127.0.0.1:{port}{PREFIX}"
        yield stub


@contextmanager
def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve `handler` on 127.0.0.1 at a free port (yielded) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, like the real service

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with stub.lock:
                stub.paths.append(self.path)
            if self.path.split("?", 1)[0].rstrip("/") != f"{PREFIX}/chat/completions":
                self._error(404, f"Path {self.path} not found.", code="NotFound")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            fault = stub._record(body, dict(self.headers.items()))
            try:
                self._respond(body, fault)
            except (BrokenPipeError, ConnectionResetError):  # the client went away
                self.close_connection = True

        def _respond(self, body: dict[str, Any] | None, fault: Fault | None) -> None:
            if self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                self._error(401, "Incorrect API key provided. ")
                return
            if fault is not None and fault.kind == "fail":
                extra = {"retry-after-ms": str(fault.retry_after_ms)} if fault.retry_after_ms is not None else {}
                self._error(fault.status, FAULT_MESSAGES.get(fault.status, "Error."), headers=extra)
                return
            if fault is not None and fault.kind == "delay" and fault.after_chunks is None:
                time.sleep(fault.seconds)
            problem = _invalid(body, stub.models)
            if problem is not None:
                self._error(*problem)
                return
            assert body is not None
            if body.get("stream") is True:
                self._stream(body, fault)
            else:
                self._json(200, _completion(body))

        def _stream(self, body: dict[str, Any], fault: Fault | None) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("x-request-id", str(uuid.uuid4()))
            self.end_headers()
            if fault is not None and fault.kind == "endless":
                self._endless(body, fault)
                return
            thinks = fault is not None and fault.kind == "reasoning_only"
            chunks = _chunks(body, stub.reasoning_field, reasoning_only=thinks, stub=stub)
            for n, chunk in enumerate(chunks):
                if fault is not None and fault.after_chunks == n:
                    if fault.kind == "delay":
                        time.sleep(fault.seconds)
                    elif fault.kind == "malformed":
                        self._send_chunk(b"data: " + fault.data + b"\n\n")
                        continue
                    elif fault.kind == "cut":
                        if fault.graceful:
                            self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        self.close_connection = True
                        return
                self._send_chunk(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            self._send_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _endless(self, body: dict[str, Any], fault: Fault) -> None:
            """Deltas until the client hangs up, or the stub's own bounds in time and bytes are reached."""
            base = {"id": f"chatcmpl-{uuid.uuid4()}", "object": "chat.completion.chunk", "created": int(time.time())}
            delta = {"role": "assistant", "content": "", fault.field: fault.piece}
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
            chunk = {**base, "model": body["model"], "choices": [choice], "usage": None}
            data = f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
            stub.sent_bytes = 0
            deadline = time.monotonic() + ENDLESS_MAX_S
            while time.monotonic() < deadline and stub.sent_bytes < ENDLESS_MAX_BYTES:
                self._send_chunk(data)  # raises BrokenPipeError once the client has gone
                stub.sent_bytes += len(data)
                if fault.seconds:
                    time.sleep(fault.seconds)
            self.close_connection = True

        def _send_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _error(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None) -> None:
            kind, default_code = ERRORS.get(status, ("invalid_request_error", "error"))
            error = {"message": message, "type": kind, "param": None, "code": code or default_code}
            self._json(status, {"error": error, "request_id": str(uuid.uuid4())}, headers)

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


def _invalid(body: dict[str, Any] | None, models: set[str]) -> tuple[int, str] | tuple[int, str, str] | None:
    """Why DashScope would refuse this body, as (status, message[, code]); None when it is fine."""
    if not isinstance(body, dict):
        return 400, "The request body is not valid JSON."
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return 400, "Model not specified."
    if model not in models:
        return 404, f"The model `{model}` does not exist or you do not have access to it."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "<400> InternalError.Algo.InvalidParameter: Input should be a valid list: messages"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in {"system", "user", "assistant", "tool"}:
            return 400, "<400> InternalError.Algo.InvalidParameter: Invalid message role."
    thinking = body.get("enable_thinking")
    if thinking is not None and not isinstance(thinking, bool):
        return 400, "<400> InternalError.Algo.InvalidParameter: parameter.enable_thinking must be a boolean"
    budget = body.get("thinking_budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0):
        return 400, "<400> InternalError.Algo.InvalidParameter: thinking_budget must be a positive integer"
    for limit in ("max_tokens", "max_completion_tokens"):
        value = body.get(limit)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            return 400, f"<400> InternalError.Algo.InvalidParameter: {limit} must be a positive integer"
    if _thinks(body) and body.get("stream") is not True:
        return 400, (
            "<400> InternalError.Algo.InvalidParameter: parameter.enable_thinking must be set to false for non-streaming calls"
        )
    return None


def _thinks(body: dict[str, Any]) -> bool:
    """Whether the model thinks: as asked, else by default for qwen3-* models."""
    thinking = body.get("enable_thinking")
    return thinking if isinstance(thinking, bool) else str(body["model"]).startswith("qwen3-")


def research_step(body: dict[str, Any] | None) -> str | None:
    """`plan`, `judge`, `reflect` or `write` for a research request (its system message's first line), else None."""
    messages = body.get("messages") if isinstance(body, dict) else None
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
    content = first.get("content") if first.get("role") == "system" else None
    line = content.split("\n", 1)[0] if isinstance(content, str) else ""
    return line.removeprefix("step: ").strip() if line.startswith("step: ") else None


def _research(step: str, user: str, stub: Stub) -> tuple[str, str]:
    """The reasoning and the reply of a perfect, agreeable model for one research step."""
    with stub.lock:
        queued = stub.replies.get(step)
        if queued:
            return f"Step {step}.", queued.pop(0)
    numbered = re.findall(r"^\[(\d+)\][^\n]*\n([^\n]*)", user, re.M)
    if step == "plan":
        asked = user.strip()
        return "Planning.", json.dumps(stub.research_plans.get(asked) or [stub.translations.get(asked, asked)])
    if step == "judge":
        return "Judging.", json.dumps([int(n) for n, _ in numbered])
    if step == "reflect":
        return "Reflecting.", "[]"
    report = " ".join(f"{text.strip()[:80]} [{n}]." for n, text in numbered)
    return "Writing.", report or NO_ANSWER


def _texts(body: dict[str, Any], stub: Stub | None = None) -> tuple[str, str]:
    """The reasoning and the answer for this request, derived from its last user message."""
    user = next((m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), "") or ""
    user = user if isinstance(user, str) else json.dumps(user)
    step = research_step(body)
    if step is not None and stub is not None:
        return _research(step, user, stub)
    if user.startswith("Rewrite this question as a search query"):
        asked = user.rsplit("\n\n", 1)[-1].strip()
        return "Translating the question.", (stub.translations if stub else {}).get(asked, asked)
    question = re.search(r"<question>\s*(.*?)\s*</question>", user, re.S)
    asked = (question.group(1) if question else user).strip()[:80]
    passage = re.search(r"^(\[\d+\])[^\n]*\n([^\n]+)", user, re.M)
    if passage is None:
        return f"The question is: {asked}. No numbered passage was given.", NO_ANSWER
    label, text = passage.group(1), passage.group(2).strip()
    return f"The question is: {asked}. Passage {label} looks relevant.", f"{text[:160]} {label}"


def _pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chunks(
    body: dict[str, Any], reasoning_field: str, reasoning_only: bool = False, stub: Stub | None = None
) -> Iterator[dict[str, Any]]:
    """The chat.completion.chunk objects of one streamed answer.

    `reasoning_only`: the model thinks and then stops without answering (finish_reason "stop").
    """
    reasoning, answer = _texts(body, stub)
    thinks = _thinks(body) or reasoning_only
    if reasoning_only:
        answer = ""
    budget = body.get("thinking_budget")
    if thinks and budget is not None:
        reasoning = reasoning[: budget * CHARS_PER_TOKEN]
    reasoning = reasoning if thinks else ""
    finish = "stop"
    total_limit = body.get("max_completion_tokens")  # reasoning and answer together
    if total_limit is not None and len(reasoning) + len(answer) > total_limit * CHARS_PER_TOKEN:
        room = total_limit * CHARS_PER_TOKEN
        reasoning, answer, finish = reasoning[:room], answer[: max(0, room - len(reasoning))], "length"
    answer_limit = body.get("max_tokens")  # the answer alone
    if answer_limit is not None and len(answer) > answer_limit * CHARS_PER_TOKEN:
        answer, finish = answer[: answer_limit * CHARS_PER_TOKEN], "length"
    base = {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": None,
    }
    usage_wanted = (body.get("stream_options") or {}).get("include_usage") is True

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], "usage": None}

    for piece in _pieces(reasoning):
        yield chunk({"role": "assistant", "content": "", reasoning_field: piece})
    for piece in _pieces(answer):
        yield chunk({"role": "assistant", "content": piece})
    yield chunk({"role": "assistant", "content": ""}, finish)
    if usage_wanted:
        yield {**base, "choices": [], "usage": _usage(body, reasoning, answer)}


def _usage(body: dict[str, Any], reasoning: str, answer: str) -> dict[str, Any]:
    prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
    reasoning_tokens = len(reasoning) // CHARS_PER_TOKEN
    completion = reasoning_tokens + len(answer) // CHARS_PER_TOKEN + 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    """A non-streaming chat.completion (thinking is off here, or the request was refused)."""
    _, answer = _texts(body)
    return {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(body, "", answer),
    }
