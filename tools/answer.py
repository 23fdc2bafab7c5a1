"""answer_with_qwen: retrieve with the search tool's code, build the tutorial's prompt, stream Qwen's answer."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from tools import defaults
from tools.errors import ProgressFn
from tools.llm import stream_chat, thinking_options
from tools.search import SearchHit, search_milvus_docs
from tools.services import Services

# The prompts of the Milvus + Qwen 3 RAG tutorial, with numbered passages and citations added.
SYSTEM_PROMPT = (
    "Human: You are an AI assistant. You are able to find answers to the questions from the contextual passage snippets provided."
)
USER_PROMPT = """Use the following pieces of information enclosed in <context> tags to provide an answer to the question enclosed in <question> tags.
Each passage starts with its number and source, like [1]. Cite the passages you use by number, like [1] or [2][3].
If the passages do not contain the answer, say that you could not find it in the documents.
<context>
{context}
</context>
<question>
{question}
</question>"""  # noqa: E501 (the tutorial's prompt, word for word)


class AnswerSource(BaseModel):
    n: int
    source: str
    heading: str
    score: float
    chunk_id: str


class Timings(BaseModel):
    retrieval: float
    first_token: float | None
    total: float


class Thinking(BaseModel):
    enabled: bool | None  # None: the model's own default
    budget: int | None


class AnswerResult(BaseModel):
    """Qwen's answer with the passages it was given."""

    answer: str
    sources: list[AnswerSource]
    model: str
    usage: dict[str, Any] | None
    timings_ms: Timings
    thinking: Thinking
    reasoning: str | None = None
    finish_reason: str | None = None  # "stop", or "length" when LLM_MAX_TOKENS cut the answer short; None: no model call


def build_messages(question: str, hits: list[SearchHit]) -> list[dict[str, str]]:
    """The tutorial's system prompt and a user prompt with numbered <context> passages and the <question>."""
    context = "\n\n".join(f"[{h.rank}] {h.source} § {h.heading}\n{h.text}" for h in hits)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_PROMPT.format(context=context, question=question)},
    ]


async def answer_with_qwen(
    services: Services,
    question: str,
    *,
    top_k: int = defaults.TOP_K,
    model: str | None = None,
    enable_thinking: bool | None = None,
    thinking_budget: int | None = None,
    include_reasoning: bool = False,
    source: str | None = None,
    collection: str | None = None,
    progress: ProgressFn | None = None,
) -> AnswerResult:
    """Retrieve the best chunks for `question`, then answer it with Qwen, citing them."""
    started = time.perf_counter()
    thinking_options(services.llm.dialect, enable_thinking, thinking_budget)  # bad arguments fail before any work
    found = await search_milvus_docs(services, question, top_k=top_k, source=source, collection=collection)
    retrieval_ms = (time.perf_counter() - started) * 1000
    relevant = found.best_similarity is None or found.best_similarity >= services.min_relevance
    hits = found.results if relevant else []
    sources = [AnswerSource(n=h.rank, source=h.source, heading=h.heading, score=h.score, chunk_id=h.chunk_id) for h in hits]
    thinking = Thinking(enabled=enable_thinking if thinking_budget is None else True, budget=thinking_budget)
    chosen = model or services.llm.model
    if not hits:
        return AnswerResult(
            answer="I could not find anything relevant to this question in the documents, so I will not guess. "
            "Try rephrasing it, or ingest documents that cover it.",
            sources=[],
            model=chosen,
            usage=None,
            timings_ms=Timings(retrieval=round(retrieval_ms, 1), first_token=None, total=round(retrieval_ms, 1)),
            thinking=thinking,
        )
    result = await stream_chat(
        services.llm,
        build_messages(question, hits),
        model=chosen,
        enable_thinking=enable_thinking,
        thinking_budget=thinking_budget,
        progress=progress,
    )
    total_ms = (time.perf_counter() - started) * 1000
    first = retrieval_ms + result.first_token_ms if result.first_token_ms is not None else None
    return AnswerResult(
        answer=result.answer,
        sources=sources,
        model=result.model,
        usage=result.usage,
        timings_ms=Timings(retrieval=round(retrieval_ms, 1), first_token=_round(first), total=round(total_ms, 1)),
        thinking=thinking,
        reasoning=result.reasoning if include_reasoning else None,
        finish_reason=result.finish_reason,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
