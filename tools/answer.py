"""answer_with_qwen: retrieve with the search tool's code, build the tutorial's prompt, stream Qwen's answer.

A question in another language than the documents' is first rewritten by the chat model (one short call,
thinking off) into a search query in the documents' language, and answered in the question's language.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from tools import defaults, language
from tools.errors import ProgressFn
from tools.llm import stream_chat, thinking_options
from tools.result import Result
from tools.search import MAX_QUERY_CHARS, SearchHit, check_query, document_languages, search_milvus_docs
from tools.services import Services
from tools.store import check_collection_name
from tools.store.filters import Where

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
ANSWER_LANGUAGE = "\nAnswer in {language}, the language of the question."
REWRITE_PROMPT = """Rewrite this question as a search query in {language}, to search documents written in {language}.
Keep product names, API names, parameters and numbers as they are. Reply with the query alone, on one line.

{question}"""
REWRITE_MAX_TOKENS = 256


class AnswerSource(Result):
    n: int = Field(description="The number the answer cites it by: [n]")
    source: str
    citation: str = Field(description="The source with its page or slide where known, e.g. manual.pdf p. 12")
    heading: str
    score: float = Field(description="Its search score")
    chunk_id: str


class Timings(Result):
    rewrite: float | None = Field(None, description="The call that turned the question into a search query")
    retrieval: float
    first_token: float | None
    total: float


class Thinking(Result):
    enabled: bool | None = Field(description="As asked; null: the model's own default (Qwen3.5 and later think)")
    budget: int | None = Field(description="Most thinking tokens asked for")


class AnswerResult(Result):
    """Qwen's answer with the passages it was given."""

    answer: str
    sources: list[AnswerSource]
    model: str
    usage: dict[str, Any] | None = Field(description="Tokens as the model service counted them (and the rewrite's)")
    timings_ms: Timings
    thinking: Thinking
    reasoning: str | None = Field(None, description="The model's thinking, when include_reasoning was asked")
    finish_reason: str | None = Field(
        None, description='"stop"; "length" when LLM_MAX_TOKENS cut the answer short; null: no model call'
    )
    search_query: str | None = Field(
        None, description="The query searched with, when the question was rewritten into the documents' language"
    )
    note: str | None = Field(None, description="Why nothing was found, where a filter matched nothing")


def build_messages(question: str, hits: list[SearchHit], answer_language: str | None = None) -> list[dict[str, str]]:
    """The tutorial's system prompt and a user prompt with numbered <context> passages and the <question>."""
    context = "\n\n".join(f"[{h.rank}] {h.citation} § {h.heading}\n{h.text}" for h in hits)
    user = USER_PROMPT.format(context=context, question=question)
    if answer_language:
        user += ANSWER_LANGUAGE.format(language=answer_language)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class _Query:
    """What to search with, and the language to answer in when that is not the documents'."""

    text: str
    answer_language: str | None = None
    ms: float | None = None
    usage: dict[str, Any] | None = None


@dataclass(frozen=True)
class Languages:
    """The question's language and its collection's main ones (codes), for the cross-lingual rewrite."""

    asked: str  # "und" when unknown
    documents: list[str]  # empty when the collection is missing, empty or of no clear language

    @property
    def target(self) -> str | None:
        """The documents' main language by name: the one to search in."""
        return language.name(self.documents[0]) if self.documents else None

    @property
    def answer_language(self) -> str | None:
        """The question's language by name when it is not the documents': the one to answer in."""
        foreign = self.asked != "und" and bool(self.documents) and self.asked not in self.documents
        return language.name(self.asked) if foreign else None


async def languages(services: Services, question: str, collection: str | None) -> Languages:
    """The question's language and the documents'; reads the store only for a question of a known language."""
    asked = language.detect(question)
    if asked == "und":
        return Languages(asked, [])
    name = check_collection_name(collection or services.collection)
    if await services.store.info(name) is None:
        return Languages(asked, [])  # the search says the collection is missing
    return Languages(asked, language.main_languages(await document_languages(services, name)))


async def _search_query(services: Services, question: str, collection: str | None, model: str) -> _Query:
    """The question itself, or (QUERY_REWRITE=auto) the question rewritten by the chat model into the documents'
    language when it is in another; never a model call for a question already in the documents' language."""
    if not services.rewrite_queries:
        return _Query(question)
    found = await languages(services, question, collection)
    if found.answer_language is None or found.target is None:
        return _Query(question)
    started = time.perf_counter()
    result = await stream_chat(
        replace(services.llm, max_tokens=REWRITE_MAX_TOKENS),
        [{"role": "user", "content": REWRITE_PROMPT.format(language=found.target, question=question)}],
        model=model,
        enable_thinking=None if services.llm.dialect == "none" else False,
    )
    query = next((line.strip().strip("\"'`") for line in result.answer.splitlines() if line.strip()), "")
    ms = round((time.perf_counter() - started) * 1000, 1)
    return _Query(query[:MAX_QUERY_CHARS] or question, found.answer_language, ms, result.usage)


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
    where: Where | None = None,
) -> AnswerResult:
    """Retrieve the best chunks for `question`, then answer it with Qwen, citing them."""
    started = time.perf_counter()
    thinking_options(services.llm.dialect, enable_thinking, thinking_budget)  # bad arguments fail before any work
    chosen = model or services.llm.model
    query = await _search_query(services, check_query(question), collection, chosen)
    searched = time.perf_counter()
    found = await search_milvus_docs(services, query.text, top_k=top_k, source=source, collection=collection, where=where)
    retrieval_ms = (time.perf_counter() - searched) * 1000
    relevant = found.best_similarity is None or found.best_similarity >= services.min_relevance
    hits = found.results if relevant else []
    sources = [
        AnswerSource(n=h.rank, source=h.source, citation=h.citation, heading=h.heading, score=h.score, chunk_id=h.chunk_id)
        for h in hits
    ]
    thinking = Thinking(enabled=enable_thinking if thinking_budget is None else True, budget=thinking_budget)
    rewritten = query.text if query.answer_language else None
    timings = {"rewrite": query.ms, "retrieval": round(retrieval_ms, 1)}
    if not hits:
        return AnswerResult(
            answer="I could not find anything relevant to this question in the documents, so I will not guess. "
            "Try rephrasing it, or ingest documents that cover it.",
            sources=[],
            model=chosen,
            usage=_with_rewrite(None, query),
            timings_ms=Timings(**timings, first_token=None, total=round((time.perf_counter() - started) * 1000, 1)),
            thinking=thinking,
            search_query=rewritten,
            note=found.note if not found.results else None,
        )
    result = await stream_chat(
        services.llm,
        build_messages(question, hits, query.answer_language),
        model=chosen,
        enable_thinking=enable_thinking,
        thinking_budget=thinking_budget,
        progress=progress,
    )
    total_ms = (time.perf_counter() - started) * 1000
    answer_started_ms = (time.perf_counter() - started) * 1000 - result.total_ms
    first = answer_started_ms + result.first_token_ms if result.first_token_ms is not None else None
    return AnswerResult(
        answer=result.answer,
        sources=sources,
        model=result.model,
        usage=_with_rewrite(result.usage, query),
        timings_ms=Timings(**timings, first_token=_round(first), total=round(total_ms, 1)),
        thinking=thinking,
        reasoning=result.reasoning if include_reasoning else None,
        finish_reason=result.finish_reason,
        search_query=rewritten,
    )


def _with_rewrite(usage: dict[str, Any] | None, query: _Query) -> dict[str, Any] | None:
    """The answer's token usage, with the rewrite call's under `rewrite` when there was one."""
    if query.usage is None:
        return usage
    return {**(usage or {}), "rewrite": query.usage}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
