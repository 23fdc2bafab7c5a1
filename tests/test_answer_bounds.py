"""answer_with_qwen's bounds through the real server over MCP (in process), with the DashScope stand-in on loopback.

A stream that never ends, a flood, a malformed chunk, reasoning with no answer, a cut answer and bad budgets: each
comes back as a result or error a person can act on, quickly, and the server keeps serving.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import memory_session, payload, server_env
from tests.dashscope_stub import CHARS_PER_TOKEN, run_stub

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"
KEY = "sk-test-bounds-0123456789abcdef"
FAQ_FILE = "milvus_docs/en/faq/product_faq.md"  # one file is enough for relevant passages


def _env(tmp_path: Path, docs: Path, base_url: str, **extra: str) -> dict[str, str]:
    keyed = {"DASHSCOPE_BASE_URL": base_url, "DASHSCOPE_API_KEY": KEY, "LLM_MAX_RETRIES": "0"}
    return server_env(tmp_path / "bounds.db", docs, **keyed, **extra)


def _error(result: Any) -> str:
    assert result.is_error, result.content
    text: str = result.content[0].text
    assert text != "Error executing tool answer_with_qwen"  # never a failure with its reason hidden
    assert KEY not in text
    return text


async def test_endless_streams_floods_and_bad_chunks_come_back_as_clear_errors(docs: Path, tmp_path: Path) -> None:
    with run_stub(api_key=KEY) as stub:
        env = _env(tmp_path, docs, stub.base_url, LLM_TOTAL_TIMEOUT="2", LLM_TIMEOUT="1")
        async with memory_session(env) as session:
            await session.call_tool("ingest_documents", {"paths": [FAQ_FILE]})
            ask = {"question": QUESTION}

            ok = payload(await session.call_tool("answer_with_qwen", ask))
            assert ok["finish_reason"] == "stop" and ok["answer"].endswith("[1]")

            # deltas every 20 ms, well inside LLM_TIMEOUT, forever: the total deadline ends it
            stub.endless_next(piece="still thinking ", interval_s=0.02, reasoning=True)
            started = time.monotonic()
            text = _error(await session.call_tool("answer_with_qwen", {**ask, "include_reasoning": True}))
            assert "did not finish within 2 s" in text and "LLM_TOTAL_TIMEOUT" in text
            assert time.monotonic() - started < 15

            # 20 MB as fast as the socket takes it, ignoring max_tokens: a short error, not a 21 MB result
            stub.endless_next(piece="x" * 10_000)
            started = time.monotonic()
            result = await session.call_tool("answer_with_qwen", ask)
            text = _error(result)
            assert "more than 1,000,000 characters" in text and "LLM_MAX_TOKENS" in text
            assert len(json.dumps(result.model_dump(mode="json"))) < 5_000
            assert time.monotonic() - started < 30

            stub.malformed_next(after_chunks=2)
            text = _error(await session.call_tool("answer_with_qwen", ask))
            assert "malformed chunk" in text and "JSONDecodeError" in text

            stub.reasoning_only_next()
            text = _error(await session.call_tool("answer_with_qwen", ask))
            assert "gave no answer" in text and "finish_reason 'stop'" in text

            again = payload(await session.call_tool("answer_with_qwen", ask))  # still serving
            assert again["finish_reason"] == "stop"


async def test_a_cut_answer_says_length_and_thinking_that_fills_the_cap_says_what_to_raise(docs: Path, tmp_path: Path) -> None:
    with run_stub(api_key=KEY) as stub:
        async with memory_session(_env(tmp_path, docs, stub.base_url, LLM_MAX_TOKENS="5")) as session:
            await session.call_tool("ingest_documents", {"paths": [FAQ_FILE]})
            cut = payload(await session.call_tool("answer_with_qwen", {"question": QUESTION, "enable_thinking": False}))
            assert cut["finish_reason"] == "length" and len(cut["answer"]) == 5 * CHARS_PER_TOKEN, cut
            assert stub.requests[-1] is not None and stub.requests[-1]["max_completion_tokens"] == 5

            text = _error(await session.call_tool("answer_with_qwen", {"question": QUESTION, "model": "qwen3-32b"}))
            assert "gave no answer" in text and "raise LLM_MAX_TOKENS (now 5)" in text

            text = _error(await session.call_tool("answer_with_qwen", {"question": QUESTION, "thinking_budget": 5}))
            assert "leaves no room for the answer" in text


async def test_thinking_budget_must_be_a_json_integer_within_bounds(docs: Path, tmp_path: Path) -> None:
    with run_stub(api_key=KEY) as stub:
        async with memory_session(_env(tmp_path, docs, stub.base_url)) as session:
            await session.call_tool("ingest_documents", {"paths": [FAQ_FILE]})
            for budget, says in [(True, "thinking_budget"), (False, "thinking_budget"), (10**30, "at most 1,000,000")]:
                text = _error(await session.call_tool("answer_with_qwen", {"question": QUESTION, "thinking_budget": budget}))
                assert says in text, (budget, text)
            assert stub.requests == []  # nothing went upstream
            fine = payload(await session.call_tool("answer_with_qwen", {"question": QUESTION, "thinking_budget": 64}))
            assert fine["thinking"] == {"enabled": True, "budget": 64}
            assert stub.requests[-1] is not None and stub.requests[-1]["thinking_budget"] == 64
