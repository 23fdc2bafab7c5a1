"""The one place that talks to the chat model: Qwen 3 through an OpenAI-compatible API (DashScope by default).

Every request is streamed. The `openai` client retries 429, 5xx, connection errors and timeouts with its own
backoff (`LLMConfig.max_retries`); a stream that breaks after it has started is not retried, and is an error.

One answer is bounded three ways: `max_tokens` goes upstream (DashScope: as max_completion_tokens, which counts
thinking and answer together); the whole call, retries and thinking included, has `total_timeout_s`; and a
stream that sends more characters than the token cap could explain is stopped, whatever the server claims.
URLs in messages have their credentials hidden (`tools.redact`), as the API key is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio

from tools import defaults
from tools.errors import EmptyAnswer, LLMError, ProgressFn
from tools.redact import redact_url, redact_urls_in, url_secrets

if TYPE_CHECKING:  # imported where a request is made: its 500 modules cost every server 13 MB and 0.3 s at start
    import openai
    from openai.types import CompletionUsage

Dialect = Literal["dashscope", "chat_template_kwargs", "none"]
# dashscope: extra_body {"enable_thinking": bool, "thinking_budget": int}, as DashScope documents.
# chat_template_kwargs: vLLM / SGLang / llama.cpp: extra_body {"chat_template_kwargs": {"enable_thinking": bool}};
#   cannot enforce a budget.
# none: sends no thinking fields; cannot switch thinking or enforce a budget.

# Streaming progress is reported at most this often, in seconds.
PROGRESS_INTERVAL_S = 0.5
# The largest thinking_budget and LLM_MAX_TOKENS taken: above any model's context, so a bigger number is a mistake.
MAX_TOKENS_LIMIT = 1_000_000
# The last line of defence against a server that ignores max_tokens: at most this many characters of answer and
# reasoning together are collected, or CHARS_PER_TOKEN_CAP per token of max_tokens when that is more (a token is
# about 4 characters of English, 1-2 of Chinese).
MAX_STREAM_CHARS = 1_000_000
CHARS_PER_TOKEN_CAP = 16

# DashScope's regions (https://www.alibabacloud.com/help/en/model-studio/qwen-api-via-openai-chat-completions); an
# API key works only in its own region, and a key of another region is refused with 401.
REGIONS = (
    "Beijing https://dashscope.aliyuncs.com/compatible-mode/v1, "
    "Singapore https://dashscope-intl.aliyuncs.com/compatible-mode/v1, "
    "US (Virginia) https://dashscope-us.aliyuncs.com/compatible-mode/v1, "
    "Hong Kong https://cn-hongkong.dashscope.aliyuncs.com/compatible-mode/v1, "
    "or a workspace's own domain https://{WorkspaceId}.{region}.maas.aliyuncs.com/compatible-mode/v1"
)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str = defaults.DASHSCOPE_URL
    api_key: str | None = None
    model: str = defaults.QWEN_MODEL
    dialect: Dialect = "dashscope"
    timeout_s: float = defaults.LLM_TIMEOUT_S  # connecting, and the longest gap between chunks
    max_retries: int = defaults.LLM_MAX_RETRIES
    total_timeout_s: float = defaults.LLM_TOTAL_TIMEOUT_S  # the whole answer, retries and thinking included
    max_tokens: int = defaults.LLM_MAX_TOKENS  # tokens one answer may generate (DashScope: thinking included)


@dataclass
class ChatResult:
    answer: str
    reasoning: str
    model: str  # the model the backend reports, else the requested one
    usage: dict[str, Any] | None  # prompt/completion/total tokens, and reasoning_tokens when reported
    first_token_ms: float | None  # time to the first content or reasoning delta
    total_ms: float
    finish_reason: str  # "stop", or "length" when max_tokens cut the answer short


def thinking_options(dialect: Dialect, enable_thinking: bool | None, thinking_budget: int | None) -> dict[str, Any]:
    """The extra_body fields for this request; raises LLMError on invalid combinations."""
    if thinking_budget is not None:
        if isinstance(thinking_budget, bool) or not isinstance(thinking_budget, int) or thinking_budget <= 0:
            raise LLMError(f"thinking_budget must be a positive integer (a number of tokens), not {thinking_budget!r}.")
        if thinking_budget > MAX_TOKENS_LIMIT:
            raise LLMError(
                f"thinking_budget must be at most {MAX_TOKENS_LIMIT:,} tokens (more than any model can think), "
                f"not {thinking_budget:,}."
            )
        if enable_thinking is False:
            raise LLMError("thinking_budget only applies when thinking is on: drop it, or set enable_thinking to true.")
        if dialect != "dashscope":
            raise LLMError(f"The {dialect!r} backend (LLM_DIALECT) cannot honour a thinking budget; leave thinking_budget unset.")
        return {"enable_thinking": True, "thinking_budget": thinking_budget}
    if enable_thinking is None:
        return {}
    if dialect == "dashscope":
        return {"enable_thinking": enable_thinking}
    if dialect == "chat_template_kwargs":
        return {"chat_template_kwargs": {"enable_thinking": enable_thinking}}
    if dialect == "none":
        raise LLMError(
            "The 'none' backend (LLM_DIALECT) has no thinking switch; leave enable_thinking unset, "
            "or set LLM_DIALECT to dashscope or chat_template_kwargs if the server supports one."
        )
    raise LLMError(f"Unknown LLM_DIALECT {dialect!r}; use dashscope, chat_template_kwargs or none.")


async def stream_chat(
    config: LLMConfig,
    messages: list[dict[str, str]],
    *,
    model: str | None = None,
    enable_thinking: bool | None = None,
    thinking_budget: int | None = None,
    progress: ProgressFn | None = None,
) -> ChatResult:
    """Stream one chat completion and return the whole answer, its reasoning, usage and timings."""
    extra_body = thinking_options(config.dialect, enable_thinking, thinking_budget)
    if thinking_budget is not None and thinking_budget >= config.max_tokens:
        raise LLMError(
            f"thinking_budget ({thinking_budget}) leaves no room for the answer: LLM_MAX_TOKENS (now {config.max_tokens}) "
            "counts thinking and answer together. Lower thinking_budget, or raise LLM_MAX_TOKENS."
        )
    api_key = config.api_key or ""
    if not api_key:
        if config.dialect == "dashscope":
            raise LLMError(
                "No DashScope API key: set DASHSCOPE_API_KEY (in your MCP client's config, put it in the server's `env` block)."
            )
        api_key = "EMPTY"  # local OpenAI-compatible servers usually accept any key
    chosen = model or config.model
    # DashScope's max_completion_tokens counts thinking and answer (its max_tokens, deprecated since May 2026, counted
    # only the answer: https://www.alibabacloud.com/en/notice/model_studio_notice_of_changes_to_certain_model_fields_724).
    # vLLM, SGLang and llama.cpp count every generated token in max_tokens, which older servers also understand.
    size_cap = "max_completion_tokens" if config.dialect == "dashscope" else "max_tokens"
    max_chars = max(MAX_STREAM_CHARS, CHARS_PER_TOKEN_CAP * config.max_tokens)
    stream = _Collected(chosen, config, max_chars)
    started = last_report = time.perf_counter()
    steps = 0

    async def report(message: str) -> None:
        nonlocal steps
        steps += 1
        if progress is not None:
            await progress(steps, None, message)

    import openai

    await report(f"waiting for {chosen}")
    with anyio.move_on_after(config.total_timeout_s) as deadline:
        try:
            async with (
                openai.AsyncOpenAI(
                    base_url=config.base_url, api_key=api_key, timeout=config.timeout_s, max_retries=config.max_retries
                ) as client,
                await client.chat.completions.create(  # type: ignore[call-overload]  # messages are plain dicts
                    model=chosen,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body={size_cap: config.max_tokens, **extra_body},
                ) as response,
            ):
                stream.streaming = True
                chunks = aiter(response)
                while True:
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    except ValueError as exc:  # the SSE data was not JSON
                        raise LLMError(stream.malformed(exc)) from None
                    text = stream.add(chunk)
                    now = time.perf_counter()
                    if text is None:
                        continue
                    if stream.first_token_ms is None:
                        stream.first_token_ms = (now - started) * 1000
                    if now - last_report >= PROGRESS_INTERVAL_S:
                        last_report = now
                        phase, size = ("answering", stream.answer_chars) if text else ("thinking", stream.reasoning_chars)
                        await report(f"{phase}… {size} chars")
        except openai.APIError as exc:
            raise LLMError(_scrub(_explain(exc, config, chosen, stream.streaming), config)) from None
    if deadline.cancelled_caught:
        raise LLMError(
            f"{chosen} did not finish within {config.total_timeout_s:g} s (LLM_TOTAL_TIMEOUT); the partial answer "
            f"({stream.answer_chars} characters, {stream.reasoning_chars} of reasoning) was discarded. Raise "
            "LLM_TOTAL_TIMEOUT if the model is slow, or ask for less: a smaller thinking_budget or LLM_MAX_TOKENS."
        )
    return stream.result(started, config)


class _Collected:
    """What one stream has sent so far, with the checks on each chunk."""

    def __init__(self, model: str, config: LLMConfig, max_chars: int) -> None:
        self.model = model
        self.config = config
        self.max_chars = max_chars
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self.answer_chars = self.reasoning_chars = 0
        self.reported_model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.first_token_ms: float | None = None
        self.streaming = False

    def add(self, chunk: Any) -> str | None:
        """Take one chunk; the answer text it carried ("" for reasoning only), or None when it carried no text."""
        try:
            thought, text = self._read(chunk)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:  # JSON of the wrong shape
            raise LLMError(self.malformed(exc)) from None
        if not (thought or text):
            return None
        if thought:
            self.reasoning.append(thought)
            self.reasoning_chars += len(thought)
        if text:
            self.answer.append(text)
            self.answer_chars += len(text)
        if self.answer_chars + self.reasoning_chars > self.max_chars:
            raise LLMError(
                f"{self.model} sent more than {self.max_chars:,} characters of answer and reasoning, more than "
                f"LLM_MAX_TOKENS (now {self.config.max_tokens}) allows, so the stream was stopped and the partial answer "
                f"discarded. The server at {redact_url(self.config.base_url)} may be ignoring the token limit; "
                "raise LLM_MAX_TOKENS only if the model really needs more."
            )
        return text or ""

    def _read(self, chunk: Any) -> tuple[str | None, str | None]:
        self.reported_model = chunk.model or self.reported_model
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        if not chunk.choices:  # the final usage chunk
            return None, None
        choice = chunk.choices[0]
        self.finish_reason = choice.finish_reason or self.finish_reason
        delta = choice.delta  # reasoning fields are extras: DashScope's, then newer vLLM's
        thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
        text = delta.content
        for part in (thought, text):
            if part is not None and not isinstance(part, str):
                raise TypeError(f"a delta's text is {type(part).__name__}, not a string")
        return thought, text

    def malformed(self, exc: Exception) -> str:
        where = redact_url(self.config.base_url)
        return _scrub(
            f"{self.model} sent a malformed chunk in the middle of its answer ({type(exc).__name__}: {exc}); the partial "
            f"answer was discarded. The server at {where} (DASHSCOPE_BASE_URL) does not speak the OpenAI streaming "
            "format as expected; try again, or check the URL.",
            self.config,
        )

    def result(self, started: float, config: LLMConfig) -> ChatResult:
        if self.finish_reason is None:
            raise LLMError(
                f"The answer from {self.model} ended before it was complete (the stream closed without a finish "
                "reason); the partial answer was discarded. Try again."
            )
        answer = "".join(self.answer)
        if not answer.strip():
            thought = f"thought for {self.reasoning_chars} characters but" if self.reasoning_chars else "finished but"
            if self.finish_reason == "length":
                advice = (
                    f"it reached the token limit first: raise LLM_MAX_TOKENS (now {config.max_tokens}), which counts "
                    "thinking and answer together, or give a smaller thinking_budget."
                )
            else:
                advice = "try again, or turn thinking off (enable_thinking false)."
            raise EmptyAnswer(f"{self.model} {thought} gave no answer (finish_reason {self.finish_reason!r}); {advice}")
        return ChatResult(
            answer=answer,
            reasoning="".join(self.reasoning),
            model=self.reported_model or self.model,
            usage=self.usage,
            first_token_ms=self.first_token_ms,
            total_ms=(time.perf_counter() - started) * 1000,
            finish_reason=self.finish_reason,
        )


def _usage(usage: CompletionUsage) -> dict[str, Any]:
    result: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    details = usage.completion_tokens_details
    if details is not None and details.reasoning_tokens is not None:
        result["reasoning_tokens"] = details.reasoning_tokens
    return result


def _explain(exc: openai.APIError, config: LLMConfig, model: str, streaming: bool) -> str:
    """A message for a failed request that says what to change."""
    import openai

    url = redact_url(config.base_url)
    retries = config.max_retries
    tries = f"after {retries} {'retry' if retries == 1 else 'retries'}" if retries else "with retries off"
    if isinstance(exc, openai.APITimeoutError):
        if streaming:
            return (
                f"{model} sent nothing for {config.timeout_s:g} s in the middle of its answer; the partial answer "
                f"was discarded. Raise LLM_TIMEOUT (now {config.timeout_s:g} s) if the model is slow."
            )
        return (
            f"No response from {url} within {config.timeout_s:g} s ({tries}). "
            f"Raise LLM_TIMEOUT (now {config.timeout_s:g} s) if the model is slow, or try again later."
        )
    if isinstance(exc, openai.APIConnectionError):
        if streaming:
            return f"The connection to {url} broke while {model} was answering; the partial answer was discarded. Try again."
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        return f"Could not connect to {url}{cause} {tries}. Check DASHSCOPE_BASE_URL and the network."
    if not isinstance(exc, openai.APIStatusError):
        return f"{model} reported an error while answering: {_backend_message(exc)}"
    status = exc.status_code
    said = _backend_message(exc)
    if status == 401:
        if config.dialect == "dashscope":
            return (
                f"The API key was rejected (401: {said}). Check DASHSCOPE_API_KEY, and that the base URL "
                f"(DASHSCOPE_BASE_URL, now {url}) is in the key's region: {REGIONS}."
            )
        return f"{url} rejected the API key (401: {said}). Check DASHSCOPE_API_KEY."
    if status == 400:
        return f"{model} rejected the request (400): {said}"
    if status == 404:
        return (
            f"Model {model!r} was not found at {url} (404: {said}). Check the model name (QWEN_MODEL or the "
            "`model` argument) and that your region offers it."
        )
    if status == 429:
        return (
            f"{model} is rate-limited or out of quota (429: {said}) {tries}. "
            "Wait a minute and try again, or raise LLM_MAX_RETRIES."
        )
    if status >= 500:
        return f"The model service at {url} failed ({status}: {said}) {tries}. Try again later."
    return f"{url} refused the request ({status}): {said}"


def _backend_message(exc: openai.APIError) -> str:
    """The backend's own error text (DashScope puts it in error.message)."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str) and message.strip():
        return message.strip()
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


def _scrub(text: str, config: LLMConfig) -> str:
    """Remove the API key and the base URL's credentials from a message, as a last line of defence.

    The backend's own text may quote the URL, or a query secret without its URL around it (a 404 that echoes
    the path it got), so the URL's secrets go wherever they appear.
    """
    text = redact_urls_in(text)
    for secret in (config.api_key, *url_secrets(config.base_url)):
        if secret:
            text = text.replace(secret, "***")
    return text
