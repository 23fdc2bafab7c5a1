"""tools/llm.py against a real HTTP server that behaves like DashScope's OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashscope_stub import CHARS_PER_TOKEN, NO_ANSWER, Stub, run_stub
from tools import defaults, llm
from tools.errors import LLMError
from tools.llm import LLMConfig, stream_chat, thinking_options

KEY = "sk-test-0123456789abcdef"
PASSAGE = "Milvus Lite is a lightweight version of Milvus that runs in your Python process."
MESSAGES = [
    {"role": "system", "content": "You are an AI assistant."},
    {
        "role": "user",
        "content": f"Cite passages like [1].\n<context>\n[1] faq.md § Lite\n{PASSAGE}\n\n[2] faq.md § Other\nNo.\n"
        "</context>\n<question>\nWhat is Milvus Lite?\n</question>",
    },
]


@pytest.fixture
def stub() -> Iterator[Stub]:
    with run_stub(api_key=KEY) as running:
        yield running


def config(stub: Stub, **changes: Any) -> LLMConfig:
    """Settings pointing at the stub, with fast retries and timeouts."""
    return LLMConfig(**{"base_url": stub.base_url, "api_key": KEY, "timeout_s": 5.0, "max_retries": 2, **changes})


def sent(extra: dict[str, Any], model: str = "qwen-plus", limit: dict[str, int] | None = None) -> dict[str, Any]:
    """The whole JSON body stream_chat should send (DashScope: the size cap as max_completion_tokens)."""
    limit = {"max_completion_tokens": defaults.LLM_MAX_TOKENS} if limit is None else limit
    return {"model": model, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}, **limit, **extra}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("enable", "budget", "extra"),
    [
        (None, None, {}),
        (True, None, {"enable_thinking": True}),
        (False, None, {"enable_thinking": False}),
        (None, 300, {"enable_thinking": True, "thinking_budget": 300}),
        (True, 300, {"enable_thinking": True, "thinking_budget": 300}),
    ],
)
async def test_dashscope_body(stub: Stub, enable: bool | None, budget: int | None, extra: dict[str, Any]) -> None:
    result = await stream_chat(config(stub), MESSAGES, enable_thinking=enable, thinking_budget=budget)
    assert stub.requests == [sent(extra)]
    assert stub.headers[0]["authorization"] == f"Bearer {KEY}"
    assert result.answer == f"{PASSAGE} [1]"
    assert bool(result.reasoning) == ("enable_thinking" in extra and extra["enable_thinking"])
    assert result.finish_reason == "stop"


@pytest.mark.anyio
async def test_chat_template_kwargs_body_and_placeholder_key() -> None:
    with run_stub(api_key="EMPTY") as stub:
        local = config(stub, api_key=None, dialect="chat_template_kwargs", model="qwen3-8b")
        await stream_chat(local, MESSAGES, enable_thinking=False)
        await stream_chat(local, MESSAGES)
    limit = {"max_tokens": defaults.LLM_MAX_TOKENS}  # other servers count thinking in max_tokens
    off = sent({"chat_template_kwargs": {"enable_thinking": False}}, "qwen3-8b", limit)
    assert stub.requests == [off, sent({}, "qwen3-8b", limit)]
    assert stub.headers[0]["authorization"] == "Bearer EMPTY"


@pytest.mark.anyio
async def test_dialect_none_sends_no_thinking_fields(stub: Stub) -> None:
    await stream_chat(config(stub, dialect="none"), MESSAGES)
    assert stub.requests == [sent({}, limit={"max_tokens": defaults.LLM_MAX_TOKENS})]


@pytest.mark.parametrize(
    ("dialect", "enable", "budget", "says"),
    [
        ("dashscope", None, 0, "positive integer"),
        ("dashscope", True, -1, "positive integer"),
        ("dashscope", None, True, "positive integer"),
        ("dashscope", None, 1.5, "positive integer"),
        ("dashscope", None, 10**30, "at most 1,000,000"),
        ("dashscope", True, 1_000_001, "at most 1,000,000"),
        ("dashscope", False, 100, "thinking_budget only applies when thinking is on"),
        ("chat_template_kwargs", True, 100, "cannot honour a thinking budget"),
        ("none", None, 100, "cannot honour a thinking budget"),
        ("none", True, None, "no thinking switch"),
        ("none", False, None, "no thinking switch"),
    ],
)
def test_invalid_thinking_options(dialect: llm.Dialect, enable: bool | None, budget: Any, says: str) -> None:
    with pytest.raises(LLMError, match=says):
        thinking_options(dialect, enable, budget)


@pytest.mark.anyio
async def test_invalid_options_send_nothing(stub: Stub) -> None:
    with pytest.raises(LLMError, match="positive integer"):
        await stream_chat(config(stub), MESSAGES, thinking_budget=0)
    assert stub.requests == []


@pytest.mark.anyio
async def test_missing_key_names_the_setting(stub: Stub) -> None:
    for key in (None, ""):
        with pytest.raises(LLMError, match="DASHSCOPE_API_KEY") as caught:
            await stream_chat(config(stub, api_key=key), MESSAGES)
        assert "env" in str(caught.value)
    assert stub.requests == []


@pytest.mark.anyio
async def test_reasoning_usage_and_timings(stub: Stub) -> None:
    result = await stream_chat(config(stub), MESSAGES, model="qwen3-8b")  # qwen3-* think by default
    assert stub.requests == [sent({}, "qwen3-8b")]
    assert result.model == "qwen3-8b"
    assert result.reasoning == "The question is: What is Milvus Lite?. Passage [1] looks relevant."
    assert result.answer == f"{PASSAGE} [1]"
    assert result.usage is not None
    assert set(result.usage) == {"prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens"}
    assert result.usage["reasoning_tokens"] == len(result.reasoning) // 4
    assert result.usage["total_tokens"] == result.usage["prompt_tokens"] + result.usage["completion_tokens"]
    assert result.first_token_ms is not None and 0 < result.first_token_ms <= result.total_ms


@pytest.mark.anyio
async def test_reasoning_field_of_newer_vllm(stub: Stub) -> None:
    stub.reasoning_field = "reasoning"
    result = await stream_chat(config(stub), MESSAGES, enable_thinking=True)
    assert "Passage [1] looks relevant" in result.reasoning


@pytest.mark.anyio
async def test_no_passage_no_citation(stub: Stub) -> None:
    result = await stream_chat(config(stub), [{"role": "user", "content": "Hello?"}], enable_thinking=False)
    assert result.answer == NO_ANSWER
    assert result.reasoning == ""
    assert result.usage is not None and result.usage["reasoning_tokens"] == 0


@pytest.mark.anyio
async def test_rejected_key(stub: Stub) -> None:
    wrong = "sk-wrong-9876543210fedcba"
    with pytest.raises(LLMError) as caught:
        await stream_chat(config(stub, api_key=wrong), MESSAGES)
    message = str(caught.value)
    assert "401" in message and "DASHSCOPE_API_KEY" in message
    assert "https://dashscope-intl.aliyuncs.com/compatible-mode/v1" in message and "cn-hongkong.dashscope" in message
    assert "{WorkspaceId}.{region}.maas.aliyuncs.com" in message
    assert stub.base_url in message
    assert wrong not in message and KEY not in message
    assert len(stub.requests) == 1  # 401 is not retried


@pytest.mark.anyio
async def test_key_scrubbed_from_backend_text(stub: Stub) -> None:
    """The 404 message repeats the model name; a key pasted there is still hidden."""
    with pytest.raises(LLMError, match="404") as caught:
        await stream_chat(config(stub), MESSAGES, model=KEY)
    assert KEY not in str(caught.value)
    assert "`***`" in str(caught.value)


@pytest.mark.anyio
async def test_bad_request_surfaces_backend_message(stub: Stub) -> None:
    with pytest.raises(LLMError, match="400.*Invalid message role"):
        await stream_chat(config(stub), [{"role": "wizard", "content": "hi"}])
    assert len(stub.requests) == 1


@pytest.mark.anyio
async def test_unknown_model(stub: Stub) -> None:
    with pytest.raises(LLMError, match="'qwen-nope' was not found.*does not exist"):
        await stream_chat(config(stub), MESSAGES, model="qwen-nope")


@pytest.mark.anyio
async def test_rate_limit_then_success(stub: Stub) -> None:
    stub.fail_next(429, retry_after_ms=10)
    result = await stream_chat(config(stub), MESSAGES)
    assert result.answer == f"{PASSAGE} [1]"
    assert [h["x-stainless-retry-count"] for h in stub.headers] == ["0", "1"]
    assert stub.requests[0] == stub.requests[1]


@pytest.mark.anyio
async def test_server_error_then_success_with_client_backoff(stub: Stub) -> None:
    stub.fail_next(503)  # no retry-after header: the client's own backoff (about 0.5 s)
    result = await stream_chat(config(stub, max_retries=1), MESSAGES)
    assert result.finish_reason == "stop"
    assert len(stub.requests) == 2


@pytest.mark.anyio
async def test_rate_limit_persists(stub: Stub) -> None:
    stub.fail_next(429, times=3, retry_after_ms=10)
    with pytest.raises(LLMError) as caught:
        await stream_chat(config(stub), MESSAGES)
    message = str(caught.value)
    assert "429" in message and "rate limit exceeded" in message and "after 2 retries" in message
    assert len(stub.requests) == 3


@pytest.mark.anyio
async def test_server_error_persists(stub: Stub) -> None:
    stub.fail_next(500, times=2, retry_after_ms=10)
    with pytest.raises(LLMError, match="500.*internal error.*after 1 retry") as caught:
        await stream_chat(config(stub, max_retries=1), MESSAGES)
    assert stub.base_url in str(caught.value)
    assert len(stub.requests) == 2


@pytest.mark.anyio
async def test_timeout_before_response(stub: Stub) -> None:
    stub.delay_next(2.0)
    with pytest.raises(LLMError, match=r"within 0\.2 s.*LLM_TIMEOUT"):
        await stream_chat(config(stub, timeout_s=0.2, max_retries=0), MESSAGES)


@pytest.mark.anyio
async def test_timeout_is_retried(stub: Stub) -> None:
    stub.delay_next(2.0)
    result = await stream_chat(config(stub, timeout_s=0.2, max_retries=1), MESSAGES)
    assert result.finish_reason == "stop"
    assert len(stub.requests) == 2


@pytest.mark.anyio
async def test_stall_mid_stream(stub: Stub) -> None:
    stub.delay_next(2.0, after_chunks=2)
    with pytest.raises(LLMError, match=r"sent nothing for 0\.3 s in the middle.*discarded.*LLM_TIMEOUT"):
        await stream_chat(config(stub, timeout_s=0.3), MESSAGES, enable_thinking=True)
    assert len(stub.requests) == 1  # a stream that has started is not retried


@pytest.mark.anyio
async def test_connection_dropped_mid_stream(stub: Stub) -> None:
    stub.cut_next(after_chunks=3)
    with pytest.raises(LLMError, match="broke while qwen-plus was answering.*discarded"):
        await stream_chat(config(stub), MESSAGES, enable_thinking=True)
    assert len(stub.requests) == 1


@pytest.mark.anyio
async def test_stream_ends_without_finish_reason(stub: Stub) -> None:
    stub.cut_next(after_chunks=3, graceful=True)
    with pytest.raises(LLMError, match="ended before it was complete.*discarded"):
        await stream_chat(config(stub), MESSAGES)


@pytest.mark.anyio
async def test_connection_refused_names_base_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/compatible-mode/v1"
    with pytest.raises(LLMError, match="Could not connect to " + url):
        await stream_chat(LLMConfig(base_url=url, api_key=KEY, max_retries=0), MESSAGES)


@pytest.mark.anyio
async def test_progress(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm, "PROGRESS_INTERVAL_S", 0.0)
    seen: list[str] = []

    async def on_progress(done: float, total: float | None, message: str) -> None:
        seen.append(message)

    result = await stream_chat(config(stub), MESSAGES, enable_thinking=True, progress=on_progress)
    assert seen[0] == "waiting for qwen-plus"
    assert seen[1].startswith("thinking… ")
    assert seen[-1] == f"answering… {len(result.answer)} chars"
    assert f"thinking… {len(result.reasoning)} chars" in seen


@pytest.mark.anyio
async def test_progress_is_throttled(stub: Stub) -> None:
    seen: list[str] = []

    async def on_progress(done: float, total: float | None, message: str) -> None:
        seen.append(message)

    await stream_chat(config(stub), MESSAGES, enable_thinking=True, progress=on_progress)
    assert seen == ["waiting for qwen-plus"]  # the whole answer took well under 0.5 s


def post(stub: Stub, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A plain, non-streaming POST to the stub."""
    request = urllib.request.Request(
        f"{stub.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "qwen-plus", "enable_thinking": True}, 400, "must be set to false for non-streaming calls"),
        ({"model": "qwen3-8b"}, 400, "must be set to false for non-streaming calls"),
        ({"model": "qwen-plus", "stream": True, "thinking_budget": 0}, 400, "thinking_budget"),
        ({"model": "qwen-max-9000"}, 404, "does not exist"),
    ],
)
def test_stub_is_strict(stub: Stub, body: dict[str, Any], status: int, says: str) -> None:
    code, reply = post(stub, {"messages": [{"role": "user", "content": "hi"}], **body})
    assert code == status
    assert says in reply["error"]["message"]
    assert set(reply) == {"error", "request_id"}


def test_stub_non_streaming_completion(stub: Stub) -> None:
    code, reply = post(stub, {"model": "qwen3-8b", "enable_thinking": False, "messages": MESSAGES})
    assert code == 200
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": f"{PASSAGE} [1]"}
    assert reply["choices"][0]["finish_reason"] == "stop"


# --- bounds on one answer: size, total time, and what a stream may contain ---


@pytest.mark.anyio
async def test_max_tokens_goes_upstream_and_a_cut_answer_says_length(stub: Stub) -> None:
    result = await stream_chat(config(stub, max_tokens=10), MESSAGES, enable_thinking=False)
    assert stub.requests[0] is not None and stub.requests[0]["max_completion_tokens"] == 10
    assert result.finish_reason == "length"
    assert result.answer == f"{PASSAGE} [1]"[: 10 * CHARS_PER_TOKEN]


@pytest.mark.anyio
async def test_thinking_that_uses_up_max_tokens_is_an_error_naming_the_setting(stub: Stub) -> None:
    with pytest.raises(LLMError, match=r"no answer.*LLM_MAX_TOKENS \(now 10\)"):
        await stream_chat(config(stub, max_tokens=10), MESSAGES, model="qwen3-8b")  # thinks by default


@pytest.mark.anyio
async def test_thinking_budget_must_leave_room_for_the_answer(stub: Stub) -> None:
    with pytest.raises(LLMError, match=r"thinking_budget \(500\).*LLM_MAX_TOKENS \(now 500\)"):
        await stream_chat(config(stub, max_tokens=500), MESSAGES, thinking_budget=500)
    assert stub.requests == []


@pytest.mark.anyio
async def test_a_stream_that_never_ends_stops_at_the_total_deadline(stub: Stub) -> None:
    stub.endless_next(piece="and so on ", interval_s=0.02, reasoning=True)  # deltas well inside LLM_TIMEOUT
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"did not finish within 1\.5 s.*LLM_TOTAL_TIMEOUT") as caught:
        await stream_chat(config(stub, timeout_s=1.0, total_timeout_s=1.5), MESSAGES)
    assert 1.4 < time.monotonic() - started < 10
    assert "discarded" in str(caught.value)


@pytest.mark.anyio
async def test_a_flood_stops_at_the_character_cap(stub: Stub) -> None:
    stub.endless_next(piece="x" * 10_000)  # 20 MB in well under a second, ignoring max_tokens
    started = time.monotonic()
    with pytest.raises(LLMError, match=r"more than 1,000,000 characters.*LLM_MAX_TOKENS") as caught:
        await stream_chat(config(stub), MESSAGES)
    assert time.monotonic() - started < 20
    assert len(str(caught.value)) < 1000
    assert stub.sent_bytes < 20 * 1024 * 1024  # the client hung up long before the stub's own bound


@pytest.mark.anyio
@pytest.mark.parametrize(
    "data",
    [
        b'{"id": "chatcmpl-1", "choices": [{"delta": ',  # cut-off JSON
        b"not json at all",
        b'{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": 5}',  # JSON of the wrong shape
        b'{"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"delta": "text"}]}',
    ],
)
async def test_a_malformed_chunk_is_a_clear_error(stub: Stub, data: bytes) -> None:
    stub.malformed_next(after_chunks=2, data=data)
    with pytest.raises(LLMError, match=r"malformed chunk.*discarded") as caught:
        await stream_chat(config(stub), MESSAGES)
    assert stub.base_url in str(caught.value)


@pytest.mark.anyio
async def test_reasoning_without_an_answer_is_an_error(stub: Stub) -> None:
    stub.reasoning_only_next()
    with pytest.raises(LLMError, match=r"qwen-plus thought.*but gave no answer.*finish_reason 'stop'"):
        await stream_chat(config(stub), MESSAGES)


# --- credentials inside the base URL ---


@pytest.mark.anyio
async def test_userinfo_in_the_base_url_is_never_shown(stub: Stub) -> None:
    url = stub.base_url.replace("http://", "http://alice:hunter2-pw@")  # httpx sends it as Basic auth
    with pytest.raises(LLMError, match="401") as caught:
        await stream_chat(config(stub, base_url=url), MESSAGES)
    message = str(caught.value)
    assert "hunter2-pw" not in message and "alice" not in message
    assert stub.base_url.replace("http://", "http://***@") in message


@pytest.mark.anyio
async def test_a_key_in_the_base_url_query_is_never_shown(stub: Stub) -> None:
    url = f"{stub.base_url}?key=query-secret-42"  # the stub's 404 echoes the path it got, key and all
    with pytest.raises(LLMError) as caught:
        await stream_chat(config(stub, base_url=url), MESSAGES)
    message = str(caught.value)
    assert "query-secret-42" in stub.paths[0]
    assert "query-secret-42" not in message
    assert f"{stub.base_url}?key=***" in message


@pytest.mark.anyio
async def test_credentials_hidden_when_the_connection_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://bob:pa55word-x@127.0.0.1:{port}/v1?token=tok-777"
    with pytest.raises(LLMError, match="Could not connect") as caught:
        await stream_chat(LLMConfig(base_url=url, api_key=KEY, max_retries=0), MESSAGES)
    message = str(caught.value)
    assert "pa55word-x" not in message and "tok-777" not in message
    assert f"http://***@127.0.0.1:{port}/v1?token=***" in message
