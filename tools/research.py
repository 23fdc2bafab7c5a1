"""research_with_qwen: plan sub-questions, retrieve in rounds, judge, reflect, and write a cited report.

DeepSearcher's loop over this server's own parts: every query goes through `search_milvus_docs` (hybrid, the
reranker when one is configured), the report through the prompt and streaming of `answer_with_qwen`, every
model call through `tools/llm.py`. Plan, judge and reflect are short calls with thinking off that return a JSON
array; only the write step thinks, as the caller asked.

The wire contract a stand-in can rely on: the first line of each step's system message is `step: plan`,
`step: judge`, `step: reflect` or `step: write`; plan and reflect ask for a JSON array of strings, judge for a
JSON array of passage numbers. A reply that cannot be read as one falls back (plan: the question itself; judge:
keep every passage; reflect: stop) with a note.

A failure of the model in the plan or write step is an error naming the step. In the judge or reflect step,
once passages exist, the report is written from what was gathered, marked `partial`, with a note saying why.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import Field

from tools import defaults
from tools.answer import AnswerSource, Thinking, build_messages, languages
from tools.errors import EmptyAnswer, LLMError, ProgressFn, UserError
from tools.llm import ChatResult, LLMConfig, stream_chat, thinking_options
from tools.result import Result
from tools.search import SearchHit, check_query, check_top_k, open_collection, search_milvus_docs
from tools.services import Services
from tools.store import check_collection_name
from tools.store.filters import Where

StepFn = Callable[[str], Awaitable[None]]  # one line per step, for MCP log messages
STEPS = ("plan", "judge", "reflect", "write")
MAX_ROUNDS = 10
MAX_SUB_QUESTIONS = 10
MAX_FOLLOW_UPS = 3
STEP_MAX_TOKENS = 512  # plan, judge and reflect reply with a short JSON array
MIN_WRITE_TOKENS = 256  # the write step generates at least this much, even when the cap is nearly spent
CHARS_PER_TOKEN = 3  # for estimates before a call: English runs about 4 characters a token, CJK 1-2
REFLECT_PASSAGE_CHARS = 400  # reflect sees the start of each kept passage: enough to tell what it covers
MAX_WRITE_PASSAGES = 40  # about 12,000 tokens of context for the report
# With a reranker, the judge keeps passages it scores at least this relevant (its scores run 0-1); not measured
# here (no reranker runs without a key), half the scale is the plain starting point.
RERANK_KEEP = 0.5

PLAN_PROMPT = """step: plan
You plan searches over a collection of documents written in {language}. Split the user's question into at most {n} \
short, self-contained search questions in {language}, one for each thing the answer needs; keep product names, API \
names, parameters and numbers as they are. A question that needs one search stays one question.
Reply with a JSON array of strings and nothing else, e.g. ["first question", "second question"]."""
JUDGE_PROMPT = """step: judge
You decide which passages help answer a question. Reply with a JSON array of the numbers of the passages that \
hold information the answer needs, e.g. [1, 3], or [] when none does. Reply with the array and nothing else."""
REFLECT_PROMPT = """step: reflect
You check whether the passages found so far are enough to answer a question. If the answer still needs something \
they do not hold, reply with a JSON array of at most {n} new search queries in {language} that would find it, \
unlike the queries already run; if nothing is missing, reply []. Reply with the array and nothing else."""
WRITE_PROMPT = "step: write\n{system}\nWrite a short report that answers every part of the question."
NOTHING_FOUND = (
    "I could not find anything relevant to this question in the documents, so I will not guess. "
    "Try rephrasing it, or ingest documents that cover it."
)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)
_CITES = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


class Round(Result):
    queries: list[str]
    found: int = Field(description="Passages the searches returned, across queries and collections")
    new: int = Field(description="Of them, not seen in an earlier query or round")
    kept: int = Field(description="Of the new ones, kept by the judge step")


class ResearchSource(AnswerSource):
    headings: list[str] = Field(description="Its section path, top first")
    collection: str
    cited: bool = Field(description="Whether the report cites it")


class ResearchTimings(Result):
    plan: float | None
    retrieval: float
    judge: float | None
    reflect: float | None
    write: float | None
    first_token: float | None = Field(description="From the start to the report's first token")
    total: float


class ResearchResult(Result):
    """A cited report from several rounds of retrieval, with what each step did."""

    report: str
    sub_questions: list[str] = Field(description="The plan: the queries of the first round")
    rounds: list[Round]
    sources: list[ResearchSource] = Field(description="The passages the report was written from, numbered as cited")
    notes: list[str] = Field(description="Fallbacks, stops and failures worth knowing")
    partial: bool = Field(description="A step failed and the report was written from what was gathered before it")
    model: str
    model_calls: int
    usage: dict[str, dict[str, int]] = Field(description="Tokens per step (plan, judge, reflect, write) and total")
    timings_ms: ResearchTimings
    thinking: Thinking = Field(description="The write step's; plan, judge and reflect never think")
    reasoning: str | None = Field(None, description="The write step's thinking, when include_reasoning was asked")
    finish_reason: str | None = Field(None, description='The write step\'s: "stop", "length"; null: no model call')


@dataclass
class _Passage:
    hit: SearchHit
    collection: str
    reranked: bool


@dataclass
class _Run:
    """One research: the settings it runs under, and what it has spent and gathered so far."""

    services: Services
    question: str
    model: str
    progress: ProgressFn | None
    on_step: StepFn | None
    deadline: float
    seen: set[str] = field(default_factory=set)
    kept: list[_Passage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    steps: int = 0
    partial: bool = False

    @property
    def spent(self) -> int:
        return self.usage.get("total", {}).get("total_tokens", 0)

    async def say(self, message: str) -> None:
        """Progress and a log line for one step."""
        self.steps += 1
        if self.progress is not None:
            await self.progress(self.steps, None, message)
        if self.on_step is not None:
            await self.on_step(message)

    def fits(self, prompt_chars: int) -> bool:
        """Whether a plan, judge or reflect call still fits under RESEARCH_MAX_TOKENS, keeping room for the write."""
        write = self.services.llm.max_tokens + _context_chars(self.kept) // CHARS_PER_TOKEN
        return self.spent + prompt_chars // CHARS_PER_TOKEN + STEP_MAX_TOKENS + write <= self.services.research_max_tokens

    def config(self, max_tokens: int) -> LLMConfig:
        """The LLM settings for one call: its token limit, and what is left of the total deadline."""
        left = max(self.deadline - time.perf_counter(), 0.001)
        return replace(self.services.llm, max_tokens=max_tokens, total_timeout_s=min(self.services.llm.total_timeout_s, left))

    async def call(self, step: str, system: str, user: str, **options: Any) -> ChatResult:
        """One model call, counted, timed and added to the step's usage."""
        started = time.perf_counter()
        self.calls += 1
        max_tokens = options.pop("max_tokens", STEP_MAX_TOKENS)
        if step != "write":
            options["enable_thinking"] = None if self.services.llm.dialect == "none" else False
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        try:
            result = await stream_chat(self.config(max_tokens), messages, model=self.model, **options)
        finally:
            self.ms[step] = self.ms.get(step, 0.0) + (time.perf_counter() - started) * 1000
        used = result.usage or {"total_tokens": (len(system) + len(user) + len(result.answer)) // CHARS_PER_TOKEN}
        for key in (step, "total"):
            into = self.usage.setdefault(key, {})
            for name, value in used.items():
                if isinstance(value, int):
                    into[name] = into.get(name, 0) + value
        return result


async def research_with_qwen(
    services: Services,
    question: str,
    *,
    collections: str | list[str] | None = None,
    source: str | None = None,
    max_rounds: int = defaults.RESEARCH_MAX_ROUNDS,
    max_sub_questions: int = defaults.RESEARCH_MAX_SUB_QUESTIONS,
    top_k: int = defaults.RESEARCH_TOP_K,
    model: str | None = None,
    enable_thinking: bool | None = None,
    thinking_budget: int | None = None,
    include_reasoning: bool = False,
    progress: ProgressFn | None = None,
    on_step: StepFn | None = None,
    where: Where | None = None,
) -> ResearchResult:
    """Research `question` over the documents in rounds, then write a report citing the passages kept."""
    started = time.perf_counter()
    question, top_k = check_query(question), check_top_k(top_k)
    _check_count("max_rounds", max_rounds, MAX_ROUNDS)
    _check_count("max_sub_questions", max_sub_questions, MAX_SUB_QUESTIONS)
    thinking_options(services.llm.dialect, enable_thinking, thinking_budget)  # bad arguments fail before any work
    names = await _collections(services, collections)
    run = _Run(services, question, model or services.llm.model, progress, on_step, started + services.llm.total_timeout_s)
    found = await languages(services, question, names[0])
    # QUERY_REWRITE=off: the queries stay in the question's language, as answer_with_qwen's search does
    target = (found.target if services.rewrite_queries else None) or "the question's language"

    queries = await _plan(run, max_sub_questions, target)
    sub_questions = list(queries)
    asked = {_norm(q) for q in queries}
    rounds: list[Round] = []
    retrieval_ms = 0.0
    for number in range(1, max_rounds + 1):
        searched = time.perf_counter()
        hits, new = await _retrieve(run, queries, names, top_k, source, where)
        retrieval_ms += (time.perf_counter() - searched) * 1000
        if not new:
            rounds.append(Round(queries=queries, found=hits, new=0, kept=0))
            run.notes.append(f"Round {number} brought no new passage, so the research stopped there.")
            await run.say(f"round {number} of {max_rounds}: {plural(len(queries), 'query')}, no new passage")
            break
        kept = await _judge(run, new)
        run.kept += kept
        rounds.append(Round(queries=queries, found=hits, new=len(new), kept=len(kept)))
        found_here = f"{plural(len(queries), 'query')}, {plural(len(new), 'new passage')}, {len(kept)} kept"
        await run.say(f"round {number} of {max_rounds}: {found_here}")
        if number == max_rounds:
            if max_rounds > 1:
                run.notes.append(f"Stopped after max_rounds ({max_rounds}) rounds.")
            break
        follow_ups = [q for q in await _reflect(run, asked, target) if _norm(q) not in asked][:MAX_FOLLOW_UPS]
        if not follow_ups:
            break
        asked |= {_norm(q) for q in follow_ups}
        queries = follow_ups

    write = await _write(run, found.answer_language, enable_thinking, thinking_budget)
    total_ms = (time.perf_counter() - started) * 1000
    first = None
    if write is not None and write.first_token_ms is not None:
        first = total_ms - write.total_ms + write.first_token_ms
    cited = _cited(write.answer) if write is not None else set()
    sources = [_source(n, p, n in cited) for n, p in enumerate(run.kept[:MAX_WRITE_PASSAGES], start=1)]
    return ResearchResult(
        report=write.answer if write is not None else NOTHING_FOUND,
        sub_questions=sub_questions,
        rounds=rounds,
        sources=sources,
        notes=run.notes,
        partial=run.partial,
        model=write.model if write is not None else run.model,
        model_calls=run.calls,
        usage=run.usage,
        timings_ms=ResearchTimings(
            plan=_ms(run.ms.get("plan")),
            retrieval=round(retrieval_ms, 1),
            judge=_ms(run.ms.get("judge")),
            reflect=_ms(run.ms.get("reflect")),
            write=_ms(run.ms.get("write")),
            first_token=_ms(first),
            total=round(total_ms, 1),
        ),
        thinking=Thinking(enabled=enable_thinking if thinking_budget is None else True, budget=thinking_budget),
        reasoning=write.reasoning if write is not None and include_reasoning else None,
        finish_reason=write.finish_reason if write is not None else None,
    )


async def _collections(services: Services, collections: str | list[str] | None) -> list[str]:
    """The collections to search: the default, the ones named, or (`*`) every one this server's embedder built."""
    if collections is None or collections == [] or collections == "":
        names = [services.collection]
    elif collections == "*" or collections == ["*"]:
        names = await services.store.collections()
        usable = []
        for name in names:
            try:
                usable.append((await open_collection(services, name)).name)
            except UserError:  # built by another embedder: its vectors mean nothing to this one
                continue
        if not usable:
            raise UserError("No collection this server can search exists yet: ingest documents first (ingest_documents)")
        return usable
    else:
        names = [collections] if isinstance(collections, str) else list(collections)
    names = list(dict.fromkeys(check_collection_name(name) for name in names))
    for name in names:
        await open_collection(services, name)  # a missing one, or one of another embedder, is an error now
    return names


async def _plan(run: _Run, n: int, target: str) -> list[str]:
    """The first round's queries: the model's sub-questions, or the question itself."""
    system = PLAN_PROMPT.format(language=target, n=n)
    if not run.fits(len(system) + len(run.question)):
        run.notes.append("The plan step was skipped (RESEARCH_MAX_TOKENS): the question itself was searched.")
        return [run.question]
    try:
        reply = (await run.call("plan", system, run.question)).answer
    except EmptyAnswer:
        reply = ""
    except LLMError as exc:
        raise LLMError(f"research_with_qwen failed in the plan step: {exc}") from None
    planned = _strings(reply)
    if not planned:
        run.notes.append(
            f"The plan step's reply was not a JSON array of questions ({_quote(reply)}): the question itself was searched."
        )
        await run.say("plan: 1 question (the reply could not be read)")
        return [run.question]
    planned = planned[:n]
    await run.say(f"plan: {plural(len(planned), 'sub-question')}")
    return planned


async def _retrieve(
    run: _Run, queries: list[str], names: list[str], top_k: int, source: str | None, where: Where | None
) -> tuple[int, list[_Passage]]:
    """How many passages the queries found in every collection, and those not seen before (first occurrence)."""
    found, new = 0, []
    for query in queries:
        for name in names:
            response = await search_milvus_docs(run.services, query, top_k=top_k, source=source, collection=name, where=where)
            best = response.best_similarity
            if best is not None and best < run.services.min_relevance:
                continue  # nothing relevant for this query here, as answer_with_qwen would decide
            if response.note and response.note not in run.notes:
                run.notes.append(response.note)
            for hit in response.results:
                found += 1
                if hit.chunk_id not in run.seen:
                    run.seen.add(hit.chunk_id)
                    new.append(_Passage(hit, name, response.scores == "rerank"))
    return found, new


async def _judge(run: _Run, new: list[_Passage]) -> list[_Passage]:
    """The new passages worth keeping: by the reranker's scores when every one has them, else one model call."""
    if all(p.reranked for p in new):
        return [p for p in new if p.hit.score >= RERANK_KEEP]
    user = f"Question: {run.question}\n\nPassages:\n\n{_numbered(new)}"
    if not run.fits(len(JUDGE_PROMPT) + len(user)):
        run.notes.append("A judge step was skipped (RESEARCH_MAX_TOKENS): its round's passages were all kept.")
        return new
    try:
        reply = (await run.call("judge", JUDGE_PROMPT, user)).answer
    except EmptyAnswer:
        reply = ""
    except LLMError as exc:
        _failed(run, "judge", exc)
        run.notes.append("Every passage of that round was kept.")
        return new
    numbers = _numbers(reply)
    if numbers is None:
        run.notes.append(
            f"A judge step's reply was not a JSON array of passage numbers ({_quote(reply)}): its round's passages were all kept."
        )
        return new
    return [p for n, p in enumerate(new, start=1) if n in numbers]


async def _reflect(run: _Run, asked: set[str], target: str) -> list[str]:
    """Follow-up queries for what the kept passages still miss; none to stop."""
    system = REFLECT_PROMPT.format(n=MAX_FOLLOW_UPS, language=target)
    ran = "\n".join(f"- {q}" for q in sorted(asked))
    context = _numbered(run.kept, REFLECT_PASSAGE_CHARS) or "(none)"
    user = f"Question: {run.question}\n\nQueries run:\n{ran}\n\nPassages kept:\n\n{context}"
    if not run.fits(len(system) + len(user)):
        run.notes.append("The research stopped before a reflect step: RESEARCH_MAX_TOKENS leaves room only for the report.")
        return []
    try:
        reply = (await run.call("reflect", system, user)).answer
    except EmptyAnswer:
        reply = ""
    except LLMError as exc:
        _failed(run, "reflect", exc)
        return []
    follow_ups = _strings(reply)
    if follow_ups is None:
        run.notes.append(f"A reflect step's reply was not a JSON array of queries ({_quote(reply)}): the research stopped there.")
        return []
    await run.say(f"reflect: {plural(len(follow_ups), 'follow-up query')}" if follow_ups else "reflect: nothing missing")
    return follow_ups


async def _write(
    run: _Run, answer_language: str | None, enable_thinking: bool | None, thinking_budget: int | None
) -> ChatResult | None:
    """The report from the kept passages, streamed with progress; None (no call) when nothing was kept."""
    passages = run.kept[:MAX_WRITE_PASSAGES]
    if not passages:
        return None
    if len(run.kept) > MAX_WRITE_PASSAGES:
        run.notes.append(f"The report was written from the first {MAX_WRITE_PASSAGES} of {len(run.kept)} passages kept.")
    hits = [p.hit.model_copy(update={"rank": n}) for n, p in enumerate(passages, start=1)]
    system, user = build_messages(run.question, hits, answer_language)
    system_text = WRITE_PROMPT.format(system=system["content"])
    left = run.services.research_max_tokens - run.spent - (len(system_text) + len(user["content"])) // CHARS_PER_TOKEN
    max_tokens = min(run.services.llm.max_tokens, max(left, MIN_WRITE_TOKENS))
    if thinking_budget is not None and thinking_budget >= max_tokens:
        raise LLMError(
            f"thinking_budget ({thinking_budget}) leaves no room for the report: {max_tokens} tokens are left of "
            f"RESEARCH_MAX_TOKENS ({run.services.research_max_tokens}) and LLM_MAX_TOKENS ({run.services.llm.max_tokens}). "
            "Lower thinking_budget, or raise those settings."
        )
    await run.say(f"write: from {plural(len(passages), 'passage')}")
    offset = run.steps

    async def streaming(done: float, total: float | None, message: str) -> None:
        if run.progress is not None:  # after the steps' own, so that progress only grows
            await run.progress(offset + done, None, message)

    try:
        return await run.call(
            "write",
            system_text,
            user["content"],
            max_tokens=max_tokens,
            enable_thinking=enable_thinking,
            thinking_budget=thinking_budget,
            progress=streaming,
        )
    except LLMError as exc:
        raise LLMError(f"research_with_qwen failed in the write step: {exc}") from None


def _failed(run: _Run, step: str, exc: LLMError) -> None:
    """A judge or reflect call failed: go on to the report from what was gathered, unless time is up."""
    if time.perf_counter() >= run.deadline:
        raise LLMError(f"research_with_qwen failed in the {step} step: {exc}") from None
    run.partial = True
    run.notes.append(f"The {step} step failed, so the report is written from what was gathered before it: {exc}")


def _numbered(passages: list[_Passage], chars: int | None = None) -> str:
    """`[n] citation § heading` and the text of each passage, numbered from 1 (the start of it, given `chars`)."""
    return "\n\n".join(
        f"[{n}] {p.hit.citation} § {p.hit.heading}\n{p.hit.text[:chars] if chars else p.hit.text}"
        for n, p in enumerate(passages, start=1)
    )


def _context_chars(passages: list[_Passage]) -> int:
    return sum(len(p.hit.text) + len(p.hit.citation) + len(p.hit.heading) + 8 for p in passages[:MAX_WRITE_PASSAGES])


def _array(reply: str) -> list[Any] | None:
    """The first JSON array in a reply: bare, inside a code fence, or amid prose."""
    decoder = json.JSONDecoder()
    for text in [*_FENCE.findall(reply), reply]:
        for start in (i for i, c in enumerate(text) if c == "["):
            try:
                value, _ = decoder.raw_decode(text, start)
            except ValueError:
                continue
            if isinstance(value, list):
                return value
    return None


def _strings(reply: str) -> list[str] | None:
    """The distinct non-empty strings of the reply's array; None when it has no array of strings."""
    value = _array(reply)
    if value is None or not all(isinstance(v, str) for v in value):
        return None
    cleaned = (" ".join(v.split())[:4000] for v in value)
    return list(dict.fromkeys(v for v in cleaned if v))


def _numbers(reply: str) -> set[int] | None:
    """The whole numbers of the reply's array ("3" too); None when it has no array of numbers."""
    value = _array(reply)
    if value is None:
        return None
    numbers: set[int] = set()
    for item in value:
        whole = isinstance(item, int | float) and not isinstance(item, bool) and float(item).is_integer()
        if not (whole or (isinstance(item, str) and item.strip().isdigit())):
            return None
        numbers.add(int(item))
    return numbers


def _cited(report: str) -> set[int]:
    return {int(n) for group in _CITES.findall(report) for n in group.split(",")}


def _source(n: int, passage: _Passage, cited: bool) -> ResearchSource:
    hit = passage.hit
    return ResearchSource(
        n=n,
        source=hit.source,
        citation=hit.citation,
        heading=hit.heading,
        headings=hit.headings,
        score=hit.score,
        chunk_id=hit.chunk_id,
        collection=passage.collection,
        cited=cited,
    )


def plural(count: int, noun: str) -> str:
    """`1 query`, `3 queries`, `2 passages`."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def _check_count(name: str, value: int, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise UserError(f"{name} must be a whole number from 1 to {most}, not {value!r}")


def _norm(query: str) -> str:
    return " ".join(query.lower().split())


def _quote(reply: str) -> str:
    flat = " ".join(reply.split())
    return repr(flat if len(flat) <= 80 else flat[:79] + "…") if flat else "an empty reply"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
