"""ingest → search → answer over MCP, with real streamed tokens from a real model on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import memory_session, payload, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_answer_with_a_real_local_model(docs: Path, tmp_path: Path, local_llm: str) -> None:
    env = server_env(
        tmp_path / "local.db",
        docs,
        DASHSCOPE_BASE_URL=local_llm,
        QWEN_MODEL="smollm2",
        LLM_DIALECT="chat_template_kwargs",
        LLM_MAX_TOKENS="128",
    )
    async with memory_session(env) as session:
        await session.call_tool("ingest_documents", {"paths": ["milvus_docs/en/faq"]})
        progress: list[str | None] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message)

        result = await session.call_tool(
            "answer_with_qwen",
            {"question": "How is data stored in milvus?", "enable_thinking": False},
            progress_callback=on_progress,
        )
        assert not result.is_error, result.content[0].text
        answer = payload(result)
        assert len(answer["answer"]) > 10
        assert answer["usage"]["completion_tokens"] > 0 and answer["usage"]["prompt_tokens"] > 100
        assert [s["n"] for s in answer["sources"]] == [1, 2, 3]
        assert answer["timings_ms"]["first_token"] < answer["timings_ms"]["total"]
        assert progress[0] == "waiting for smollm2"

        budget = await session.call_tool(
            "answer_with_qwen", {"question": "How is data stored in milvus?", "thinking_budget": 100}
        )
        assert budget.is_error and "cannot honour a thinking budget" in budget.content[0].text
