"""research_with_qwen against the DashScope stand-in on loopback: the steps and their wire contract, fallbacks,
bounds, failures at each step, cancellation, languages, several collections, and the tool in read-only mode."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from server.app import create_server
from server.settings import Settings
from tests.conftest import FAQ as FAQ_FOLDER
from tests.conftest import payload, stdio_session
from tests.dashscope_stub import Stub, research_step, run_stub
from tests.rerank_stub import COMPATIBLE, run_rerank_stub
from tools.embedders import OnnxMiniLM
from tools.errors import LLMError, UserError
from tools.ingest import ingest_documents
from tools.llm import LLMConfig
from tools.rerankers import make_reranker
from tools.research import RERANK_KEEP, STEPS, ResearchResult, research_with_qwen
from tools.services import Services
from tools.store import Store

pytestmark = pytest.mark.anyio
KEY = "sk-test-research-0123456789abcdef"
QUESTION = "Where does Milvus store data, and how much data can a single collection hold?"
PLAN = ["Where does Milvus store data?", "Is there a limit on how much data a collection can hold?"]
FOLLOW_UPS = [
    "Which index types does Milvus support?",
    "How do I delete entities in Milvus?",
    "Does Milvus support Windows?",
    "How does Milvus handle concurrent queries?",
    "What is the maximum vector dimension?",
    "Can Milvus run on Kubernetes?",
]
FAQ = "milvus_docs/en/faq"


def _bodies(stub: Stub, step: str) -> list[dict[str, Any]]:
    return [body for body in stub.requests if body is not None and research_step(body) == step]


@pytest.fixture(scope="module")
def faq_store(tmp_path_factory: pytest.TempPathFactory, embedder: OnnxMiniLM) -> tuple[Path, Path]:
    """The FAQ ingested once for the module's tests (which only read it): its root folder and Lite file."""
    base = tmp_path_factory.mktemp("research")
    root, db = base / "root", base / "faq.db"
    shutil.copytree(FAQ_FOLDER, root / "milvus_docs")

    async def ingest() -> None:
        store = Store(str(db))
        try:
            await ingest_documents(Services(store=store, embedder=embedder, roots=[root]), [FAQ])
        finally:
            store.close()

    anyio.run(ingest)
    return root, db


@pytest.fixture
def faq(faq_store: tuple[Path, Path], embedder: OnnxMiniLM) -> Iterator[Services]:
    root, db = faq_store
    store = Store(str(db))
    yield Services(store=store, embedder=embedder, roots=[root])
    store.close()


def _connect(services: Services, stub: Stub, **llm: Any) -> None:
    services.llm = LLMConfig(base_url=stub.base_url, api_key=KEY, max_retries=0, **llm)


async def test_the_steps_run_in_order_and_only_the_write_step_thinks(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.research_plans = {QUESTION: PLAN}
        stub.replies = {"reflect": [f'["{FOLLOW_UPS[0]}"]']}
        progress: list[tuple[float, str]] = []
        logged: list[str] = []

        async def on_progress(done: float, total: float | None, message: str) -> None:
            progress.append((done, message))

        async def on_step(message: str) -> None:
            logged.append(message)

        result = await research_with_qwen(
            faq,
            QUESTION,
            model="qwen3-32b",
            enable_thinking=True,
            thinking_budget=64,
            include_reasoning=True,
            progress=on_progress,
            on_step=on_step,
        )
    assert stub.steps() == ["plan", "judge", "reflect", "judge", "reflect", "write"]
    assert result.model_calls == 6 <= 1 + 2 * 3 + 1
    for body in stub.requests:
        assert body is not None and body["model"] == "qwen3-32b" and body["stream"] is True
        step = research_step(body)
        assert body["messages"][0]["role"] == "system" and body["messages"][0]["content"].startswith(f"step: {step}\n")
        if step == "write":
            assert body["enable_thinking"] is True and body["thinking_budget"] == 64
        else:
            assert body["enable_thinking"] is False and "thinking_budget" not in body
            assert body["max_completion_tokens"] == 512
    plan = _bodies(stub, "plan")[0]
    assert "JSON array of strings" in plan["messages"][0]["content"] and plan["messages"][1]["content"] == QUESTION
    assert "JSON array of the numbers" in _bodies(stub, "judge")[0]["messages"][0]["content"]
    assert "in English" in _bodies(stub, "reflect")[0]["messages"][0]["content"]

    assert result.sub_questions == PLAN
    assert [r.queries for r in result.rounds] == [PLAN, [FOLLOW_UPS[0]]]
    first = result.rounds[0]
    assert first.found == 2 * 5 and 0 < first.new <= first.found and first.kept == first.new  # the stub keeps all
    assert len(result.sources) == sum(r.kept for r in result.rounds)
    assert [s.n for s in result.sources] == list(range(1, len(result.sources) + 1))
    assert len({s.chunk_id for s in result.sources}) == len(result.sources)  # deduplicated by chunk id
    assert all(s.cited and s.collection == "milvus_docs" and s.headings for s in result.sources)
    assert "Where does Milvus store data?" in [s.heading for s in result.sources]
    assert result.report.endswith(f"[{len(result.sources)}].") and result.finish_reason == "stop"
    assert result.reasoning and result.thinking.enabled is True and result.thinking.budget == 64
    assert set(result.usage) == {*STEPS, "total"}
    assert result.usage["total"]["total_tokens"] == sum(result.usage[s]["total_tokens"] for s in STEPS)
    timings = result.timings_ms
    assert timings.plan and timings.judge and timings.reflect and timings.write and timings.retrieval > 0
    assert timings.total >= (timings.first_token or 0) > 0 and not result.partial
    assert result.notes == []  # reflect said nothing is missing: no fallback, no stop worth a note
    numbers = [done for done, _ in progress]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)  # progress only grows
    assert logged[0] == "plan: 2 sub-questions"
    assert f"round 1 of 3: 2 queries, {first.new} new passages, {first.kept} kept" in logged
    assert logged[-1] == f"write: from {len(result.sources)} passages"
    assert any(message.startswith("waiting for qwen3-32b") for _, message in progress)


async def test_thinking_left_unset_is_not_sent_and_plan_judge_reflect_stay_off(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        result = await research_with_qwen(faq, QUESTION, max_rounds=1)
    assert stub.steps() == ["plan", "judge", "write"] and result.model_calls == 3
    assert "enable_thinking" not in _bodies(stub, "write")[0] and result.thinking.enabled is None
    assert all(b["enable_thinking"] is False for b in stub.requests if b and research_step(b) != "write")
    assert result.reasoning is None and result.sub_questions == [QUESTION]  # the stub's plan: the question itself


async def test_garbage_empty_and_fenced_replies_fall_back_with_notes(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.replies = {
            "plan": ["Sure! Here are the sub-questions:\n```json\n" + '["Where does Milvus store data?"]' + "\n```"],
            "judge": ["The useful ones are [1, 3] and nothing else."],
            "reflect": ['I would also search for: ["Which index types does Milvus support?"] - that is all'],
        }
        read = await research_with_qwen(faq, QUESTION, max_rounds=2)
        assert read.sub_questions == ["Where does Milvus store data?"] and read.notes == ["Stopped after max_rounds (2) rounds."]
        assert read.rounds[0].kept == 2 and read.rounds[1].queries == ["Which index types does Milvus support?"]

        stub.requests.clear()
        stub.replies = {"plan": ["I cannot split this."], "judge": ["passages one and three"], "reflect": ["{}"]}
        garbage = await research_with_qwen(faq, QUESTION)
        assert garbage.sub_questions == [QUESTION] and stub.steps() == ["plan", "judge", "reflect", "write"]
        assert garbage.rounds[0].kept == garbage.rounds[0].new  # judge fell back to keeping all
        notes = " | ".join(garbage.notes)
        assert "plan step's reply was not a JSON array" in notes and "'I cannot split this.'" in notes
        assert "judge step's reply was not a JSON array" in notes and "reflect step's reply" in notes
        assert not garbage.partial

        stub.requests.clear()
        stub.replies = {"plan": [""], "judge": ["[]"], "reflect": [""]}  # empty replies, and an empty judgement
        empty = await research_with_qwen(faq, QUESTION)
        assert empty.sub_questions == [QUESTION] and "an empty reply" in empty.notes[0]
        assert empty.rounds[0].kept == 0 and empty.sources == []
        assert empty.model_calls == 3 and stub.steps() == ["plan", "judge", "reflect"]  # nothing kept: no write call
        assert "could not find anything relevant" in empty.report and empty.finish_reason is None

        stub.requests.clear()
        stub.replies = {"plan": ["[]"]}  # an empty plan is no plan
        assert (await research_with_qwen(faq, QUESTION, max_rounds=1)).sub_questions == [QUESTION]


async def test_a_model_that_always_asks_for_more_is_stopped_by_max_rounds(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.replies = {"reflect": [f'["{q}", "{q} in detail"]' for q in FOLLOW_UPS]}
        for rounds in (1, 3):
            stub.requests.clear()
            result = await research_with_qwen(faq, QUESTION, max_rounds=rounds)
            assert len(result.rounds) == rounds and result.model_calls <= 1 + 2 * rounds + 1
            assert stub.steps() == ["plan", *(["judge", "reflect"] * (rounds - 1)), "judge", "write"]
        assert "Stopped after max_rounds (3) rounds." in result.notes
        asked = [q for r in result.rounds for q in r.queries]
        assert len(asked) == len(set(asked)) == 1 + 2 + 2


async def test_a_round_that_brings_nothing_new_stops_the_research(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.research_plans = {QUESTION: PLAN}
        stub.replies = {"reflect": [f'["{PLAN[0]}?!"]']}  # the same search again in other words
        result = await research_with_qwen(faq, QUESTION)
    assert result.rounds[-1].new == 0 and "brought no new passage" in result.notes[-1]
    assert stub.steps() == ["plan", "judge", "reflect", "write"]


async def test_a_500_at_each_step(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.research_plans = {QUESTION: PLAN}
        stub.fail_next(500, step="plan")
        with pytest.raises(LLMError, match="failed in the plan step: .*500"):
            await research_with_qwen(faq, QUESTION)
        assert stub.steps() == ["plan"]

        for step in ("judge", "reflect"):
            stub.requests.clear()
            stub.replies = {"reflect": [f'["{FOLLOW_UPS[0]}"]']}
            stub.fail_next(500, step=step)
            result = await research_with_qwen(faq, QUESTION)
            assert result.partial and result.report and result.sources and result.finish_reason == "stop"
            assert any(f"The {step} step failed" in note and "500" in note for note in result.notes)
            assert stub.steps()[-1] == "write" and KEY not in " ".join(result.notes)

        stub.requests.clear()
        stub.fail_next(500, step="write")
        with pytest.raises(LLMError, match="failed in the write step: .*500") as failed:
            await research_with_qwen(faq, QUESTION, max_rounds=1)
        assert KEY not in str(failed.value)


async def test_a_stream_cut_in_the_write_step_is_an_error(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.cut_next(after_chunks=3, step="write")
        with pytest.raises(LLMError, match="failed in the write step: .*broke while qwen-plus was answering"):
            await research_with_qwen(faq, QUESTION, max_rounds=1)
        assert stub.steps() == ["plan", "judge", "write"]


async def test_cancel_mid_round_stops_at_once(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.delay_next(20, step="judge")  # the judge call hangs until the research is cancelled
        finished: list[ResearchResult] = []

        async def research() -> None:
            finished.append(await research_with_qwen(faq, QUESTION))

        async with anyio.create_task_group() as tg:
            tg.start_soon(research)
            with anyio.fail_after(30):
                while "judge" not in stub.steps():
                    await anyio.sleep(0.01)
            cancelled = time.monotonic()
            tg.cancel_scope.cancel()
        assert time.monotonic() - cancelled < 2 and finished == []
        assert stub.steps() == ["plan", "judge"]  # nothing after the cancel


async def test_a_korean_question_is_planned_in_english_and_reported_in_korean(faq: Services) -> None:
    korean = "milvus에서는 데이터가 어떻게 저장되나요?"
    english = "How is data stored in milvus?"
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        stub.translations = {korean: english}
        result = await research_with_qwen(faq, korean, max_rounds=1)
    plan, write = _bodies(stub, "plan")[0], _bodies(stub, "write")[0]
    assert "written in English" in plan["messages"][0]["content"] and plan["messages"][1]["content"] == korean
    assert result.sub_questions == [english]
    assert "Where does Milvus store data?" in [s.heading for s in result.sources]
    user = write["messages"][1]["content"]
    assert f"<question>\n{korean}\n</question>" in user and user.endswith("Answer in Korean, the language of the question.")
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        faq.rewrite_queries = False  # QUERY_REWRITE=off: planned in the question's own language
        await research_with_qwen(faq, korean, max_rounds=1)
    assert "written in the question's language" in _bodies(stub, "plan")[0]["messages"][0]["content"]


async def test_several_collections_and_every_collection(services: Services) -> None:
    faq = services
    await ingest_documents(faq, [f"{FAQ}/product_faq.md"])
    await ingest_documents(faq, [f"{FAQ}/performance_faq.md"], collection="performance")
    await ingest_documents(faq, [f"{FAQ}/product_faq.md"], collection="product")
    question = "How can I make search faster, and where is data stored?"
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        both = await research_with_qwen(faq, question, collections=["performance", "product"], max_rounds=1)
        assert {s.collection for s in both.sources} == {"performance", "product"}
        assert both.rounds[0].found == 2 * 5
        every = await research_with_qwen(faq, question, collections="*", max_rounds=1)
        assert every.rounds[0].found == 3 * 5 and "milvus_docs" in {s.collection for s in every.sources}
        # a chunk stored in two collections has one id (its document and content): it is read once
        assert len({s.chunk_id for s in every.sources}) == len(every.sources) < every.rounds[0].found
        one = await research_with_qwen(faq, question, collections="product", max_rounds=1)
        assert {s.collection for s in one.sources} == {"product"}
        calls = len(stub.requests)
        with pytest.raises(UserError, match="'missing' does not exist"):
            await research_with_qwen(faq, question, collections=["product", "missing"])
        for bad in ({"max_rounds": 0}, {"max_sub_questions": 11}, {"top_k": 0}, {"thinking_budget": 0}):
            with pytest.raises(UserError):
                await research_with_qwen(faq, question, **bad)
        assert len(stub.requests) == calls  # bad arguments fail before any model call


async def test_the_token_cap_stops_gathering_and_leaves_room_for_the_report(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub, max_tokens=1024)
        stub.research_plans = {QUESTION: PLAN}
        stub.replies = {"reflect": [f'["{q}"]' for q in FOLLOW_UPS]}
        faq.research_max_tokens = 7000
        result = await research_with_qwen(faq, QUESTION, max_rounds=5)
    assert any("RESEARCH_MAX_TOKENS" in note for note in result.notes)
    assert stub.steps()[-1] == "write" and len(result.rounds) < 5
    assert result.usage["total"]["total_tokens"] <= 7000 * 1.2  # the estimate before each call is rough


async def test_with_a_reranker_its_scores_judge_and_no_judge_call_is_made(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub, run_rerank_stub(KEY) as reranks:
        _connect(faq, stub)
        faq.reranker = make_reranker("dashscope", None, reranks.base + COMPATIBLE, KEY)
        try:
            result = await research_with_qwen(faq, "Where does Milvus store data?", max_rounds=2)
        finally:
            assert faq.reranker is not None
            await faq.reranker.close()
    assert "judge" not in stub.steps() and reranks.requests
    assert all(s.score >= RERANK_KEEP for s in result.sources)
    assert result.rounds[0].kept == len(result.sources) <= result.rounds[0].new


async def test_read_only_server_offers_and_runs_research(faq: Services) -> None:
    with run_stub(api_key=KEY) as stub:
        _connect(faq, stub)
        mcp = create_server(Settings(read_only=True), services=replace(faq))
        logged: list[str] = []

        async def on_log(params: Any) -> None:
            logged.append(str(params.data))

        async with Client(mcp, logging_callback=on_log, log_level="info") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "research_with_qwen" in names and "ingest_documents" not in names
            result = await client.call_tool("research_with_qwen", {"question": QUESTION, "max_rounds": 1})
            found = payload(result)
            assert found["sources"] and found["model_calls"] == 3 and found["rounds"][0]["kept"] > 0
            text = result.content[0].text
            assert text.startswith(found["report"].strip()) and "\nSources:\n[1] milvus_docs/en/faq/" in text
            assert "Research: 1 sub-question, 1 round" in text and " · id " in text
            bad = await client.call_tool("research_with_qwen", {"question": QUESTION, "max_rounds": "many"})
            assert bad.is_error
        assert any(line.startswith("round 1 of 1:") for line in logged)
        assert any("wrote the report" in line for line in logged)


@pytest.mark.processes  # the one end-to-end run: the real server process, READ_ONLY from its environment
async def test_research_over_stdio_read_only_with_progress(faq_store: tuple[Path, Path]) -> None:
    root, db = faq_store
    with run_stub(api_key=KEY) as stub:
        env = {
            "MILVUS_URI": str(db),
            "INGEST_ROOTS": str(root),
            "DASHSCOPE_BASE_URL": stub.base_url,
            "DASHSCOPE_API_KEY": KEY,
            "READ_ONLY": "true",
        }
        async with stdio_session(env) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert "research_with_qwen" in names and "ingest_documents" not in names
            progress: list[str | None] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append(message)

            result = await session.call_tool(
                "research_with_qwen",
                {"question": QUESTION, "max_rounds": 1, "enable_thinking": True},
                progress_callback=on_progress,
            )
            found = payload(result)
            assert found["finish_reason"] == "stop" and found["sources"][0]["cited"] is True
            assert progress[0] == "plan: 1 sub-question" and any(m and m.startswith("round 1 of 1") for m in progress)
            stub.fail_next(401)
            denied = await session.call_tool("research_with_qwen", {"question": QUESTION})
            assert denied.is_error and "plan step" in denied.content[0].text and KEY not in denied.content[0].text
