"""answer_with_qwen: retrieval, the tutorial prompt, and the DashScope stub on loopback, as a function and over MCP."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import memory_session, payload, server_env
from tests.dashscope_stub import Stub, run_stub
from tools.answer import SYSTEM_PROMPT, answer_with_qwen
from tools.errors import LLMError
from tools.ingest import ingest_documents
from tools.llm import LLMConfig
from tools.services import Services

pytestmark = pytest.mark.anyio
QUESTION = "How is data stored in milvus?"
KEY = "sk-test-0123456789abcdef"


async def test_answer_cites_retrieved_passages(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en"])
    with run_stub(api_key=KEY) as stub:
        services.llm = LLMConfig(base_url=stub.base_url, api_key=KEY)
        steps: list[str] = []

        async def progress(done: float, total: float | None, message: str) -> None:
            steps.append(message)

        result = await answer_with_qwen(
            services,
            QUESTION,
            model="qwen3-32b",
            enable_thinking=True,
            thinking_budget=64,
            include_reasoning=True,
            progress=progress,
        )
    body = stub.requests[-1]
    assert body["model"] == "qwen3-32b" and body["stream"] is True
    assert body["enable_thinking"] is True and body["thinking_budget"] == 64
    assert body["stream_options"] == {"include_usage": True}
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "<context>" in user["content"] and f"<question>\n{QUESTION}\n</question>" in user["content"]
    assert "[1] milvus_docs/en/faq/" in user["content"]
    assert len(result.sources) == 3 and [s.n for s in result.sources] == [1, 2, 3]
    assert result.answer.endswith("[1]")  # the stub quotes passage [1] and cites it
    assert result.reasoning and result.usage and result.usage["reasoning_tokens"] > 0
    assert result.thinking.enabled is True and result.thinking.budget == 64
    assert result.timings_ms.retrieval > 0 and result.timings_ms.total >= result.timings_ms.first_token > 0
    assert steps and steps[0] == "waiting for qwen3-32b"


async def test_thinking_off_sends_the_switch_and_hides_reasoning(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en"])
    with run_stub(api_key=KEY) as stub:
        services.llm = LLMConfig(base_url=stub.base_url, api_key=KEY)
        result = await answer_with_qwen(services, QUESTION, enable_thinking=False)
    assert stub.requests[-1]["enable_thinking"] is False and "thinking_budget" not in stub.requests[-1]
    assert result.reasoning is None and result.model == "qwen-plus"


async def test_nothing_relevant_means_no_model_call(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en"])
    with run_stub(api_key=KEY) as stub:
        services.llm = LLMConfig(base_url=stub.base_url, api_key=KEY)
        result = await answer_with_qwen(services, "What is the capital of France?")
    assert stub.requests == [] and result.sources == []
    assert "could not find anything relevant" in result.answer


async def test_bad_thinking_arguments_fail_before_any_work(services: Services) -> None:
    services.llm = replace(services.llm, api_key=KEY)
    for budget in (0, -5, True):
        with pytest.raises(LLMError, match="positive integer"):
            await answer_with_qwen(services, QUESTION, thinking_budget=budget)
    with pytest.raises(LLMError, match="only applies when thinking is on"):
        await answer_with_qwen(services, QUESTION, enable_thinking=False, thinking_budget=100)


async def test_answer_over_mcp_with_progress_and_clear_errors(docs: Path, tmp_path: Path, dashscope: Stub) -> None:
    env = server_env(tmp_path / "answer.db", docs, DASHSCOPE_BASE_URL=dashscope.base_url, DASHSCOPE_API_KEY=dashscope.api_key)
    async with memory_session(env) as session:
        await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en"]})
        progress: list[str | None] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message)

        result = await session.call_tool(
            "answer_with_qwen", {"question": QUESTION, "enable_thinking": True}, progress_callback=on_progress
        )
        assert not result.is_error, result.content
        answer = payload(result)
        assert answer["answer"] and answer["sources"][0]["n"] == 1 and "reasoning" in answer
        assert progress and progress[0] == "waiting for qwen-plus"

        bad = await session.call_tool("answer_with_qwen", {"question": QUESTION, "thinking_budget": "lots"})
        assert bad.is_error and "thinking_budget" in bad.content[0].text

        dashscope.fail_next(401)
        denied = await session.call_tool("answer_with_qwen", {"question": QUESTION})
        assert denied.is_error and "401" in denied.content[0].text and dashscope.api_key not in denied.content[0].text

    async with memory_session(server_env(tmp_path / "answer.db", docs)) as session:
        no_key = await session.call_tool("answer_with_qwen", {"question": QUESTION})
        assert no_key.is_error and "DASHSCOPE_API_KEY" in no_key.content[0].text
        assert json.loads(json.dumps(no_key.model_dump(mode="json")))  # a plain, serialisable error result


async def test_a_korean_question_is_rewritten_into_english_and_answered_in_korean(services: Services) -> None:
    await ingest_documents(services, ["milvus_docs/en"])
    korean = "milvus에서는 데이터가 어떻게 저장되나요?"
    with run_stub(api_key=KEY) as stub:
        stub.translations = {korean: QUESTION}
        services.llm = LLMConfig(base_url=stub.base_url, api_key=KEY)
        result = await answer_with_qwen(services, korean)
        rewrite, answer = stub.requests
        assert rewrite is not None and answer is not None
        assert rewrite["enable_thinking"] is False and rewrite["max_completion_tokens"] == 256
        assert korean in rewrite["messages"][0]["content"] and "in English" in rewrite["messages"][0]["content"]
        assert answer["messages"][1]["content"].endswith("Answer in Korean, the language of the question.")
        assert f"<question>\n{korean}\n</question>" in answer["messages"][1]["content"]  # asked as the user asked
        assert result.search_query == QUESTION and "Where does Milvus store data?" in [s.heading for s in result.sources]
        assert result.usage and result.usage["rewrite"]["total_tokens"] > 0 and result.timings_ms.rewrite
        stub.requests.clear()
        english = await answer_with_qwen(services, QUESTION)  # no rewrite, and the prompt as before
        assert len(stub.requests) == 1 and english.search_query is None and english.timings_ms.rewrite is None
        assert stub.requests[0] and "Answer in" not in stub.requests[0]["messages"][1]["content"]
        stub.requests.clear()
        services.rewrite_queries = False  # QUERY_REWRITE=off: the Korean question is searched as it is
        off = await answer_with_qwen(services, korean)
        assert all("Rewrite this question" not in r["messages"][-1]["content"] for r in stub.requests if r)
        assert off.search_query is None and "rewrite" not in (off.usage or {})
