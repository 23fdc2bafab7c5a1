"""Errors whose message is meant for the person using the tool, and the progress callback every tool takes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio

# progress, total (None when unknown), message
ProgressFn = Callable[[float, float | None, str], Awaitable[None]]


MESSAGE_CHARS = 4000  # of a whole message: a few echoed values and the advice


class UserError(Exception):
    """A failure the caller can understand and act on; the MCP layer returns it as `isError`. A message longer than
    `MESSAGE_CHARS` (a huge value echoed whole) keeps its start and its end, where the advice is."""

    def __init__(self, message: str = "", *args: object) -> None:
        if isinstance(message, str) and len(message) > MESSAGE_CHARS:
            cut = len(message) - MESSAGE_CHARS
            message = f"{message[: MESSAGE_CHARS // 2]} ...({cut:,} characters cut)... {message[-MESSAGE_CHARS // 2 :]}"
        super().__init__(message, *args)


class LLMError(UserError):
    """A chat-model failure with a message a person can act on; never contains the API key."""


class EmptyAnswer(LLMError):
    """The model finished without a word of answer (a reply, unlike a failed request: research falls back on it)."""


@contextmanager
def first_error() -> Iterator[None]:
    """Around a task group: raise the failure itself, not wrapped in an exception group; the one that started it,
    not what it caused in the other tasks (a stream it closed, a cancellation), whatever order the group lists."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = list(_leaves(group))
        raise next((e for e in errors if not _consequence(e)), errors[0]) from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


def _consequence(error: BaseException) -> bool:
    """A failure one task sees because another failed: the other end of a stream closed, or a cancellation."""
    try:
        cancelled = anyio.get_cancelled_exc_class()
    except Exception:  # no async library running here
        cancelled = asyncio.CancelledError
    return isinstance(error, (anyio.BrokenResourceError, anyio.ClosedResourceError, cancelled))
